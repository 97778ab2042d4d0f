"""The launcher Lambda's entry point (``launcher.handler``) with moto behind it."""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from launcher import handler as launcher_handler
from launcher.errors import NoCapacityError
from launcher.settings import LauncherSettings
from tests.launcher.conftest import SCHEDULER_PAYLOAD, Cloud
from tests.support.log_safety import check_no_secret_in_debug_logs, store_secret
from transcript_contracts.errors import SettingsError


class _Context(LambdaContext):
    def __init__(self) -> None:
        self._function_name = "launcher"
        self._function_version = "$LATEST"
        self._invoked_function_arn = "arn:aws:lambda:eu-north-1:123456789012:function:launcher"
        self._memory_limit_in_mb = 256
        self._aws_request_id = "req-1"
        self._log_group_name = "/aws/lambda/launcher"
        self._log_stream_name = "stream"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


@pytest.fixture
def handler_deps(cloud: Cloud) -> Iterator[Cloud]:
    launcher_handler.set_deps(cloud.deps())
    yield cloud
    launcher_handler.set_deps(None)


def test_handler_launches_on_the_scheduler_payload(
    handler_deps: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    handler_deps.enqueue(2)
    result = launcher_handler.lambda_handler(dict(SCHEDULER_PAYLOAD), _Context())
    assert result["status"] == "launched" and len(result["launched"]) == 1
    assert json.loads(json.dumps(result)) == result
    output = capsys.readouterr().out
    assert '"InstancesLaunched"' in output  # EMF metrics were flushed


def test_handler_drain_now_is_the_same_decision(handler_deps: Cloud) -> None:
    assert launcher_handler.lambda_handler({"action": "drain"}, _Context())["status"] == (
        "no_messages"
    )
    handler_deps.enqueue(1)
    assert launcher_handler.lambda_handler({"action": "drain"}, _Context())["status"] == (
        "launched"
    )
    assert launcher_handler.lambda_handler({"action": "drain"}, _Context())["status"] == (
        "already_running"
    )


def test_handler_raises_when_there_is_no_capacity(handler_deps: Cloud) -> None:
    handler_deps.enqueue(1)
    handler_deps.fail_run_instances(lambda p: "InsufficientInstanceCapacity")
    with pytest.raises(NoCapacityError):
        launcher_handler.lambda_handler({"action": "drain"}, _Context())


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_handler_without_settings_fails_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LauncherSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no .env here
    launcher_handler.set_deps(None)
    with pytest.raises(SettingsError, match="LAUNCH_TEMPLATE_ID"):
        launcher_handler.lambda_handler({"action": "drain"}, _Context())


def test_debug_logs_never_print_a_secret(
    handler_deps: Cloud, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # The handler's import is the launcher's one logging setup: run it again on a botocore
    # logger left at NOTSET, as a fresh Lambda container has it.
    logging.getLogger("botocore").setLevel(logging.NOTSET)
    importlib.reload(launcher_handler)
    launcher_handler.set_deps(handler_deps.deps(log_level="DEBUG"))
    launcher_handler.logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        result = launcher_handler.lambda_handler({"action": "status"}, _Context())
        assert result["status"] == "status"
        printed: list[str] = []  # Powertools' JSON lines (stdout), kept across reads

        def logs() -> str:
            printed.append(capsys.readouterr().out)
            return caplog.text + "".join(printed)

        check_no_secret_in_debug_logs(store_secret(), logs)
    finally:
        launcher_handler.logger.setLevel("INFO")
