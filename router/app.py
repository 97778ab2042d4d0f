"""The router application: checks an intake object, absorbs duplicates (P1) and dispatches to
the routing functions. Built once per container from settings; tests build it with moto.

Duplicates: the Powertools Idempotency utility with a DynamoDB table, keyed on
(bucket, key, etag), never on the event id. A concurrent second delivery finds the first one's
"in progress" record and returns without work; if the first fails, it raises, its record is
deleted, and Lambda retries it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import boto3
import botocore.session
import httpx
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from botocore.config import Config
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER

from notifications import build_notifier
from router.budget import TimeBudget
from router.routing import ChunkObject, RouteOutcome, RouterDeps, handle_manifest, route_chunk
from router.s3_event import ObjectEvent
from router.services import ServerKeySource, ServerLocator, WorkQueueSender
from router.settings import RouterSettings
from transcript_contracts.errors import KeyGrammarError
from transcript_contracts.keys import ManifestKey
from transcript_contracts.lazy import Lazy
from transcript_contracts.settings import load_settings
from transcript_store import TranscriptStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_PREFIX: Final = "router-chunk"
# Explicit timeouts on every AWS call too (P5); standard retry mode for throttling.
AWS_CONFIG: Final = Config(
    connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}
)

T = TypeVar("T")


def fast_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser goes through dateutil for every timestamp of a response
    (each key of a listing): ~5 ms of CPU per chunk. ISO 8601 via the standard library, the
    rest (HTTP dates, epoch numbers) by botocore's own parser. Same values as botocore's."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return DEFAULT_TIMESTAMP_PARSER(value)
        return parsed
    return DEFAULT_TIMESTAMP_PARSER(value)


def use_fast_timestamps(core: botocore.session.Session) -> None:
    """Install ``fast_timestamp`` for every client of this botocore session."""
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=fast_timestamp
    )


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Idempotency hook: a stored result returned for a duplicate delivery is flagged so."""
    if isinstance(response, dict):
        return {**response, "duplicate": True}
    return response


class RouterApp:
    def __init__(self, deps: RouterDeps, persistence: BasePersistenceLayer) -> None:
        self.deps = deps
        self._config = IdempotencyConfig(
            event_key_jmespath="[bucket, key, etag]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=deps.settings.idempotency_ttl_s,
            response_hook=_mark_duplicate,
        )
        self._route_once: Callable[..., dict[str, Any]] = idempotent_function(
            self._route_payload,
            data_keyword_argument="chunk",
            persistence_store=persistence,
            config=self._config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )

    def _route_payload(self, *, chunk: dict[str, str], budget: TimeBudget) -> dict[str, Any]:
        parsed = self.deps.layout.parse_audio_chunk(chunk["key"])
        obj = ChunkObject(bucket=chunk["bucket"], etag=chunk["etag"], chunk=parsed)
        return route_chunk(obj, budget, self.deps).to_dict()

    def process(self, event: ObjectEvent, context: LambdaContext) -> RouteOutcome:
        """Route one object; returns what happened, raises only when it must be retried."""
        deps = self.deps
        if event.bucket != deps.settings.bucket_name:
            return _ignored(event, f"bucket {event.bucket!r} is not BUCKET_NAME")
        try:
            parsed = deps.layout.parse_intake(event.key)
        except KeyGrammarError as exc:
            return _ignored(event, f"key outside the grammar: {exc.reason}")
        if isinstance(parsed, ManifestKey):
            return handle_manifest(event.bucket, parsed, deps)

        etag = event.etag or deps.store.object_etag(event.bucket, event.key)
        if etag is None:
            return _ignored(event, "object does not exist (re-drive of a deleted chunk?)")
        etag = etag.strip('"')
        obj = ChunkObject(bucket=event.bucket, etag=etag, chunk=parsed)
        budget = TimeBudget(
            context.get_remaining_time_in_millis, deps.settings.queue_send_reserve_s
        )
        if event.force:
            logger.info("forced re-drive: duplicate record bypassed")
            return route_chunk(obj, budget, deps)

        self._config.register_lambda_context(context)
        try:
            result = self._route_once(
                chunk={"bucket": obj.bucket, "key": obj.key, "etag": etag}, budget=budget
            )
        except IdempotencyAlreadyInProgressError:
            logger.info("duplicate delivery while the first is still in progress")
            return RouteOutcome("duplicate", obj.uri, etag, reason="in_progress", duplicate=True)
        outcome = RouteOutcome.from_dict(result)
        if outcome.duplicate:
            logger.info("duplicate delivery: already %s", outcome.status)
        return outcome


def _ignored(event: ObjectEvent, reason: str) -> RouteOutcome:
    logger.warning("event ignored: %s", reason)
    return RouteOutcome("ignored", event.uri, event.etag, reason=reason)


def build_app(
    settings: RouterSettings | None = None,
    *,
    session: boto3.session.Session | None = None,
    http: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RouterApp:
    """Settings (failing fast), clients and the app. Called once per container."""
    settings = settings or load_settings(RouterSettings)
    if session is None:
        core = botocore.session.get_session()
        use_fast_timestamps(core)
        session = boto3.session.Session(botocore_session=core)
    s3 = session.client("s3", config=AWS_CONFIG)
    sqs = session.client("sqs", config=AWS_CONFIG)
    dynamodb = session.client("dynamodb", config=AWS_CONFIG)
    ssm = Lazy(lambda: session.client("ssm", config=AWS_CONFIG))
    ec2 = Lazy(lambda: session.client("ec2", config=AWS_CONFIG))
    deps = RouterDeps(
        settings=settings,
        layout=settings.layout,
        store=TranscriptStore(s3),
        queue=WorkQueueSender(sqs=sqs, queue_url=settings.queue_url),
        # Timeouts are explicit on every request; redirects are never followed.
        http=http or httpx.Client(follow_redirects=False, timeout=httpx.Timeout(5.0)),
        locator=ServerLocator(
            url=settings.server_url,
            instance_tag=settings.server_instance_tag,
            port=settings.server_port,
            ec2=ec2,
        ),
        api_key=ServerKeySource(
            key=settings.api_key, parameter=settings.api_key_parameter, ssm=ssm
        ),
        pool=ThreadPoolExecutor(max_workers=4, thread_name_prefix="router-io"),
        sleep=sleep,
        notifier=build_notifier(
            settings,
            bucket=settings.bucket_name,
            layout=settings.layout,
            s3=s3,
            events=Lazy(lambda: session.client("events", config=AWS_CONFIG)),
            ssm=ssm,
            sleep=sleep,
        ),
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table, boto3_client=dynamodb
    )
    return RouterApp(deps, persistence)
