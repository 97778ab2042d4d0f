"""The server's own settings and its bearer key: API_KEY, or read once from SSM (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from server.app import create_app
from server.errors import ServerKeyError
from server.main import serve
from server.runtime import Runtime
from server.settings import ServerSettings
from tests.server.conftest import make_settings
from transcript_contracts.errors import SettingsError
from transcript_contracts.settings import load_settings

PARAMETER = "/transcription/api-key"
SSM_KEY = "key-from-ssm-0123456789"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of the server's from the caller's shell, and no .env in the working dir."""
    for name in ServerSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    with mock_aws():
        client = boto3.client("ssm", region_name="eu-north-1")
        client.put_parameter(Name=PARAMETER, Value=SSM_KEY, Type="SecureString")
        yield client


def test_the_key_is_read_from_ssm_once(ssm: object) -> None:
    calls: list[int] = []

    def factory() -> object:
        calls.append(1)
        return ssm

    settings = make_settings(api_key=None, api_key_parameter=PARAMETER)
    runtime = Runtime(settings, ssm_factory=factory)  # type: ignore[arg-type]
    client = TestClient(create_app(runtime))
    assert client.get("/metrics", headers={"Authorization": f"Bearer {SSM_KEY}"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    create_app(runtime)  # a second app on the same runtime: the cached key
    assert calls == [1]
    assert SSM_KEY not in repr(runtime)


def test_a_missing_parameter_stops_the_server_naming_it(ssm: object) -> None:
    settings = make_settings(api_key=None, api_key_parameter="/no/such/parameter")
    runtime = Runtime(settings, ssm_factory=lambda: ssm)  # type: ignore[arg-type,return-value]
    with pytest.raises(ServerKeyError, match="/no/such/parameter"):
        create_app(runtime)


@pytest.mark.usefixtures("clean_env", "ssm")
def test_serve_exits_2_when_the_key_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_KEY_PARAMETER", "/no/such/parameter")
    assert serve(port=1) == 2
    assert "/no/such/parameter" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_env")
def test_empty_api_key_falls_back_to_the_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "")
    monkeypatch.setenv("API_KEY_PARAMETER", PARAMETER)
    settings = load_settings(ServerSettings)
    assert settings.api_key is None
    assert settings.api_key_parameter == PARAMETER
    assert settings.docs_enabled is False


@pytest.mark.usefixtures("clean_env")
def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "super-secret-value")
    settings = load_settings(ServerSettings)
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "super-secret-value"
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "super-secret-value" not in shown


@pytest.mark.usefixtures("clean_env")
def test_server_never_runs_open() -> None:
    with pytest.raises(SettingsError, match="never runs open"):
        load_settings(ServerSettings)
