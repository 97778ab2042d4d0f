"""Publish notification events on EventBridge (one ``PutEvents`` entry per event).

Event shape: ``source`` = ``smart-transcription-router``, ``detail-type`` = ``Session
Transcribed`` or ``Chunk Failed``, ``detail`` = the pydantic detail model as JSON. A rule such as
``{"source": ["smart-transcription-router"], "detail-type": ["Session Transcribed"]}`` routes
them. IAM: ``events:PutEvents`` on the bus only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from notifications.errors import EventPublishError
from notifications.models import EVENT_SOURCE, DetailType, NotificationDetail

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

logger = logging.getLogger(__name__)


class EventPublisher:
    """PutEvents on one bus through an injected client factory (created on first use)."""

    def __init__(
        self,
        events: Callable[[], EventBridgeClient],
        bus_name: str = "default",
        source: str = EVENT_SOURCE,
    ) -> None:
        self._events = events
        self.bus_name = bus_name
        self._source = source

    def publish(self, detail_type: DetailType, detail: NotificationDetail) -> str:
        """Publish one event; its EventBridge id. Raises EventPublishError."""
        try:
            response = self._events().put_events(
                Entries=[
                    {
                        "Source": self._source,
                        "DetailType": detail_type,
                        "Detail": detail.model_dump_json(),
                        "EventBusName": self.bus_name,
                    }
                ]
            )
        except (ClientError, BotoCoreError) as exc:
            raise EventPublishError(
                f"PutEvents on bus {self.bus_name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        entries = response.get("Entries", [])
        entry = entries[0] if entries else {}
        if response.get("FailedEntryCount", 0) or "EventId" not in entry:
            raise EventPublishError(
                f"PutEvents on bus {self.bus_name!r} refused the entry: "
                f"{entry.get('ErrorCode', 'no error code')}: {entry.get('ErrorMessage', '')}"
            )
        event_id = entry["EventId"]
        logger.info(
            "event published: %s",
            detail_type,
            extra={"event_id": detail.event_id, "eventbridge_id": event_id, "bus": self.bus_name},
        )
        return event_id
