from __future__ import annotations

import re
from pathlib import Path

import pytest

from batch_worker.settings import WorkerSettings
from launcher.settings import LauncherSettings
from router.settings import RouterSettings
from smart_router.contract_commands import DEPLOYABLE_SETTINGS, settings_class
from smart_router.settings import StatusSettings
from tests.support.settings import all_setting_names, all_settings_classes, clear_settings_env
from transcript_contracts.errors import SettingsError
from transcript_contracts.settings import SettingsBase, load_settings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of ours from the caller's shell, and no .env in the working directory."""
    clear_settings_env(monkeypatch)
    monkeypatch.chdir(tmp_path)


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def example_names() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))


def _leaves(cls: type[SettingsBase]) -> set[type[SettingsBase]]:
    subclasses = cls.__subclasses__()
    if not subclasses:
        return {cls}
    return {leaf for sub in subclasses for leaf in _leaves(sub)}


def test_every_deployable_settings_class_is_registered() -> None:
    # Importing each deployable's settings module brings its class in; a class nobody derives
    # from is a deployable's (the mixins all have subclasses), and must be in the registry the
    # `settings` command and the .env.example check use.
    for path in sorted(ROOT.glob("*/settings.py")):
        __import__(f"{path.parent.name}.settings")
    registered = {cls.__name__ for cls in all_settings_classes()}
    leaves = {c.__name__ for c in _leaves(SettingsBase) if not c.__module__.startswith("tests")}
    assert leaves <= registered
    assert set(DEPLOYABLE_SETTINGS) == {"router", "server", "worker", "launcher", "status"}


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    assert example_names() == all_setting_names()


def test_every_setting_is_documented() -> None:
    for cls in all_settings_classes():
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"


def test_design_names_are_present() -> None:
    required = {
        "BUCKET_NAME", "AUDIO_PREFIX", "TRANSCRIPT_PREFIX", "QUEUE_URL", "SERVER_URL", "API_KEY",
        "API_KEY_PARAMETER", "MODEL_ID", "LANGUAGE", "DEVICE", "MAX_UPLOAD_BYTES",
        "MAX_AUDIO_SECONDS", "IDEMPOTENCY_TABLE", "FORCE_QUEUE",
    }  # fmt: skip
    assert required <= example_names()


def test_env_example_loads_for_every_deployable() -> None:
    (Path.cwd() / ".env").write_text(ENV_EXAMPLE.read_text())
    router = load_settings(RouterSettings)
    assert router.bucket_name == "my-transcription-bucket"
    assert router.layout.audio_prefix == "audio/"
    server = load_settings(settings_class("server"))
    assert server.model_dump()["allowed_buckets"] == ["my-transcription-bucket"]
    assert load_settings(WorkerSettings).language == "auto"  # issue 18: never a silent sv


def test_missing_required_values_are_named() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(RouterSettings)
    message = str(info.value)
    for name in ("BUCKET_NAME", "QUEUE_URL", "IDEMPOTENCY_TABLE"):
        assert f"{name} is required but not set" in message
    assert "S3 bucket that holds" in message


def test_bad_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "Bad_Bucket")
    monkeypatch.setenv("AUDIO_PREFIX", "../")
    monkeypatch.setenv("LANGUAGE", "swedish")
    monkeypatch.setenv("QUEUE_URL", "q")
    with pytest.raises(SettingsError) as info:
        load_settings(WorkerSettings)
    text = str(info.value)
    assert "BUCKET_NAME: " in text and "AUDIO_PREFIX: " in text and "LANGUAGE: " in text


def test_router_needs_a_server_and_a_key_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "bucket")
    monkeypatch.setenv("QUEUE_URL", "https://sqs/q")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "t")
    with pytest.raises(SettingsError, match="SERVER_URL or SERVER_INSTANCE_TAG"):
        load_settings(RouterSettings)
    monkeypatch.setenv("SERVER_URL", "http://10.0.0.1:8000")
    with pytest.raises(SettingsError, match="API_KEY or API_KEY_PARAMETER"):
        load_settings(RouterSettings)
    monkeypatch.setenv("API_KEY_PARAMETER", "/transcription/api-key")
    assert load_settings(RouterSettings).api_key_parameter == "/transcription/api-key"
    monkeypatch.delenv("SERVER_URL")
    monkeypatch.setenv("FORCE_QUEUE", "true")
    assert load_settings(RouterSettings).force_queue is True


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "super-secret-value")
    settings = load_settings(settings_class("server"))
    api_key = settings.model_dump()["api_key"]
    assert api_key.get_secret_value() == "super-secret-value"
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "super-secret-value" not in shown


def test_server_never_runs_open() -> None:
    with pytest.raises(SettingsError, match="never runs open"):
        load_settings(settings_class("server"))


def test_nested_prefixes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "bucket")
    monkeypatch.setenv("QUEUE_URL", "q")
    monkeypatch.setenv("TRANSCRIPT_PREFIX", "audio/out/")
    with pytest.raises(SettingsError, match="nest"):
        load_settings(WorkerSettings)


# -- an empty value means unset (issue 18 item 10) -------------------------------------------

# What scripts/step-000-setup-configuration.sh writes for AWS: the key lives in SSM.
STEP_000_ENV = "API_KEY=\nAPI_KEY_PARAMETER=/transcription/api-key\n"


def test_empty_api_key_in_dotenv_lets_the_router_read_ssm(monkeypatch: pytest.MonkeyPatch) -> None:
    (Path.cwd() / ".env").write_text(
        STEP_000_ENV + "BUCKET_NAME=bucket\nQUEUE_URL=q\nIDEMPOTENCY_TABLE=t\nSERVER_URL=\n"
        "SERVER_INSTANCE_TAG=transcription-server\n"
    )
    router = load_settings(RouterSettings)
    assert router.api_key is None
    assert router.api_key_parameter == "/transcription/api-key"
    assert router.server_url is None
    # An empty variable in the environment is unset as well, and does not hide .env's value.
    monkeypatch.setenv("API_KEY_PARAMETER", "")
    assert load_settings(RouterSettings).api_key_parameter == "/transcription/api-key"


def test_empty_api_key_alone_is_reported_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(
        monkeypatch,
        {
            "BUCKET_NAME": "bucket",
            "QUEUE_URL": "q",
            "IDEMPOTENCY_TABLE": "t",
            "SERVER_URL": "http://10.0.0.1:8000",
            "API_KEY": "",
            "API_KEY_PARAMETER": "",
        },
    )
    with pytest.raises(SettingsError, match="API_KEY or API_KEY_PARAMETER"):
        load_settings(RouterSettings)


def test_empty_api_key_lets_the_server_start_from_ssm(monkeypatch: pytest.MonkeyPatch) -> None:
    server_settings = settings_class("server")
    (Path.cwd() / ".env").write_text(STEP_000_ENV)
    loaded = load_settings(server_settings).model_dump()
    assert (loaded["api_key"], loaded["api_key_parameter"]) == (None, "/transcription/api-key")
    (Path.cwd() / ".env").write_text("API_KEY=\n")
    with pytest.raises(SettingsError, match="never runs open"):
        load_settings(server_settings)


def test_empty_worker_values_take_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(
        monkeypatch,
        {
            "BUCKET_NAME": "bucket",
            "QUEUE_URL": "q",
            "LANGUAGE": "",
            "MODEL_ID": "",
            "WORKER_BATCH_SIZE": "",
            "WEBHOOK_URL": "https://hooks.example/t",
            "WEBHOOK_SECRET": "",
            "WEBHOOK_SECRET_PARAMETER": "/transcription/webhook-secret",
        },
    )
    worker = load_settings(WorkerSettings)
    assert (worker.language, worker.model_id, worker.worker_batch_size) == ("auto", None, 10)
    assert worker.webhook_secret is None
    assert worker.webhook_secret_parameter == "/transcription/webhook-secret"
    monkeypatch.setenv("BUCKET_NAME", "")
    with pytest.raises(SettingsError, match="BUCKET_NAME is required but not set"):
        load_settings(WorkerSettings)


def test_empty_values_passed_in_code_are_unset_too() -> None:
    status = load_settings(StatusSettings, bucket_name="", queue_url="", dlq_url="")
    assert (status.bucket_name, status.queue_url, status.dlq_url) == (None, None, None)
    launcher = load_settings(
        LauncherSettings, queue_url="q", launch_template_id="lt-0123456789abcdef0",
        launch_instance_types="", launch_subnet_ids="",
    )  # fmt: skip
    assert (launcher.launch_instance_types, launcher.launch_subnet_ids) == (["g4dn.xlarge"], [])
