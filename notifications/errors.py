"""Typed errors of the notifications package.

None of them ever reaches the transcription path: the :class:`~notifications.notifier.Notifier`
catches them by type, logs them and records the failed delivery (a notification is never a
reason to fail or retry transcription work).

NotificationError
├── EventPublishError          EventBridge did not take the event
├── SecretError                the webhook signing key is not set or unreadable (SSM)
├── WebhookError               a webhook was not delivered
│   ├── WebhookRefusedError    the URL breaks the SSRF rules (P17): nothing was sent
│   ├── WebhookRejectedError   the receiver answered a final status
│   └── WebhookDeliveryError   every attempt failed (transport, 429, 5xx)
└── SignatureError             (receivers' side) a signature does not verify; also ValueError
    ├── SignatureMismatchError no signature matches the body and timestamp
    └── StaleTimestampError    the timestamp is outside the tolerance
"""

from __future__ import annotations


class NotificationError(Exception):
    """Base of every error the notifications package raises."""


class EventPublishError(NotificationError):
    """EventBridge did not take the event (API error, or the entry came back failed)."""


class SecretError(NotificationError):
    """The webhook signing key is not configured or could not be read (SSM)."""


class WebhookError(NotificationError):
    """A webhook was not delivered."""

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts


class WebhookRefusedError(WebhookError):
    """The callback URL breaks the SSRF rules (docs/design.md P17): nothing was sent."""


class WebhookRejectedError(WebhookError):
    """The receiver answered a final status (3xx, 4xx other than 429): not retried."""


class WebhookDeliveryError(WebhookError):
    """Transport errors, 429 or 5xx on every attempt."""


class SignatureError(NotificationError, ValueError):
    """A webhook signature does not verify (receivers' side, :func:`verify_signature`)."""


class SignatureMismatchError(SignatureError):
    """No signature matches the body and timestamp: tampered, or signed with another key."""


class StaleTimestampError(SignatureError):
    """The timestamp is outside the tolerance: a replay, or clocks far apart."""
