"""The worker's side of the SQS work queue (receive, delete, change visibility), through an
injected boto3 client (moto in tests)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from batch_worker.errors import QueueError
from transcript_store.errors import QueueReadError
from transcript_store.queue_depth import read_queue_depth

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

logger = logging.getLogger(__name__)

# SQS counts the 12 h from the first receive; a longer visibility is rejected.
MAX_VISIBILITY_TOTAL_S: Final = 12 * 3600
_BATCH_LIMIT: Final = 10


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    received_at: float  # monotonic seconds


def _detail(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"


class WorkQueue:
    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sqs = sqs
        self.url = queue_url
        self._monotonic = monotonic

    def receive(self, max_messages: int, wait_s: int, visibility_s: int) -> list[ReceivedMessage]:
        try:
            response = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_s,
                VisibilityTimeout=visibility_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (ClientError, BotoCoreError) as exc:
            raise QueueError("ReceiveMessage", _detail(exc)) from exc
        now = self._monotonic()
        return [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m.get("Body", ""),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                received_at=now,
            )
            for m in response.get("Messages", [])
        ]

    def delete(self, message: ReceivedMessage) -> None:
        try:
            self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt_handle)
        except (ClientError, BotoCoreError) as exc:
            raise QueueError("DeleteMessage", _detail(exc)) from exc

    def change_visibility(self, changes: Sequence[tuple[ReceivedMessage, int]]) -> list[str]:
        """Set each message's visibility (seconds from now); the ids whose change failed."""
        failed: list[str] = []
        for start in range(0, len(changes), _BATCH_LIMIT):
            part = changes[start : start + _BATCH_LIMIT]
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {
                    "Id": str(i),
                    "ReceiptHandle": message.receipt_handle,
                    "VisibilityTimeout": seconds,
                }
                for i, (message, seconds) in enumerate(part)
            ]
            try:
                response = self._sqs.change_message_visibility_batch(
                    QueueUrl=self.url, Entries=entries
                )
            except (ClientError, BotoCoreError) as exc:
                raise QueueError("ChangeMessageVisibilityBatch", _detail(exc)) from exc
            for entry in response.get("Failed", []):
                message = part[int(entry["Id"])][0]
                logger.warning(
                    "visibility change refused",
                    extra={"message_id": message.message_id, "code": entry.get("Code")},
                )
                failed.append(message.message_id)
        return failed

    def depth(self) -> int | None:
        """Visible messages (approximate); None when SQS cannot say right now."""
        try:
            return read_queue_depth(self._sqs, self.url).visible
        except QueueReadError as exc:
            logger.debug("queue depth unavailable: %s", exc.detail)
            return None
