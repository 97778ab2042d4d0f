"""Completion notifications (issue 9): EventBridge events, signed webhooks, failure records.

Needs only what the router's Lambda package has (boto3, httpx, pydantic, tenacity): the router
and the worker both use it. Receivers verify webhooks with :func:`verify_signature`.
"""

from notifications.errors import (
    EventPublishError,
    NotificationError,
    SecretError,
    SignatureError,
    SignatureMismatchError,
    StaleTimestampError,
    WebhookDeliveryError,
    WebhookError,
    WebhookRefusedError,
    WebhookRejectedError,
)
from notifications.event_publisher import EventPublisher
from notifications.from_settings import build_notifier
from notifications.models import (
    CHUNK_FAILED,
    EVENT_SOURCE,
    SESSION_TRANSCRIBED,
    ChunkFailedDetail,
    DeliveryFailureRecord,
    SessionTranscribedDetail,
)
from notifications.notifier import Notifier
from notifications.session_events import NotificationsOff, SessionEvents
from notifications.signing import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify_signature,
)
from notifications.webhooks import WebhookSecretSource, WebhookSender

__all__ = [
    "CHUNK_FAILED",
    "EVENT_HEADER",
    "EVENT_ID_HEADER",
    "EVENT_SOURCE",
    "SESSION_TRANSCRIBED",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ChunkFailedDetail",
    "DeliveryFailureRecord",
    "EventPublishError",
    "EventPublisher",
    "NotificationError",
    "NotificationsOff",
    "Notifier",
    "SecretError",
    "SessionEvents",
    "SessionTranscribedDetail",
    "SignatureError",
    "SignatureMismatchError",
    "StaleTimestampError",
    "WebhookDeliveryError",
    "WebhookError",
    "WebhookRefusedError",
    "WebhookRejectedError",
    "WebhookSecretSource",
    "WebhookSender",
    "build_notifier",
    "sign",
    "verify_signature",
]
