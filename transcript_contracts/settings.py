"""The shared settings base, field mixins and annotated types every deployable composes its own
settings class from (``router/settings.py``, ``batch_worker/settings.py``, ``launcher/settings.py``,
``server/settings.py``, ``smart_router/settings.py``), and :func:`load_settings`.

Settings come from the environment (and ``.env`` locally). Every field has a description and is
listed in ``.env.example`` (a test keeps them in step). ``load_settings`` fails fast at start
with a message that names each missing or bad variable. An empty value (``API_KEY=``, as
``scripts/step-000`` writes it) means unset, for every setting: the default applies, or a
required one is reported missing.
"""

from __future__ import annotations

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
from pydantic_settings import BaseSettings, SettingsConfigDict

from transcript_contracts.errors import KeyGrammarError, SettingsError
from transcript_contracts.keys import KeyLayout, check_bucket_name, check_prefix
from transcript_contracts.language import Language
from transcript_contracts.url_safety import UnsafeUrlError, check_url_shape
from transcript_contracts.validation import validation_problems

Device = Literal["auto", "cpu", "cuda"]
ComputeType = Literal["auto", "float32", "int8", "bfloat16", "float16"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_EVENT_BUS_RE = re.compile(
    r"^(?:arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/)?[A-Za-z0-9/._-]{1,256}$"
)


def _prefix(value: str) -> str:
    try:
        return check_prefix(value)
    except KeyGrammarError as exc:
        raise ValueError(exc.reason) from exc


def _bucket(value: str) -> str:
    try:
        return check_bucket_name(value)
    except KeyGrammarError as exc:
        raise ValueError(exc.reason) from exc


Prefix = Annotated[str, AfterValidator(_prefix)]
BucketName = Annotated[str, AfterValidator(_bucket)]


class SettingsBase(BaseSettings):
    """What every deployable's settings share: the sources, frozen values, ``LOG_LEVEL`` and
    "empty means unset"."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        # Empty environment and .env values are skipped before they are decoded (a list
        # setting would otherwise fail to parse "" as JSON).
        env_ignore_empty=True,
        extra="ignore",
        case_sensitive=False,
        frozen=True,
        # Each deployable builds only its own settings class, on first use: the router's cold
        # import does not pay for the server's, worker's and launcher's validators.
        defer_build=True,
    )

    log_level: LogLevel = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        """ "" from any source (also values passed in code, which env_ignore_empty does not
        see) counts as not given: ``API_KEY=`` must not stop API_KEY_PARAMETER being used."""
        if isinstance(data, dict):
            return {name: value for name, value in data.items() if value != ""}
        return data


class PrefixSettings(SettingsBase):
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


class EngineSettings(SettingsBase):
    """How the Whisper engine runs; shared by the server and the worker."""

    model_id: str | None = Field(
        None,
        description=(
            "The model registry (s3://BUCKET/models/NAME/ for its latest version, "
            ".../NAME/v-<hash>/ pinned: downloaded into MODEL_CACHE_DIR and verified), a local "
            "directory, or a Hugging Face id already in the local cache (never downloaded); "
            "unset means the model prepared by `smart-router model prepare`. Deployments "
            "publish KBLab/kb-whisper-small (docs/model-supply.md)."
        ),
    )
    model_cache_dir: str | None = Field(
        None,
        description=(
            "Where an s3:// MODEL_ID is downloaded and verified (instance store or EBS; about "
            "twice the model's size free); unset means ~/.cache/smart-router/models. A verified "
            "version is reused across restarts without downloading."
        ),
    )
    language: Language = Field(
        "auto",
        description=(
            "Language of chunks whose session states none: 'auto' detects it (once per session, "
            "kept for its later chunks); a code such as 'sv' for a deployment whose audio is "
            "all in one language. Whisper told the wrong language translates."
        ),
    )
    device: Device = Field("auto", description="Inference device: auto, cpu or cuda.")
    compute_type: ComputeType = Field(
        "auto",
        description=(
            "How the model's weights are stored and multiplied: auto (float16 on CUDA; int8 on "
            "a CPU, with bfloat16 encoder and attention where the CPU has native bfloat16), "
            "float32, int8 (CPU only), bfloat16 or float16."
        ),
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Windows (up to 30 s each) decoded together; unset: 4 on CPU, 16 on CUDA.",
    )
    word_timestamps: bool = Field(
        False,
        description="Store each segment's words with their times in the chunk transcripts.",
    )


class QueueWorkSettings(SettingsBase):
    """How a consumer of the work queue (the batch worker, the server's drainer) holds the
    messages it received: one set of rules for both."""

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


class NotificationSettings(SettingsBase):
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
        5.0,
        gt=0,
        le=30,
        description="Deadline of one webhook attempt (connect, TLS, request, answer headers), s.",
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
        problems = validation_problems(exc, root="settings", describe=lambda e: _describe(cls, e))
        raise SettingsError(problems) from None
