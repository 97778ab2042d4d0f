"""Bearer-token auth (P16): every endpoint but /health; constant-time compare; key never logged."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from server.errors import UnauthorizedError


class BearerAuth:
    def __init__(self, key: SecretStr) -> None:
        if not key.get_secret_value():
            raise ValueError("the API key must not be empty")
        self._key = key.get_secret_value().encode("utf-8")

    def check(self, authorization: str | None) -> None:
        if not authorization:
            raise UnauthorizedError("missing Authorization: Bearer <key> header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise UnauthorizedError("Authorization header must be 'Bearer <key>'")
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._key):
            raise UnauthorizedError("invalid API key")
