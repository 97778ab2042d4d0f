"""The launcher's payloads: EventBridge Scheduler, an EventBridge rule, an operator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from launcher.errors import InvalidLaunchEventError
from launcher.request import LaunchRequest, parse_request
from tests.launcher.conftest import SCHEDULER_PAYLOAD


def test_parse_scheduler_manual_and_rule_payloads() -> None:
    scheduled = parse_request(SCHEDULER_PAYLOAD)
    assert scheduled.trigger == "schedule" and scheduled.execution_id == "d32c5kddcf5bb8c3"
    assert scheduled.scheduled_time == datetime(2022, 3, 22, 18, 59, 43, tzinfo=UTC)
    assert parse_request({"action": "drain"}) == LaunchRequest("drain", "manual")
    rule_event = json.loads(
        (Path(__file__).resolve().parents[1] / "events" / "scheduled_event.json").read_text()
    )
    from_rule = parse_request(rule_event)
    assert from_rule.trigger == "schedule" and from_rule.scheduled_time is not None


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"action": "launch-everything"},
        {"action": "drain", "trigger": "schedule"},
        {"action": "drain", "trigger": "schedule", "scheduled_time": "yesterday"},
        {"action": "drain", "trigger": "cron", "scheduled_time": "2024-05-01T00:00:00Z"},
    ],
)
def test_bad_payloads_are_rejected(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidLaunchEventError):
        parse_request(event)
