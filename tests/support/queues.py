"""The work queue and its DLQ, as template.yaml makes them, for tests on moto."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def create_work_queues(
    sqs: SQSClient, *, max_receive_count: int = 3, visibility_s: int | None = None
) -> tuple[str, str]:
    """Create ``work`` redriving to ``work-dlq`` after ``max_receive_count`` receives; returns
    (queue URL, DLQ URL)."""
    dlq_url = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
        )
    }
    if visibility_s is not None:
        attributes["VisibilityTimeout"] = str(visibility_s)
    queue_url = sqs.create_queue(QueueName="work", Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    return queue_url, dlq_url
