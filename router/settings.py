"""The router Lambda's settings: the bucket, the queue, where the server is and its key, the
idempotency table, timeouts; composed from the shared mixins of
:mod:`transcript_contracts.settings`."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from transcript_contracts.settings import NotificationSettings, StorageSettings


class RouterSettings(StorageSettings, NotificationSettings):
    """The router Lambda."""

    queue_url: str = Field(
        description="URL of the SQS work queue for chunks the server can't take."
    )
    server_url: str | None = Field(
        None,
        description="Base URL of the transcription server, e.g. http://10.0.1.5:8000.",
    )
    server_instance_tag: str | None = Field(
        None,
        description=(
            "When SERVER_URL is unset: the Name tag of the running EC2 transcription server "
            "whose private IP the router looks up."
        ),
    )
    server_port: int = Field(
        8000, ge=1, le=65535, description="Port used with SERVER_INSTANCE_TAG."
    )
    api_key: SecretStr | None = Field(
        None, description="Bearer key for the server (local runs; in AWS use API_KEY_PARAMETER)."
    )
    api_key_parameter: str | None = Field(
        None, description="SSM SecureString parameter name that holds the server's bearer key."
    )
    idempotency_table: str = Field(
        description="DynamoDB table of the Powertools Idempotency utility (duplicate events)."
    )
    idempotency_ttl_s: int = Field(
        172_800,
        ge=3600,
        le=30 * 86_400,
        description=(
            "How long the router remembers a processed (bucket, key, etag), seconds; covers "
            "EventBridge's 24 h redelivery window and a night's queue."
        ),
    )
    force_queue: bool = Field(
        False, description="Maintenance switch: send every chunk to the queue, never forward."
    )
    health_timeout_s: float = Field(
        2.0, gt=0, le=30, description="Connect+read timeout of the server health check, seconds."
    )
    connect_timeout_s: float = Field(
        3.0, gt=0, le=30, description="Connect timeout of the forward to the server, seconds."
    )
    read_timeout_s: float = Field(
        120.0, gt=0, le=900, description="Read timeout of the forward to the server, seconds."
    )
    queue_send_reserve_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Time kept back from the Lambda's remaining time for the fallback queue send.",
    )

    @model_validator(mode="after")
    def _server_and_key(self) -> RouterSettings:
        if not self.force_queue and not (self.server_url or self.server_instance_tag):
            raise ValueError("set SERVER_URL or SERVER_INSTANCE_TAG (or FORCE_QUEUE=true)")
        if not self.force_queue and not (self.api_key or self.api_key_parameter):
            raise ValueError("set API_KEY or API_KEY_PARAMETER (or FORCE_QUEUE=true)")
        return self
