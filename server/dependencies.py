"""What routes take from the app: the runtime, its settings, the key check and upload reading."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security, UploadFile
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.auth import BearerAuth
from server.errors import BadRequestError
from server.runtime import Runtime
from server.settings import ServerSettings


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_settings(request: Request) -> ServerSettings:
    return get_runtime(request).settings


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="the server's API key")


def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """Puts the bearer scheme in the OpenAPI document, and checks again behind the middleware
    (BearerAuthMiddleware refuses first, before the body is read)."""
    auth: BearerAuth = request.app.state.auth
    auth.check(f"{credentials.scheme} {credentials.credentials}" if credentials else None)


Authorized = Depends(require_key)


async def read_upload(upload: UploadFile) -> bytes:
    data = await upload.read()
    if not data:
        raise BadRequestError("the uploaded file is empty")
    return data
