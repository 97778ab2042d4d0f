"""One typed settings object per deployable, read from the environment (and ``.env`` locally).

Every field has a description and is listed in ``.env.example`` (a test keeps them in step).
``load_settings`` fails fast at start with a message that names each missing or bad variable.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from transcript_contracts.errors import KeyGrammarError, SettingsError
from transcript_contracts.keys import KeyLayout, check_prefix

Device = Literal["auto", "cpu", "cuda"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_LANGUAGE_RE = re.compile(r"^(auto|[a-z]{2,3})$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _language(value: str) -> str:
    if not _LANGUAGE_RE.match(value):
        raise ValueError("must be 'auto' or an ISO 639-1/-3 code such as 'sv' or 'en'")
    return value


def _prefix(value: str) -> str:
    try:
        return check_prefix(value)
    except KeyGrammarError as exc:
        raise ValueError(exc.reason) from exc


def _bucket(value: str) -> str:
    if not _BUCKET_RE.match(value) or ".." in value:
        raise ValueError("must be a valid S3 bucket name (3-63 of a-z 0-9 . -)")
    return value


Language = Annotated[str, AfterValidator(_language)]
Prefix = Annotated[str, AfterValidator(_prefix)]
BucketName = Annotated[str, AfterValidator(_bucket)]


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
    )

    log_level: LogLevel = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")


class PrefixSettings(_Settings):
    """Where audio and transcripts live under a bucket: the key layout."""

    audio_prefix: Prefix = Field("audio/", description="Key prefix of uploaded audio chunks.")
    transcript_prefix: Prefix = Field(
        "transcripts/", description="Key prefix under which transcripts are written."
    )

    @model_validator(mode="after")
    def _prefixes_apart(self) -> PrefixSettings:
        try:
            self.layout  # noqa: B018 - built for its validation
        except KeyGrammarError as exc:
            raise ValueError(exc.reason) from exc
        return self

    @property
    def layout(self) -> KeyLayout:
        return KeyLayout(self.audio_prefix, self.transcript_prefix)


class StorageSettings(PrefixSettings):
    """The bucket and its layout; shared by the router and the worker."""

    bucket_name: BucketName = Field(
        description="S3 bucket that holds the audio chunks and the transcripts."
    )


class EngineSettings(_Settings):
    """How the Whisper engine runs; shared by the server and the worker."""

    model_id: str | None = Field(
        None,
        description=(
            "Hugging Face model id (from the local cache, never downloaded at run time) or a "
            "local directory; unset means the model prepared by `smart-router model prepare`. "
            "Deployments use KBLab/kb-whisper-small."
        ),
    )
    language: Language = Field("sv", description="Transcription language; 'auto' detects it.")
    device: Device = Field("auto", description="Inference device: auto, cpu or cuda.")


class RouterSettings(StorageSettings):
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


class ServerSettings(EngineSettings, PrefixSettings):
    """The transcription server (FastAPI)."""

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

    @model_validator(mode="after")
    def _key_source(self) -> ServerSettings:
        if not (self.api_key or self.api_key_parameter):
            raise ValueError("set API_KEY or API_KEY_PARAMETER: the server never runs open")
        return self


class WorkerSettings(StorageSettings, EngineSettings):
    """The batch worker on the spot GPU instance."""

    queue_url: str = Field(description="URL of the SQS work queue the worker drains.")


S = TypeVar("S", bound=BaseSettings)


def _describe(cls: type[BaseSettings], error: ErrorDetails) -> str:
    name = str(error["loc"][0]) if error["loc"] else ""
    field = cls.model_fields.get(name)
    env = name.upper() if name else "settings"
    if error["type"] == "missing":
        hint = f" ({field.description})" if field and field.description else ""
        return f"{env} is required but not set{hint}"
    return f"{env}: {error['msg']}"


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment; raise SettingsError naming every bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = [_describe(cls, e) for e in exc.errors(include_url=False)]
        raise SettingsError(problems) from None


ALL_SETTINGS: tuple[type[_Settings], ...] = (RouterSettings, ServerSettings, WorkerSettings)
