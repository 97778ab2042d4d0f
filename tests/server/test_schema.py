"""schemathesis against the server's own OpenAPI schema: no 500s, responses match the schema.

Cases are generated from the schema and sent to the app with the real model loaded; the
schemathesis pytest plugin is not used because it drives the app's lifespan once per case.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.runtime import Runtime
from tests.server.conftest import AUTH, make_settings

pytestmark = pytest.mark.slow

SPEC = create_app(Runtime(make_settings())).openapi()
SCHEMA = schemathesis.openapi.from_dict(SPEC)
# Every response is checked against the schema: documented status code, documented content
# type, body valid against the documented schema for that status and type, and never a 500.
FULL_CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
OPERATIONS = [
    (path, method)
    for path, methods in SPEC["paths"].items()
    for method in methods
    if method in ("get", "post")
]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_api_conforms_to_its_schema(
    live: tuple[TestClient, Runtime], path: str, method: str
) -> None:
    client, _ = live
    operation = SCHEMA[path][method.upper()]

    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **AUTH}
        response = client.request(**kwargs)
        # Never a 500; every error in the documented {"error": {"code", "message"}} shape.
        assert response.status_code < 500 or response.status_code == 503, response.text
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"]
            assert error["message"]
        case.validate_response(response, checks=FULL_CHECKS)

    check()
