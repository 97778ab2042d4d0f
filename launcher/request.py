"""What one launcher invocation asks for: the payloads of EventBridge Scheduler, an EventBridge
rule's ``Scheduled Event`` and an operator's manual invocation, parsed at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from launcher.errors import InvalidLaunchEventError

Trigger = Literal["schedule", "manual"]
Action = Literal["drain", "status"]


@dataclass(frozen=True)
class LaunchRequest:
    """One invocation: a schedule firing, or an operator's ``{"action": "drain"}``."""

    action: Action
    trigger: Trigger
    scheduled_time: datetime | None = None
    execution_id: str | None = None


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidLaunchEventError("scheduled_time must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidLaunchEventError(f"scheduled_time {value!r} is not ISO 8601") from exc
    if parsed.tzinfo is None:
        raise InvalidLaunchEventError(f"scheduled_time {value!r} has no time zone")
    return parsed.astimezone(UTC)


def parse_request(event: Mapping[str, Any]) -> LaunchRequest:
    """The launcher's payloads.

    - EventBridge Scheduler (template.yaml ``LaunchSchedule`` Input): ``{"action": "drain",
      "trigger": "schedule", "scheduled_time": "<aws.scheduler.scheduled-time>",
      "execution_id": "<aws.scheduler.execution-id>", ...}``;
    - an EventBridge rule's ``Scheduled Event`` (its ``time`` is the schedule time);
    - a manual invocation: ``{"action": "drain"}`` (drain now) or ``{"action": "status"}``.
    """
    if event.get("detail-type") == "Scheduled Event" and event.get("source") == "aws.events":
        return LaunchRequest("drain", "schedule", scheduled_time=_parse_time(event.get("time")))
    action = event.get("action")
    if action not in ("drain", "status"):
        raise InvalidLaunchEventError(f'"action" must be "drain" or "status", got {action!r}')
    trigger = event.get("trigger", "manual")
    if trigger not in ("schedule", "manual"):
        raise InvalidLaunchEventError(f'"trigger" must be "schedule" or "manual", got {trigger!r}')
    raw_time = event.get("scheduled_time")
    if trigger == "schedule" and raw_time is None:
        raise InvalidLaunchEventError("a scheduled request needs scheduled_time")
    execution_id = event.get("execution_id")
    return LaunchRequest(
        action,
        trigger,
        scheduled_time=None if raw_time is None else _parse_time(raw_time),
        execution_id=execution_id if isinstance(execution_id, str) else None,
    )
