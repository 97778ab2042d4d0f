from __future__ import annotations

import re
from pathlib import Path

import pytest

from transcript_contracts.errors import SettingsError
from transcript_contracts.settings import (
    ALL_SETTINGS,
    RouterSettings,
    ServerSettings,
    WorkerSettings,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of ours from the caller's shell, and no .env in the working directory."""
    for cls in ALL_SETTINGS:
        for name in cls.model_fields:
            monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def example_names() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    fields = {name.upper() for cls in ALL_SETTINGS for name in cls.model_fields}
    assert example_names() == fields


def test_every_setting_is_documented() -> None:
    for cls in ALL_SETTINGS:
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"


def test_design_names_are_present() -> None:
    required = {
        "BUCKET_NAME", "AUDIO_PREFIX", "TRANSCRIPT_PREFIX", "QUEUE_URL", "SERVER_URL", "API_KEY",
        "API_KEY_PARAMETER", "MODEL_ID", "LANGUAGE", "DEVICE", "MAX_UPLOAD_BYTES",
        "MAX_AUDIO_SECONDS", "IDEMPOTENCY_TABLE", "FORCE_QUEUE",
    }  # fmt: skip
    assert required <= example_names()


def test_env_example_loads_for_every_deployable(monkeypatch: pytest.MonkeyPatch) -> None:
    (Path.cwd() / ".env").write_text(ENV_EXAMPLE.read_text())
    router = load_settings(RouterSettings)
    assert router.bucket_name == "my-transcription-bucket"
    assert router.layout.audio_prefix == "audio/"
    assert load_settings(ServerSettings).allowed_buckets == ["my-transcription-bucket"]
    assert load_settings(WorkerSettings).language == "sv"


def test_missing_required_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
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
    settings = load_settings(ServerSettings)
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "super-secret-value"
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "super-secret-value" not in shown


def test_server_never_runs_open() -> None:
    with pytest.raises(SettingsError, match="never runs open"):
        load_settings(ServerSettings)


def test_nested_prefixes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "bucket")
    monkeypatch.setenv("QUEUE_URL", "q")
    monkeypatch.setenv("TRANSCRIPT_PREFIX", "audio/out/")
    with pytest.raises(SettingsError, match="nest"):
        load_settings(WorkerSettings)
