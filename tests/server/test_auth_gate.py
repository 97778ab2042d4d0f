"""P16 before the body: every route but /health refuses without the key, before reading a byte.

No model is needed: the key is checked in middleware, ahead of routing and body parsing.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
import starlette.formparsers
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.app import create_app
from server.runtime import Runtime
from tests.server.conftest import API_KEY, AUTH, make_settings

OPEN = "/health"
DOCS = ("/docs", "/redoc", "/openapi.json")
API_PATHS = {"/metrics", "/transcribe", "/transcribe-s3", "/transcribe-url"}
BAD_KEYS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": API_KEY},
    {"Authorization": f"Basic {API_KEY}"},
    {"Authorization": "Bearer"},
]


def routes_of(app: FastAPI) -> list[tuple[str, set[str]]]:
    """(path, methods) of every route the app serves, read from app.routes."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI >= 0.160 includes lazily
    except ImportError:
        return [(r.path, set(r.methods or ())) for r in app.routes]  # type: ignore[attr-defined]
    return [(c.path or "", set(c.methods or ())) for c in iter_route_contexts(app.routes)]


def _multipart(size: int) -> tuple[bytes, str]:
    boundary = "gate"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + b"\0" * size
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Runtime(make_settings()))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    # No lifespan: nothing here needs the model, and the gate must not depend on it.
    return TestClient(app)


def test_every_route_but_health_answers_401_without_the_key(
    app: FastAPI, client: TestClient
) -> None:
    walked = routes_of(app)
    assert {path for path, _ in walked} >= API_PATHS | {OPEN}, walked
    checked = 0
    for path, methods in walked:
        for method in methods:
            for headers in BAD_KEYS:
                response = client.request(method, path, headers=headers)
                if path == OPEN:
                    assert response.status_code != 401, (method, path)
                    continue
                checked += 1
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.headers["WWW-Authenticate"] == "Bearer"
                if method != "HEAD":
                    assert response.json()["error"]["code"] == "unauthorized"
                    assert response.json()["error"]["message"]
    assert checked >= len(API_PATHS) * len(BAD_KEYS)


def test_unknown_paths_and_docs_need_the_key_too(client: TestClient) -> None:
    for path in ("/nowhere", "/health/", *DOCS):
        assert client.get(path).status_code == 401, path
    # With the key the docs don't exist: DOCS_ENABLED is off by default.
    for path in DOCS:
        assert client.get(path, headers=AUTH).status_code == 404, path


def test_docs_enabled_serves_docs_without_the_key_and_nothing_else() -> None:
    app = create_app(Runtime(make_settings(docs_enabled=True)))
    client = TestClient(app)
    for path in DOCS:
        assert client.get(path).status_code == 200, path
    assert "/transcribe" in client.get("/openapi.json").json()["paths"]
    for path, methods in routes_of(app):
        if path in (OPEN, *DOCS, "/docs/oauth2-redirect"):
            continue
        for method in methods:
            assert client.request(method, path).status_code == 401, (method, path)


def test_malformed_json_without_the_key_is_401_not_422(client: TestClient) -> None:
    for path in ("/transcribe-url", "/transcribe-s3"):
        headers = {"content-type": "application/json"}
        refused = client.post(path, content=b'{"url": ', headers=headers)
        assert refused.status_code == 401, refused.text
        invalid = client.post(path, content=b'{"url": ', headers={**headers, **AUTH})
        assert invalid.status_code == 422, invalid.text


def _call(app: FastAPI, headers: dict[str, str], body: bytes) -> tuple[int, int]:
    """Send one POST /transcribe straight to the ASGI app; (status, receive() calls)."""
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/transcribe",
        "raw_path": b"/transcribe",
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"]), reads


def test_unauthenticated_upload_is_refused_before_the_body_is_read(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    spooled: list[object] = []
    real_spool = starlette.formparsers.SpooledTemporaryFile  # type: ignore[attr-defined]

    def spool(*args: Any, **kwargs: Any) -> Any:
        spooled.append(args)
        return real_spool(*args, **kwargs)

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", spool)
    body, content_type = _multipart(2 * 1024 * 1024)
    headers = {"content-type": content_type, "content-length": str(len(body))}

    for bad in BAD_KEYS:
        status, reads = _call(app, {**headers, **bad}, body)
        assert (status, reads) == (401, 0), bad
    assert spooled == []

    # The control: with the key the same request is read and spooled (then 503: no model).
    status, reads = _call(app, {**headers, **AUTH}, body)
    assert reads >= 1
    assert len(spooled) == 1
    assert status == 503
