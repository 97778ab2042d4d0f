"""How many messages an SQS queue holds, read one way by everyone who asks: the launcher (is
there work?), the worker (progress), ``smart-router status`` and the local pipeline (is it idle?).

Only GetQueueAttributes: never a receive, which would count toward the queue's maxReceiveCount
and hide the message from the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from transcript_store.errors import QueueReadError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType

_ATTRIBUTES: Final[list[QueueAttributeFilterType]] = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """SQS's approximate counts: ``visible`` (waiting for a receive), ``in_flight`` (received,
    not yet deleted) and ``delayed``."""

    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def read_queue_depth(sqs: SQSClient, queue_url: str) -> QueueDepth:
    """The queue's counts; QueueReadError (naming the queue and the cause) when SQS cannot say."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=_ATTRIBUTES).get(
            "Attributes", {}
        )
    except (ClientError, BotoCoreError) as exc:
        raise QueueReadError(queue_url, f"{type(exc).__name__}: {exc}") from exc
    return QueueDepth(
        visible=int(attributes.get("ApproximateNumberOfMessages", "0")),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", "0")),
    )
