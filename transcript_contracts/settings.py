"""One typed settings object per deployable, read from the environment (and ``.env`` locally).

Every field has a description and is listed in ``.env.example`` (a test keeps them in step).
``load_settings`` fails fast at start with a message that names each missing or bad variable.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from transcript_contracts.errors import KeyGrammarError, SettingsError
from transcript_contracts.keys import KeyLayout, check_prefix
from transcript_contracts.url_safety import UnsafeUrlError, check_url_shape

Device = Literal["auto", "cpu", "cuda"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_LANGUAGE_RE = re.compile(r"^(auto|[a-z]{2,3})$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_EVENT_BUS_RE = re.compile(
    r"^(?:arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/)?[A-Za-z0-9/._-]{1,256}$"
)


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
        # Each deployable builds only its own settings class, on first use: the router's cold
        # import does not pay for the server's, worker's and launcher's validators.
        defer_build=True,
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


class NotificationSettings(_Settings):
    """Completion notifications (issue 9): EventBridge events and optional signed webhooks.

    A mixin of the deployables that stitch sessions or give up on chunks (router, worker).
    """

    notifications_enabled: bool = Field(
        True,
        description=(
            "Publish 'Session Transcribed' and 'Chunk Failed' events (and webhooks); false "
            "turns every notification off."
        ),
    )
    event_bus_name: str = Field(
        "default",
        description="EventBridge bus (name or ARN) the notifications are published on.",
    )
    webhook_url: str | None = Field(
        None,
        description=(
            "Global webhook every notification is POSTed to (https, public address: P17); a "
            "manifest's callback_url is used in addition for its session."
        ),
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key that signs webhook bodies (locally; in AWS use "
        "WEBHOOK_SECRET_PARAMETER).",
    )
    webhook_secret_parameter: str | None = Field(
        None, description="SSM SecureString parameter name that holds the webhook signing key."
    )
    webhook_timeout_s: float = Field(
        5.0, gt=0, le=30, description="Connect and read timeout of one webhook attempt, seconds."
    )
    webhook_max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per webhook delivery (transport errors, 429, 5xx)."
    )
    webhook_backoff_s: float = Field(
        0.5,
        ge=0,
        le=30,
        description="Wait before the first webhook retry, seconds; doubled for each next one.",
    )

    @field_validator("webhook_url", "webhook_secret", "webhook_secret_parameter", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("event_bus_name")
    @classmethod
    def _bus_name(cls, value: str) -> str:
        if not _EVENT_BUS_RE.match(value):
            raise ValueError("must be an EventBridge bus name or ARN ('default' for the default)")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_url_shape(value)
            except UnsafeUrlError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _webhook_secret(self) -> NotificationSettings:
        if self.webhook_url and not (self.webhook_secret or self.webhook_secret_parameter):
            raise ValueError(
                "WEBHOOK_URL needs WEBHOOK_SECRET or WEBHOOK_SECRET_PARAMETER: webhooks are "
                "always signed"
            )
        return self


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


class WorkerSettings(StorageSettings, EngineSettings, NotificationSettings):
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
    visibility_timeout_s: int = Field(
        600,
        ge=1,
        le=43_200,
        description=(
            "Visibility timeout given to received messages, seconds; the heartbeat renews it "
            "while a chunk is in work (capped at 12 h in total)."
        ),
    )
    heartbeat_interval_s: float = Field(
        120.0,
        gt=0,
        description="How often in-flight messages get their visibility renewed, seconds.",
    )
    retry_delay_s: int = Field(
        60,
        ge=0,
        le=43_200,
        description=(
            "Visibility set on a message that failed (corrupt audio, S3 error), seconds: it is "
            "retried that much later and reaches the DLQ after the queue's maxReceiveCount."
        ),
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

    @model_validator(mode="after")
    def _heartbeat_before_timeout(self) -> WorkerSettings:
        if self.heartbeat_interval_s >= self.visibility_timeout_s:
            raise ValueError(
                "HEARTBEAT_INTERVAL_S must be shorter than VISIBILITY_TIMEOUT_S, or messages "
                "become visible to other workers while still in work"
            )
        return self


_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")


def _word_list(value: Any) -> Any:
    """A list setting from the environment: a JSON list or comma-separated words ("" is [])."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class LauncherSettings(_Settings):
    """The midnight launcher Lambda: starts spot GPU instances that run the batch worker."""

    queue_url: str = Field(description="URL of the SQS work queue whose depth decides a launch.")
    launch_template_id: str = Field(
        pattern=r"^lt-[0-9a-f]{8,17}$",
        description="EC2 launch template id of the batch worker (template: WorkerLaunchTemplate).",
    )
    launch_template_version: str = Field(
        "$Latest",
        pattern=r"^(\$Latest|\$Default|[0-9]{1,9})$",
        description="Launch template version: $Latest, $Default or a number.",
    )
    launch_instance_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["g4dn.xlarge"],
        min_length=1,
        description="Instance types to try in order, comma-separated (spot first, then on-demand).",
    )
    launch_subnet_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Subnets (one per AZ) to try in order, comma-separated; empty lets EC2 pick the "
            "default subnet."
        ),
    )
    launch_on_demand_fallback: bool = Field(
        False,
        description="When no spot capacity is found anywhere, launch on-demand instead.",
    )
    launch_max_instances: int = Field(
        1,
        ge=1,
        le=20,
        description="Most batch instances at once; above 1 the launcher scales by queue depth.",
    )
    launch_messages_per_instance: int = Field(
        500,
        ge=1,
        description="Queue depth per instance when LAUNCH_MAX_INSTANCES is above 1.",
    )
    batch_instance_tag: str = Field(
        "transcription-batch-worker",
        pattern=r"^[A-Za-z0-9 _.:/=+@-]{1,255}$",
        description=(
            "Value of the SmartRouterRole tag (and Name) of batch instances: how the launcher "
            "finds running ones and what the instance role may terminate."
        ),
    )
    launch_token_window_s: int = Field(
        900,
        ge=60,
        le=86_400,
        description=(
            "Manual launches in the same window of this many seconds share EC2 ClientTokens, "
            "so a double invocation starts one instance (scheduled ones use the schedule time)."
        ),
    )

    @field_validator("launch_instance_types", "launch_subnet_ids", mode="before")
    @classmethod
    def _split_words(cls, value: Any) -> Any:
        return _word_list(value)

    @field_validator("launch_instance_types")
    @classmethod
    def _instance_types(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _INSTANCE_TYPE_RE.match(v)]
        if bad:
            raise ValueError(f"not EC2 instance types: {bad}")
        return value

    @field_validator("launch_subnet_ids")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _SUBNET_RE.match(v)]
        if bad:
            raise ValueError(f"not subnet ids: {bad}")
        return value


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


class StatusSettings(PrefixSettings):
    """`smart-router status`: where a session's pieces are (read-only; every value optional)."""

    bucket_name: BucketName | None = Field(
        None, description="S3 bucket that holds the audio chunks and the transcripts."
    )
    queue_url: str | None = Field(None, description="URL of the SQS work queue.")
    dlq_url: str | None = Field(
        None,
        description=(
            "URL of the work queue's dead-letter queue (the template's DeadLetterQueueUrl); "
            "`smart-router status` reads failed chunks from it."
        ),
    )

    @field_validator("bucket_name", "queue_url", "dlq_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value


ALL_SETTINGS: tuple[type[_Settings], ...] = (
    RouterSettings,
    ServerSettings,
    WorkerSettings,
    StatusSettings,
    LauncherSettings,
)
