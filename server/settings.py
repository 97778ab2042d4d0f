"""The transcription server's settings, composed from the shared mixins of transcript_contracts.

Every field has a description and is listed in ``.env.example`` (a test keeps them in step).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from server.drain_settings import DrainerSettings
from transcript_contracts.settings import BucketName, EngineSettings, PrefixSettings

MIB = 1024 * 1024
SAMPLE_RATE = 16_000
FLOAT32_BYTES = 4
# While one input decodes, its frames and the joined array exist side by side (measured: a
# 220 MiB array peaked at 2.4x its size in RSS, most of it the two copies), so a decode holds
# twice its array's size of the budget until it returns.
DECODE_PEAK_FACTOR = 2


def decoded_bytes(seconds: float) -> int:
    """Bytes of 16 kHz mono float32 audio lasting ``seconds``."""
    return int(seconds * SAMPLE_RATE) * FLOAT32_BYTES


class ServerSettings(EngineSettings, PrefixSettings, DrainerSettings):
    """The transcription server (FastAPI), and its queue drainer (DrainerSettings)."""

    host: str = Field("127.0.0.1", description="Address the server listens on (--host).")
    port: int = Field(8000, ge=1, le=65535, description="Port the server listens on (--port).")
    api_key: SecretStr | None = Field(
        None, description="Bearer key clients must send (locally, from .env)."
    )
    api_key_parameter: str | None = Field(
        None, description="SSM SecureString parameter name holding the bearer key (in AWS)."
    )
    allowed_buckets: list[BucketName] = Field(
        default_factory=list,
        description="Buckets /transcribe-s3 may read and write, comma-separated JSON list.",
    )
    max_upload_bytes: int = Field(
        100 * 1024 * 1024, gt=0, description="Largest accepted upload, bytes (413 above)."
    )
    max_download_bytes: int = Field(
        200 * 1024 * 1024, gt=0, description="Largest S3 or URL input fetched, bytes (413 above)."
    )
    max_audio_seconds: float = Field(
        2 * 3600.0, gt=0, description="Longest accepted audio, seconds (422 above)."
    )
    max_decoded_audio_mb: int = Field(
        2048,
        ge=1,
        description=(
            "Most decoded audio (16 kHz float32, 64 KB per second) all requests may hold at once, "
            "MiB; a decode counts twice its size while it runs. A request that would go over "
            "gets 503 + Retry-After. Must hold one decode of MAX_AUDIO_SECONDS."
        ),
    )
    fetch_timeout_s: float = Field(
        30.0, gt=0, le=600, description="Total time allowed to fetch a URL or S3 input, seconds."
    )
    batch_max_size: int = Field(
        8, ge=1, le=64, description="Most requests the inference worker batches together."
    )
    batch_max_wait_ms: int = Field(
        20, ge=0, le=2000, description="How long the inference worker waits to fill a batch, ms."
    )
    max_pending: int = Field(
        16,
        ge=1,
        le=1024,
        description="Transcriptions waiting for the model before new ones get 503 + Retry-After.",
    )
    docs_enabled: bool = Field(
        False,
        description=(
            "Serve /docs, /redoc and /openapi.json without a key (local development only); "
            "off, they do not exist and every path but /health needs the key."
        ),
    )

    @property
    def max_decoded_audio_bytes(self) -> int:
        return self.max_decoded_audio_mb * MIB

    @model_validator(mode="after")
    def _key_source(self) -> ServerSettings:
        if not (self.api_key or self.api_key_parameter):
            raise ValueError("set API_KEY or API_KEY_PARAMETER: the server never runs open")
        return self

    @model_validator(mode="after")
    def _drainer_has_buckets(self) -> ServerSettings:
        if self.drains and not self.allowed_buckets:
            raise ValueError(
                "QUEUE_URL is set (the queue drainer is on) but ALLOWED_BUCKETS is empty: set "
                "the bucket(s) queued chunks come from, or DRAIN_ENABLED=false"
            )
        return self

    @model_validator(mode="after")
    def _budget_holds_one_decode(self) -> ServerSettings:
        needed = DECODE_PEAK_FACTOR * decoded_bytes(self.max_audio_seconds)
        if self.max_decoded_audio_bytes < needed:
            raise ValueError(
                f"MAX_DECODED_AUDIO_MB must be at least {-(-needed // MIB)} to decode one "
                f"{self.max_audio_seconds:g}-second audio (MAX_AUDIO_SECONDS); no request of "
                "that length could ever run"
            )
        return self
