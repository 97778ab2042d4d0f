"""Bearer-token auth (P16): every path but /health; constant-time compare; key never logged.

The check runs in a pure ASGI middleware, before routing and before anything reads the body: an
unauthenticated upload is refused without being parsed or spooled to disk, and a malformed body
without the key gets 401, not 422.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import ServerKeyError, UnauthorizedError, api_error_response
from transcript_store.ssm_secret import SsmSecret

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from pydantic import SecretStr


class ApiKeySource(SsmSecret):
    """The server's bearer key: API_KEY (local runs) or the SSM SecureString named by
    API_KEY_PARAMETER, read once and cached. Never logged, never part of a repr."""

    def __init__(
        self, *, key: SecretStr | None, parameter: str | None, ssm: Callable[[], SSMClient]
    ) -> None:
        super().__init__(
            value=key,
            parameter=parameter,
            ssm=ssm,
            error=ServerKeyError,
            missing="neither API_KEY nor API_KEY_PARAMETER is set: the server never runs open",
            what="server key",
        )


class BearerAuth:
    def __init__(self, key: str) -> None:
        if not key:
            raise ServerKeyError("the API key must not be empty")
        self._key = key.encode("utf-8")

    def check(self, authorization: str | None) -> None:
        if not authorization:
            raise UnauthorizedError("missing Authorization: Bearer <key> header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise UnauthorizedError("Authorization header must be 'Bearer <key>'")
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._key):
            raise UnauthorizedError("invalid API key")


class BearerAuthMiddleware:
    """Answers 401 for every HTTP request without the key, except on ``open_paths``."""

    def __init__(self, app: ASGIApp, auth: BearerAuth, open_paths: Collection[str]) -> None:
        self.app = app
        self.auth = auth
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        try:
            self.auth.check(_header(scope, b"authorization"))
        except UnauthorizedError as exc:
            # The body is never read; closing the connection spares reading what the client
            # still sends of it.
            response = api_error_response(exc, {"Connection": "close"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
