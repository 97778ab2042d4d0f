"""The queues as `smart-router status` reads them, without hiding work from the worker.

The work queue is never received from. A receive there counts toward its ``maxReceiveCount`` (a
status call could push a chunk into the DLQ) and hides the message from the worker, so only its
approximate counts are read (GetQueueAttributes). The dead-letter queue is peeked: messages are
received with a short visibility (:data:`PEEK_VISIBILITY_S`) until it has no more, then
released at once (visibility 0), so a failed chunk stays hidden for milliseconds normally and at
most ``PEEK_VISIBILITY_S`` if this process dies mid-way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from transcript_contracts.models import QueueMessage
from transcript_store import QueueReadError, read_queue_depth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

PEEK_VISIBILITY_S: Final = 10


@dataclass
class QueueStatus:
    url: str
    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    # DLQ only: how many messages were peeked, and how many were this session's.
    peeked: int | None = None
    session_messages: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "visible": self.visible,
            "in_flight": self.in_flight,
            "delayed": self.delayed,
            "peeked": self.peeked,
            "session_messages": self.session_messages,
            "error": self.error,
        }


def queue_counts(sqs: SQSClient, url: str) -> QueueStatus:
    try:
        depth = read_queue_depth(sqs, url)
    except QueueReadError as exc:
        return QueueStatus(url=url, error=exc.detail)
    return QueueStatus(
        url=url, visible=depth.visible, in_flight=depth.in_flight, delayed=depth.delayed
    )


def peek_dead_letters(
    sqs: SQSClient, url: str, bucket: str, session_id: str, *, limit: int, wait_s: int
) -> tuple[QueueStatus, dict[int, str]]:
    """Receive the DLQ's messages with a short visibility, then release them all at once."""
    status = queue_counts(sqs, url)
    if status.error is not None:
        return status, {}
    held: dict[str, str] = {}  # message id → receipt handle
    failed: dict[int, str] = {}
    try:
        while len(held) < limit:
            try:
                got = sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(10, limit - len(held)),
                    VisibilityTimeout=PEEK_VISIBILITY_S,
                    WaitTimeSeconds=wait_s,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
            except (ClientError, BotoCoreError) as exc:
                status.error = f"{type(exc).__name__}: {exc}"
                break
            new = [m for m in got if m.get("MessageId") and m["MessageId"] not in held]
            if not new:
                break
            for message in new:
                held[message["MessageId"]] = message["ReceiptHandle"]
                match = _session_chunk(message.get("Body", ""), bucket, session_id)
                if match is not None:
                    index, why = match
                    failed[index] = why
    finally:
        _release(sqs, url, list(held.values()))
    status.peeked = len(held)
    status.session_messages = len(failed)
    return status, failed


def _session_chunk(body: str, bucket: str, session_id: str) -> tuple[int, str] | None:
    try:
        message = QueueMessage.model_validate_json(body)
    except ValidationError:
        return None
    if message.bucket != bucket or message.session_id != session_id:
        return None
    return message.chunk_index, (
        f"in the dead-letter queue (queued because {message.reason.replace('_', ' ')}; "
        "the worker gave up after the queue's maxReceiveCount)"
    )


def _release(sqs: SQSClient, url: str, handles: list[str]) -> None:
    for start in range(0, len(handles), 10):
        batch = handles[start : start + 10]
        try:
            response = sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for i, h in enumerate(batch)
                ],
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "DLQ messages not released (visible again in %d s): %s", PEEK_VISIBILITY_S, exc
            )
            continue
        if response.get("Failed"):
            logger.warning(
                "%d DLQ message(s) not released (visible again in %d s)",
                len(response["Failed"]),
                PEEK_VISIBILITY_S,
            )
