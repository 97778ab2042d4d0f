"""The embedded AWS stand-in (moto's server on loopback) and the resources the system needs.

Everything here is plain boto3 against ``AWS_ENDPOINT_URL``: the same calls provision real AWS
(where template.yaml does it instead).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import boto3
import httpx
from botocore.config import Config

from notifications.models import EVENT_SOURCE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)

REGION: Final = "eu-north-1"
# moto accepts any credentials; fixed ones keep child processes and this one in one account.
CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
CLIENT_CONFIG: Final = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})


@dataclass(frozen=True)
class Names:
    """What the local run creates. Distinct names per run keep re-runs and tests apart."""

    bucket: str = "smart-router-local"
    queue: str = "transcription-queue"
    dead_letter_queue: str = "transcription-dlq"
    event_queue: str = "router-events"
    router_failure_queue: str = "router-failures"
    # What a subscriber sees: a rule on the default bus for our events, into a queue.
    notification_queue: str = "notifications"
    notification_rule: str = "transcription-notifications"
    rule: str = "audio-chunk-created"
    idempotency_table: str = "router-idempotency"
    api_key_parameter: str = "/smart-router/local/server-api-key"
    audio_prefix: str = "audio/"
    transcript_prefix: str = "transcripts/"
    max_receive_count: int = 3


@dataclass(frozen=True)
class Resources:
    names: Names
    queue_url: str
    dead_letter_queue_url: str
    event_queue_url: str
    router_failure_queue_url: str
    notification_queue_url: str


@dataclass(frozen=True)
class Clients:
    s3: S3Client
    sqs: SQSClient
    events: EventBridgeClient
    dynamodb: DynamoDBClient
    ssm: SSMClient

    @classmethod
    def create(cls, endpoint_url: str) -> Clients:
        session = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

        options: dict[str, Any] = {"endpoint_url": endpoint_url, "config": CLIENT_CONFIG}
        return cls(
            s3=session.client("s3", **options),
            sqs=session.client("sqs", **options),
            events=session.client("events", **options),
            dynamodb=session.client("dynamodb", **options),
            ssm=session.client("ssm", **options),
        )


@contextmanager
def embedded_aws(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """moto's server in a thread of this process; yields its endpoint URL, stops on exit."""
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import WSGIRequestHandler

    # The request log would drown the run's own output.
    WSGIRequestHandler.log_request = lambda *args, **kwargs: None  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    url = f"http://{bound_host}:{bound_port}"
    # moto's backends live in this process, shared by every server or mock in it: start from
    # an empty account, not from what an earlier run in the same process left behind.
    httpx.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    try:
        yield url
    finally:
        server.stop()


def aws_environment(endpoint_url: str) -> dict[str, str]:
    """Environment variables that point boto3 (in this process or a child) at the stand-in."""
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint_url}


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in os.environ for the block (the router reads its settings from it)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _queue(sqs: SQSClient, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def provision(clients: Clients, names: Names, *, api_key: str, visibility_s: int = 60) -> Resources:
    """Create (or find, on a re-run) everything the router, server and worker use."""
    s3 = clients.s3
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if names.bucket not in existing:
        s3.create_bucket(
            Bucket=names.bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
    # S3 → EventBridge, as in AWS: every object event of the bucket goes to the default bus.
    s3.put_bucket_notification_configuration(
        Bucket=names.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    dlq_url, dlq_arn = _queue(
        clients.sqs, names.dead_letter_queue, {"MessageRetentionPeriod": "1209600"}
    )
    queue_url, _ = _queue(
        clients.sqs,
        names.queue,
        {
            "VisibilityTimeout": str(visibility_s),
            "MessageRetentionPeriod": "345600",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(names.max_receive_count)}
            ),
        },
    )
    event_url, event_arn = _queue(clients.sqs, names.event_queue, {"VisibilityTimeout": "120"})
    failure_url, _ = _queue(clients.sqs, names.router_failure_queue, {})
    notification_url, notification_arn = _queue(clients.sqs, names.notification_queue, {})
    clients.events.put_rule(
        Name=names.notification_rule,
        EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
        State="ENABLED",
    )
    clients.events.put_targets(
        Rule=names.notification_rule, Targets=[{"Id": "subscriber", "Arn": notification_arn}]
    )
    # The rule of template.yaml; locally its target is a queue that the poller reads.
    clients.events.put_rule(
        Name=names.rule,
        EventPattern=json.dumps(
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [names.bucket]},
                    "object": {"key": [{"prefix": names.audio_prefix}]},
                },
            }
        ),
        State="ENABLED",
    )
    clients.events.put_targets(Rule=names.rule, Targets=[{"Id": "router", "Arn": event_arn}])
    tables = clients.dynamodb.list_tables().get("TableNames", [])
    if names.idempotency_table not in tables:
        clients.dynamodb.create_table(
            TableName=names.idempotency_table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    clients.ssm.put_parameter(
        Name=names.api_key_parameter, Value=api_key, Type="SecureString", Overwrite=True
    )
    return Resources(
        names=names,
        queue_url=queue_url,
        dead_letter_queue_url=dlq_url,
        event_queue_url=event_url,
        router_failure_queue_url=failure_url,
        notification_queue_url=notification_url,
    )
