"""Typed API errors and their one mapping to JSON responses ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from transcript_contracts.errors import KeyGrammarError
from whisper_engine.errors import (
    AudioDecodeError,
    AudioTooLongError,
    UnsupportedLanguageError,
    WhisperEngineError,
)


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequestError(ApiError):
    status, code = 400, "bad_request"


class UnauthorizedError(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str) -> None:
        # RFC 6750: a 401 names the scheme the client must use.
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenInputError(ApiError):
    """The input location is not allowed (bucket not configured, URL not public)."""

    status, code = 400, "input_not_allowed"


class ConflictError(ApiError):
    """What the request would create exists already but cannot be used as the answer."""

    status, code = 409, "conflict"


class PayloadTooLargeError(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaError(ApiError):
    status, code = 415, "unsupported_media"


class UnprocessableError(ApiError):
    status, code = 422, "unprocessable"


class ServiceUnavailableError(ApiError):
    status, code = 503, "unavailable"


class ServerBusyError(ServiceUnavailableError):
    code = "busy"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class UpstreamError(ApiError):
    """An input could not be fetched (S3 or URL) for a reason outside the request."""

    status, code = 502, "upstream_error"


class ServerKeyError(Exception):
    """The server's own bearer key can't be had (unset, or SSM failed): it must not start."""


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def api_error_response(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one rendering of an ApiError; middleware that answers before routing uses it too."""
    return error_response(exc.status, exc.code, exc.message, {**exc.headers, **(headers or {})})


def _from_engine(exc: WhisperEngineError) -> ApiError:
    if isinstance(exc, AudioTooLongError):
        return UnprocessableError(str(exc))
    if isinstance(exc, AudioDecodeError):
        return UnsupportedMediaError(str(exc))
    if isinstance(exc, UnsupportedLanguageError):
        return BadRequestError(str(exc))
    return ServiceUnavailableError(f"transcription failed: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, ApiError):  # pragma: no cover - registered for ApiError only
            raise exc
        return api_error_response(exc)

    async def engine_error(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, WhisperEngineError):  # pragma: no cover
            raise exc
        mapped = _from_engine(exc)
        return error_response(mapped.status, mapped.code, mapped.message)

    async def key_error(_: Request, exc: Exception) -> JSONResponse:
        return error_response(400, "invalid_key", str(exc))

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, RequestValidationError):  # pragma: no cover
            raise exc
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
            raise exc
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(WhisperEngineError, engine_error)
    app.add_exception_handler(KeyGrammarError, key_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
