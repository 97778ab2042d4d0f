"""A secret from settings or from an SSM SecureString, read once and cached.

Shared by the router (the server's bearer key) and the notifications (the webhook signing key).
The value is never logged and never part of a repr.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from pydantic import SecretStr

logger = logging.getLogger(__name__)


class SsmSecret:
    """``value`` (settings) wins; else ``parameter`` is read from SSM on first use. Failures
    raise ``error`` (the caller's own exception type) with a message naming the parameter."""

    def __init__(
        self,
        *,
        value: SecretStr | None,
        parameter: str | None,
        ssm: Callable[[], SSMClient],
        error: Callable[[str], Exception],
        missing: str,
        what: str,
    ) -> None:
        self._value = value
        self._parameter = parameter
        self._ssm = ssm
        self._error = error
        self._missing = missing
        self._what = what
        self._cached: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        cached = self._cached is not None
        return f"{type(self).__name__}(parameter={self._parameter!r}, cached={cached})"

    @property
    def configured(self) -> bool:
        return self._value is not None or bool(self._parameter)

    def get(self) -> str:
        if self._value is not None:
            return self._value.get_secret_value()
        with self._lock:
            if self._cached is None:
                self._cached = self._fetch()
            return self._cached

    def _fetch(self) -> str:
        if not self._parameter:
            raise self._error(self._missing)
        try:
            response = self._ssm().get_parameter(Name=self._parameter, WithDecryption=True)
        except (ClientError, BotoCoreError) as exc:
            # The exception text names the parameter, never its value.
            raise self._error(f"reading SSM parameter {self._parameter!r} failed: {exc}") from exc
        value = response.get("Parameter", {}).get("Value")
        if not value:
            raise self._error(f"SSM parameter {self._parameter!r} is empty")
        logger.info("%s read from SSM", self._what, extra={"parameter": self._parameter})
        return value
