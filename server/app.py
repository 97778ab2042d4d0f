"""The FastAPI app: the factory wires routers, middleware and lifespan (docs/design.md §4).

Middleware, outermost first: request metrics, the bearer key (before the body is read), the body
cap. The model loads in the lifespan (a background thread), never at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from server.auth import BearerAuth, BearerAuthMiddleware
from server.body_limit import BodyLimitMiddleware
from server.errors import install_error_handlers
from server.observe import RequestMetricsMiddleware
from server.routes import health, metrics, openai, transcribe, transcribe_s3
from server.runtime import Runtime
from server.schemas import ErrorOut

# 502: an input could not be fetched (S3 or URL failed for a reason outside the request).
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 413, 415, 422, 502, 503)
}
_DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


def create_app(runtime: Runtime) -> FastAPI:
    """Build the app around a runtime (tests inject fakes at the runtime's seams).

    Reads the bearer key now (SSM when API_KEY_PARAMETER): a server without one never starts.
    """
    auth = BearerAuth(runtime.api_key())
    docs = runtime.settings.docs_enabled

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(
        title="Smart Transcription Router — transcription server",
        version="0.1.0",
        description="Whisper transcription. Every endpoint but /health needs "
        '`Authorization: Bearer <key>`. Errors are `{"error": {"code", "message"}}`.',
        lifespan=lifespan,
        responses=_ERRORS,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.runtime = runtime
    app.state.auth = auth
    install_error_handlers(app)
    for module in (health, metrics, transcribe, transcribe_s3, openai):
        app.include_router(module.router)
    # add_middleware wraps: the last added runs first.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=runtime.settings.max_upload_bytes)
    open_paths = (health.HEALTH_PATH, *(_DOCS_PATHS if docs else ()))
    app.add_middleware(BearerAuthMiddleware, auth=auth, open_paths=open_paths)
    app.add_middleware(RequestMetricsMiddleware, metrics=runtime.metrics)
    return app
