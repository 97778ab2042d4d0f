"""Webhook signatures: HMAC-SHA256 over ``timestamp + "." + raw body``.

Every webhook request carries:

- ``X-STR-Timestamp``: Unix time in whole seconds when this attempt was signed;
- ``X-STR-Signature``: ``v1=<hex HMAC-SHA256(secret, f"{timestamp}." + raw body)>`` (several
  comma-separated ``v1=`` values may appear during a key rotation; one match is enough);
- ``X-STR-Event``: the detail-type (``Session Transcribed`` or ``Chunk Failed``);
- ``X-STR-Event-Id``: the event's id, also ``event_id`` in the body (deduplicate on it);
- ``Content-Type: application/json``.

Receivers call :func:`verify_signature` with the *raw* body bytes (before any JSON parsing),
reject anything it raises on (answer 400/401, the sender does not retry 4xx), and then
deduplicate on the event id: the timestamp tolerance bounds how long a captured request can be
replayed, the event id makes a replay inside that window harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Final

from notifications.errors import SignatureError, SignatureMismatchError, StaleTimestampError

SIGNATURE_HEADER: Final = "X-STR-Signature"
TIMESTAMP_HEADER: Final = "X-STR-Timestamp"
EVENT_HEADER: Final = "X-STR-Event"
EVENT_ID_HEADER: Final = "X-STR-Event-Id"
SIGNATURE_VERSION: Final = "v1"
DEFAULT_TOLERANCE_S: Final = 300.0


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def compute_signature(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}."`` followed by the raw body."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, timestamp: int, body: bytes) -> dict[str, str]:
    """The timestamp and signature headers for one request."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SIGNATURE_VERSION}={compute_signature(secret, timestamp, body)}",
    }


def verify_signature(
    secret: str | bytes,
    timestamp: str | int,
    body: bytes,
    signature: str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    now: Callable[[], float] = time.time,
) -> None:
    """Check a webhook request; return None when it is authentic and fresh.

    ``timestamp``: the ``X-STR-Timestamp`` header; ``body``: the raw request body;
    ``signature``: the ``X-STR-Signature`` header; ``tolerance_s``: how far the timestamp may
    be from this machine's clock, either way (default 300 s).

    Raises :class:`SignatureMismatchError` when the body, the timestamp or the key differ
    (a tampered body, a re-signed timestamp), :class:`StaleTimestampError` when the timestamp is
    outside the tolerance (a replay of an old request), :class:`SignatureError` for malformed
    headers (a timestamp that is not ASCII digits, no ``v1=`` value). Nothing else: every way a
    request can be wrong is a :class:`SignatureError`. Constant-time comparison.
    """
    if tolerance_s < 0:
        raise ValueError("tolerance_s must not be negative")
    text = str(timestamp).strip()
    # ASCII digits only: str.isdigit() also admits "١٢٣" and "²", which int() or the ASCII
    # signing input would then choke on with an error receivers were not told to expect.
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds, got {text[:20]!r}")
    signed_at = int(text)
    offered = [
        value.strip()[len(SIGNATURE_VERSION) + 1 :]
        for value in signature.split(",")
        if value.strip().startswith(f"{SIGNATURE_VERSION}=")
    ]
    if not offered:
        raise SignatureError(f"{SIGNATURE_HEADER} holds no {SIGNATURE_VERSION}= signature")
    expected = compute_signature(secret, text, body)
    # Every candidate is compared (no early exit) so timing tells nothing about which matched.
    matched = False
    for candidate in offered:
        matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), expected.encode())
    if not matched:
        raise SignatureMismatchError("signature does not match the body and timestamp")
    age = abs(now() - signed_at)
    if age > tolerance_s:
        raise StaleTimestampError(
            f"timestamp is {age:.0f} s from now, outside the {tolerance_s:.0f} s tolerance"
        )
