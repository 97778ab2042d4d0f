"""The server's queue-drainer settings (``server/drainer.py``), a mixin of ServerSettings.

The names the batch worker also reads (QUEUE_URL, VISIBILITY_TIMEOUT_S, HEARTBEAT_INTERVAL_S,
RETRY_DELAY_S and the notification settings) mean the same here and default the same: the
drainer follows the worker's rules. Every field is in ``.env.example``.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from transcript_contracts.settings import NotificationSettings, QueueWorkSettings


class DrainerSettings(NotificationSettings, QueueWorkSettings):
    """Draining the work queue with the server's spare capacity."""

    queue_url: str | None = Field(
        None,
        description=(
            "URL of the SQS work queue. On the server: when set (and DRAIN_ENABLED), queued "
            "chunks are transcribed whenever no direct request waits."
        ),
    )
    drain_enabled: bool = Field(
        True,
        description=(
            "Server: drain QUEUE_URL with spare capacity (needs ALLOWED_BUCKETS); false leaves "
            "queued chunks to the batch worker."
        ),
    )
    drain_batch_size: int = Field(
        8,
        ge=1,
        le=10,
        description=(
            "Server: messages the drainer receives at once and transcribes as one inference "
            "batch (1-10); also bounds the queued audio it holds decoded."
        ),
    )
    drain_wait_time_s: int = Field(
        5,
        ge=0,
        le=20,
        description=(
            "Server: SQS long-poll wait of each drainer receive, seconds (0-20); a shutdown "
            "waits at most this long for a receive in progress."
        ),
    )

    @property
    def drains(self) -> bool:
        """The drainer runs: a queue to drain and not switched off."""
        return bool(self.queue_url) and self.drain_enabled

    @model_validator(mode="after")
    def _drain_heartbeat_before_timeout(self) -> DrainerSettings:
        if self.drains and self.heartbeat_interval_s >= self.visibility_timeout_s:
            raise ValueError(
                "HEARTBEAT_INTERVAL_S must be shorter than VISIBILITY_TIMEOUT_S, or messages "
                "become visible to other consumers while still in work"
            )
        return self
