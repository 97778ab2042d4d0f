"""AWS-backed helpers of the router, each with an injected boto3 client (moto in tests):
where the server is (settings or EC2), its bearer key (settings or SSM, cached), the work queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from router.errors import ApiKeyError, QueueSendError, ServerLookupError
from transcript_contracts.models import QueueMessage
from transcript_store.ssm_secret import SsmSecret

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient
    from pydantic import SecretStr

logger = logging.getLogger(__name__)

SERVER_LOOKUP_TTL_S: Final = 60.0


class ServerKeySource(SsmSecret):
    """The server's bearer key: from settings (local runs) or an SSM SecureString, fetched once
    per container and cached. The value is never logged and never part of a repr."""

    def __init__(
        self,
        *,
        key: SecretStr | None,
        parameter: str | None,
        ssm: Callable[[], SSMClient],
    ) -> None:
        super().__init__(
            value=key,
            parameter=parameter,
            ssm=ssm,
            error=ApiKeyError,
            missing="neither API_KEY nor API_KEY_PARAMETER is set",
            what="server key",
        )


class ServerLocator:
    """The server's base URL: SERVER_URL, or the private IP of the running EC2 instance whose
    Name tag is SERVER_INSTANCE_TAG (looked up at most once a minute)."""

    def __init__(
        self,
        *,
        url: str | None,
        instance_tag: str | None,
        port: int,
        ec2: Callable[[], EC2Client],
        monotonic: Callable[[], float] = time.monotonic,
        ttl_s: float = SERVER_LOOKUP_TTL_S,
    ) -> None:
        self._url = url.rstrip("/") if url else None
        self._tag = instance_tag
        self._port = port
        self._ec2 = ec2
        self._monotonic = monotonic
        self._ttl_s = ttl_s
        self._cached: tuple[float, str | None] | None = None
        self._lock = threading.Lock()

    def base_url(self) -> str | None:
        """The URL, or None when no tagged instance is running (the server is down)."""
        if self._url:
            return self._url
        with self._lock:
            now = self._monotonic()
            if self._cached is not None and now - self._cached[0] < self._ttl_s:
                return self._cached[1]
            url = self._lookup()
            self._cached = (now, url)
            return url

    def _lookup(self) -> str | None:
        if not self._tag:
            return None
        filters: list[FilterTypeDef] = [
            {"Name": "tag:Name", "Values": [self._tag]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
        found: list[tuple[datetime, str]] = []
        try:
            pages = self._ec2().get_paginator("describe_instances").paginate(Filters=filters)
            for page in pages:
                for reservation in page.get("Reservations", []):
                    for instance in reservation.get("Instances", []):
                        ip = instance.get("PrivateIpAddress")
                        launched = instance.get("LaunchTime")
                        if ip and launched:
                            found.append((launched, ip))
        except (ClientError, BotoCoreError) as exc:
            raise ServerLookupError(f"DescribeInstances for tag {self._tag!r}: {exc}") from exc
        if not found:
            return None
        # The newest instance wins when a replacement overlaps the old one.
        _, ip = max(found)
        return f"http://{ip}:{self._port}"


class WorkQueueSender:
    """The router's side of the SQS work queue: it only sends. A failed send raises
    QueueSendError (the invocation must fail, P4)."""

    def __init__(self, *, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, message: QueueMessage) -> str:
        body = message.to_body()
        try:
            response = self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            raise QueueSendError(
                f"sending s3://{message.bucket}/{message.key} failed: {exc}"
            ) from exc
        return response["MessageId"]
