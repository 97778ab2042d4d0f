"""A value made on first use, once, by whichever thread asks first: the Lambda handlers' app and
clients (built once per container, after the first event, so a cold start that only fails fast
on settings pays for nothing else) and clients needed only on some paths (SSM, EC2)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """``lazy()`` makes the value with ``make`` on the first call and returns it ever after;
    ``lazy.set(value)`` installs one (tests, local runs), ``lazy.set(None)`` makes it anew on
    the next call."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def __call__(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value

    def set(self, value: T | None) -> None:
        with self._lock:
            self._value = value
