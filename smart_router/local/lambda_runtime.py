"""The router Lambda, run locally: EventBridge's rule delivers to a queue, this poller invokes the
very same ``router.handler.lambda_handler`` with each event and a Lambda-like context.

It keeps Lambda's asynchronous-invocation contract: an invocation that raises is retried
(``max_retries``, 2 as in template.yaml's EventInvokeConfig), and then the event goes to the
on-failure destination as the record Lambda itself writes (requestContext, requestPayload,
responsePayload with errorType and errorMessage).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

FUNCTION_NAME: Final = "transcription-router"
ACCOUNT: Final = "123456789012"


class LocalLambdaContext(LambdaContext):
    """What the handler reads from Lambda's context: names, request id, remaining time."""

    def __init__(self, timeout_s: float, region: str) -> None:
        self._deadline = time.monotonic() + timeout_s
        self._function_name = FUNCTION_NAME
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{FUNCTION_NAME}"
        self._memory_limit_in_mb = 256
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{FUNCTION_NAME}"
        self._log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Invocation:
    """One handled event: the handler's result, or the error after the last retry."""

    event: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    seconds: float
    duplicate_delivery: bool


Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


class LocalLambda:
    """Reads the rule's target queue and runs the handler, ``concurrency`` at a time."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        event_queue_url: str,
        failure_queue_url: str,
        handler: Handler,
        region: str,
        timeout_s: float = 60.0,
        concurrency: int = 4,
        max_retries: int = 2,
        retry_delays_s: tuple[float, ...] = (1.0, 2.0),
        duplicate_probability: float = 0.0,
        on_invocation: Callable[[Invocation], None] = lambda _: None,
        rng: random.Random | None = None,
    ) -> None:
        self._sqs = sqs
        self._event_queue_url = event_queue_url
        self._failure_queue_url = failure_queue_url
        self._handler = handler
        self._region = region
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._retry_delays_s = retry_delays_s
        self._duplicate_probability = duplicate_probability
        self._on_invocation = on_invocation
        self._rng = rng or random.Random()  # noqa: S311 - fault injection, not security
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="local-lambda")
        self._slots = threading.Semaphore(concurrency)
        self._stop = threading.Event()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._poll, name="local-lambda-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._pool.shutdown(wait=True)

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._in_flight > 0

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                received = self._sqs.receive_message(
                    QueueUrl=self._event_queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    MessageAttributeNames=["All"],
                )
            except (BotoCoreError, ClientError) as exc:
                logger.warning("event queue receive failed: %s", exc)
                self._stop.wait(0.5)
                continue
            for message in received.get("Messages", []):
                self._slots.acquire()
                with self._lock:
                    self._in_flight += 1
                self._pool.submit(self._deliver, message)

    def _deliver(self, message: MessageTypeDef) -> None:
        try:
            attributes = message.get("MessageAttributes", {})
            duplicate = "duplicate_of" in attributes
            event = json.loads(message["Body"])
            if not duplicate and self._rng.random() < self._duplicate_probability:
                # EventBridge delivers at least once: the same object event again, with its
                # own event id, handled concurrently with the first.
                copy = {**event, "id": str(uuid.uuid4())}
                self._sqs.send_message(
                    QueueUrl=self._event_queue_url,
                    MessageBody=json.dumps(copy),
                    MessageAttributes={
                        "duplicate_of": {"DataType": "String", "StringValue": str(event.get("id"))}
                    },
                )
            self._on_invocation(self._invoke(event, duplicate))
            self._sqs.delete_message(
                QueueUrl=self._event_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        finally:
            with self._lock:
                self._in_flight -= 1
            self._slots.release()

    def _invoke(self, event: dict[str, Any], duplicate: bool) -> Invocation:
        started = time.monotonic()
        error: BaseException | None = None
        for attempt in range(1, self._max_retries + 2):
            context = LocalLambdaContext(self._timeout_s, self._region)
            try:
                result = self._handler(event, context)
            except Exception as exc:  # noqa: BLE001 - Lambda's contract: any error is a failure
                error = exc
                logger.warning(
                    "invocation %d of event %s failed: %s: %s",
                    attempt,
                    event.get("id"),
                    type(exc).__name__,
                    exc,
                )
                if attempt <= self._max_retries:
                    delay = self._retry_delays_s[min(attempt - 1, len(self._retry_delays_s) - 1)]
                    self._stop.wait(delay)
                continue
            return Invocation(event, result, None, attempt, time.monotonic() - started, duplicate)
        if error is None:  # pragma: no cover - the loop runs at least once
            raise RuntimeError("no invocation ran")
        self._send_failure(event, error, self._max_retries + 1, context)
        return Invocation(
            event,
            None,
            f"{type(error).__name__}: {error}",
            self._max_retries + 1,
            time.monotonic() - started,
            duplicate,
        )

    def _send_failure(
        self, event: dict[str, Any], error: BaseException, attempts: int, context: LambdaContext
    ) -> None:
        """The on-failure destination record, in the shape Lambda writes it."""
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": context.aws_request_id,
                "functionArn": f"{context.invoked_function_arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "responsePayload": {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
            },
        }
        self._sqs.send_message(QueueUrl=self._failure_queue_url, MessageBody=json.dumps(record))


def redirect_router_output(log: IO[str]) -> contextlib.ExitStack:
    """The router's JSON logs and EMF metrics (stdout in Lambda) go to a file here, so the
    terminal shows the live table. Lambda runs one event per process; here several run in
    threads, so a log line's Powertools keys may come from a neighbouring invocation."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(log))
    # Powertools warns on stderr when an invocation published no metric (a skipped duplicate):
    # in Lambda that lands in the function's log, so here it goes to the router's log too.
    stack.enter_context(warnings.catch_warnings())

    def _to_log(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: IO[str] | None = None,
        line: str | None = None,
    ) -> None:
        log.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = _to_log
    for handler in logging.getLogger("router").handlers:
        if isinstance(handler, logging.StreamHandler):
            previous = handler.setStream(log)
            stack.callback(handler.setStream, previous)
    return stack
