"""The batch worker's settings: the queue and how it is drained, the engine, stop and spot
handling, input limits; composed from the shared mixins of :mod:`transcript_contracts.settings`."""

from __future__ import annotations

from pydantic import Field, model_validator

from transcript_contracts.settings import (
    EngineSettings,
    NotificationSettings,
    QueueWorkSettings,
    StorageSettings,
)


class WorkerSettings(StorageSettings, EngineSettings, NotificationSettings, QueueWorkSettings):
    """The batch worker on the spot GPU instance."""

    queue_url: str = Field(description="URL of the SQS work queue the worker drains.")
    worker_batch_size: int = Field(
        10,
        ge=1,
        le=10,
        description="Messages received per poll and transcribed together (SQS allows 10 at most).",
    )
    wait_time_s: int = Field(
        20, ge=0, le=20, description="SQS long-poll wait of each receive, seconds (0-20)."
    )
    idle_exit_s: float = Field(
        600.0,
        ge=0,
        description="Exit after the queue stays empty this long, seconds (0: at once).",
    )
    max_runtime_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="Hard deadline armed at start: stop and release in-flight work, seconds.",
    )
    stop_grace_s: float = Field(
        90.0,
        ge=0,
        le=110,
        description=(
            "After a spot notice or SIGTERM, in-flight chunks may finish for this long before "
            "their messages are released (visibility 0), seconds; a spot notice gives 120 s."
        ),
    )
    shutdown_on_exit: bool = Field(
        False,
        description=(
            "Power the machine off after an idle exit or the hard deadline (on EC2 with shutdown "
            "behaviour terminate this terminates the instance). Off on workstations."
        ),
    )
    imds_enabled: bool = Field(
        False, description="Poll EC2 instance metadata (IMDSv2) for spot interruption notices."
    )
    imds_url: str = Field(
        "http://169.254.169.254", description="Base URL of the instance metadata service."
    )
    spot_poll_interval_s: float = Field(
        5.0, gt=0, le=5, description="How often the spot interruption notice is polled, seconds."
    )
    max_download_bytes: int = Field(
        200 * 1024 * 1024,
        gt=0,
        description="Largest S3 or URL input fetched, bytes (server: 413; worker: a failed chunk).",
    )
    max_audio_seconds: float = Field(
        2 * 3600.0,
        gt=0,
        description="Longest accepted audio, seconds (server: 422; worker: a failed chunk).",
    )
    # The same name and default as the server's: one FETCH_TIMEOUT_S line in .env.example.
    fetch_timeout_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description=(
            "Total time allowed to fetch a URL or S3 input, seconds (server: 502; worker: a "
            "failed chunk, retried after RETRY_DELAY_S)."
        ),
    )

    @model_validator(mode="after")
    def _heartbeat_before_timeout(self) -> WorkerSettings:
        if self.heartbeat_interval_s >= self.visibility_timeout_s:
            raise ValueError(
                "HEARTBEAT_INTERVAL_S must be shorter than VISIBILITY_TIMEOUT_S, or messages "
                "become visible to other workers while still in work"
            )
        return self
