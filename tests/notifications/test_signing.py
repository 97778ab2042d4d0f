"""Webhook signatures as a receiver checks them: authentic and fresh passes; a tampered body,
another key, a replay outside the tolerance and malformed headers are rejected."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from notifications import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    SignatureMismatchError,
    StaleTimestampError,
    sign,
    verify_signature,
)

SECRET = "whsec-unit"
NOW = 1_795_000_000
BODY = b'{"event_id":"e1","session_id":"s1"}'


def headers(body: bytes = BODY, timestamp: int = NOW, secret: str = SECRET) -> tuple[str, str]:
    signed = sign(secret, timestamp, body)
    return signed[TIMESTAMP_HEADER], signed[SIGNATURE_HEADER]


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    timestamp, signature = headers()
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert (timestamp, signature) == (str(NOW), f"v1={expected}")


def test_authentic_fresh_request_verifies() -> None:
    timestamp, signature = headers()
    verify_signature(SECRET, timestamp, BODY, signature, 300, now=lambda: NOW + 299)
    verify_signature(SECRET.encode(), int(timestamp), BODY, signature, 300, now=lambda: NOW - 10)


@pytest.mark.parametrize("body", [BODY.replace(b"s1", b"s2"), BODY + b" ", b"", BODY[:-1]], ids=str)
def test_tampered_body_is_rejected(body: bytes) -> None:
    timestamp, signature = headers()
    with pytest.raises(SignatureMismatchError):
        verify_signature(SECRET, timestamp, body, signature, now=lambda: NOW)


def test_other_key_and_retimestamped_signature_are_rejected() -> None:
    timestamp, signature = headers(secret="another-key")
    with pytest.raises(SignatureMismatchError):
        verify_signature(SECRET, timestamp, BODY, signature, now=lambda: NOW)
    # A replay with a fresh timestamp but the old signature.
    _, old_signature = headers(timestamp=NOW - 3600)
    with pytest.raises(SignatureMismatchError):
        verify_signature(SECRET, str(NOW), BODY, old_signature, now=lambda: NOW)


def test_replay_outside_the_tolerance_is_rejected() -> None:
    timestamp, signature = headers()
    with pytest.raises(StaleTimestampError, match="outside the 300 s tolerance"):
        verify_signature(SECRET, timestamp, BODY, signature, 300, now=lambda: NOW + 301)
    with pytest.raises(StaleTimestampError):  # from the future, too far
        verify_signature(SECRET, timestamp, BODY, signature, 300, now=lambda: NOW - 301)


def test_key_rotation_any_listed_signature_may_match() -> None:
    timestamp, new = headers()
    _, old = headers(secret="old-key")
    both = f"{old}, {new}"
    verify_signature(SECRET, timestamp, BODY, both, now=lambda: NOW)
    verify_signature("old-key", timestamp, BODY, both, now=lambda: NOW)


@pytest.mark.parametrize(
    ("timestamp", "signature", "message"),
    [
        ("", "v1=00", "Unix seconds"),
        ("12.5", "v1=00", "Unix seconds"),
        ("-5", "v1=00", "Unix seconds"),
        (str(NOW), "", "no v1= signature"),
        (str(NOW), "v0=abcdef", "no v1= signature"),
    ],
)
def test_malformed_headers_are_rejected(timestamp: str, signature: str, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_signature(SECRET, timestamp, BODY, signature, now=lambda: NOW)


def test_signature_errors_are_value_errors_for_receivers() -> None:
    assert issubclass(SignatureError, ValueError)
    assert issubclass(StaleTimestampError, SignatureError)


@pytest.mark.parametrize(
    "timestamp",
    [
        "١٧٩٥٠٠٠٠٠٠",  # Arabic-Indic digits: str.isdigit() and int() accept them
        "\uff11\uff17\uff19\uff15\uff10\uff10\uff10\uff10\uff100",  # full-width digits
        "²",  # superscript two: isdigit() but not int()
        " 1795000000\u00a0x",
        "1_795_000_000",  # int() accepts the underscores
    ],
)
def test_non_ascii_or_odd_digit_timestamps_raise_the_documented_error(timestamp: str) -> None:
    _, signature = headers()
    with pytest.raises(SignatureError, match="Unix seconds"):
        verify_signature(SECRET, timestamp, BODY, signature, now=lambda: NOW)
