"""moto checks a condition and then writes, without a lock: two threads can both pass
``If-None-Match: *`` (S3) or ``attribute_not_exists`` (DynamoDB). Real AWS evaluates these
atomically. Concurrency tests serialise moto's conditional writes to emulate that, so they test
our code's race behaviour rather than moto's.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto.dynamodb.models.table import Table
from moto.s3.responses import S3Response

_LOCK = threading.RLock()


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


@contextmanager
def atomic_conditional_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(S3Response, "put_object", _locked(S3Response.put_object))
    monkeypatch.setattr(Table, "put_item", _locked(Table.put_item))
    yield
