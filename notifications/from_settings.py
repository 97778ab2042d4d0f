"""The notifier a deployable's settings ask for (router, worker): :class:`Notifier` with its
publisher, webhook sender and signing-key source, or :class:`NotificationsOff`."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import httpx

from notifications.event_publisher import EventPublisher
from notifications.notifier import Notifier
from notifications.session_events import NotificationsOff
from notifications.webhooks import UrlChecker, WebhookSecretSource, WebhookSender
from transcript_contracts.keys import KeyLayout
from transcript_contracts.settings import NotificationSettings
from transcript_contracts.url_safety import check_url

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient


def build_notifier(
    settings: NotificationSettings,
    *,
    bucket: str,
    layout: KeyLayout,
    s3: S3Client,
    events: Callable[[], EventBridgeClient],
    ssm: Callable[[], SSMClient],
    http: httpx.Client | None = None,
    check: UrlChecker = check_url,
    executor: Executor | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Notifier | NotificationsOff:
    """The notifier the settings ask for; clients are made lazily by the callables."""
    if not settings.notifications_enabled:
        return NotificationsOff()
    source = WebhookSecretSource(
        secret=settings.webhook_secret, parameter=settings.webhook_secret_parameter, ssm=ssm
    )
    # Without a signing key there are no webhooks at all: they are never sent unsigned.
    secret = source if source.configured else None
    webhooks = WebhookSender(
        timeout_s=settings.webhook_timeout_s,
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
        client=http,
        check=check,
        sleep=sleep,
    )
    return Notifier(
        bucket=bucket,
        layout=layout,
        s3=s3,
        publisher=EventPublisher(events, settings.event_bus_name),
        webhooks=webhooks,
        secret=secret,
        webhook_url=settings.webhook_url,
        executor=executor,
    )
