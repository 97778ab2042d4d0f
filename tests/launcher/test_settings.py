"""The launcher's settings: list values, EC2 rules, errors that name the variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.launch import candidates
from launcher.settings import LauncherSettings
from transcript_contracts.errors import SettingsError
from transcript_contracts.settings import load_settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_settings_parse_comma_separated_and_json_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_URL", "https://sqs.example/q")
    monkeypatch.setenv("LAUNCH_TEMPLATE_ID", "lt-0123456789abcdef0")
    monkeypatch.setenv("LAUNCH_INSTANCE_TYPES", "g4dn.xlarge, g5.xlarge")
    monkeypatch.setenv("LAUNCH_SUBNET_IDS", '["subnet-0123456789abcdef0"]')
    settings = load_settings(LauncherSettings, _env_file=None)
    assert settings.launch_instance_types == ["g4dn.xlarge", "g5.xlarge"]
    assert settings.launch_subnet_ids == ["subnet-0123456789abcdef0"]
    monkeypatch.setenv("LAUNCH_SUBNET_IDS", "")
    assert load_settings(LauncherSettings, _env_file=None).launch_subnet_ids == []
    spot_only = candidates(load_settings(LauncherSettings, _env_file=None))
    assert [(c.instance_type, c.subnet_id) for c in spot_only] == [
        ("g4dn.xlarge", None),
        ("g5.xlarge", None),
    ]


def test_settings_errors_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUEUE_URL", raising=False)
    monkeypatch.delenv("LAUNCH_TEMPLATE_ID", raising=False)
    monkeypatch.setenv("LAUNCH_INSTANCE_TYPES", "a-bad-type")
    with pytest.raises(SettingsError) as caught:
        load_settings(LauncherSettings, _env_file=None)
    text = str(caught.value)
    assert "QUEUE_URL" in text and "LAUNCH_TEMPLATE_ID" in text
    assert "LAUNCH_INSTANCE_TYPES" in text


def test_env_example_loads_for_the_launcher(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in LauncherSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = load_settings(LauncherSettings, _env_file=ENV_EXAMPLE)
    assert settings.launch_template_version == "$Latest"
    assert settings.launch_instance_types == ["g4dn.xlarge"]
    assert settings.launch_max_instances == 1
