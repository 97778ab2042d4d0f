"""schemathesis against the server's own OpenAPI schema, with the full response checks: no
500s, every status code, content type, body and header as the schema documents them.

Cases are generated from the schema and sent to the app with the real model loaded; the
schemathesis pytest plugin is not used because it drives the app's lifespan once per case.
Generated audio never decodes, so the success answers of every response format, the S3 route
and an upstream failure are checked with hand-made cases too (issue 18).
"""

from __future__ import annotations

import json
from typing import Any, cast

import boto3
import pytest
import schemathesis
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from server.app import create_app
from server.runtime import Runtime
from tests.server.conftest import AUTH, BUCKET, make_settings

pytestmark = pytest.mark.slow

SPEC = create_app(Runtime(make_settings())).openapi()
SCHEMA = schemathesis.openapi.from_dict(SPEC)
# 502 (an input could not be fetched) and 503 (loading, busy, model failed) are answers by
# design, documented in the schema; a 500 never is.
SCHEMA.config.checks.not_a_server_error.expected_statuses = ["2xx", "3xx", "4xx", "502", "503"]
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


def _httpx_files(files: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, tuple[Any, ...]]]:
    """schemathesis builds ``requests``-style multipart parts; extra form properties may hold
    numbers or objects, which httpx can't stream: send them as their JSON text, as a browser
    form would send their text."""
    parts = []
    for name, (filename, value, *rest) in files:
        if not isinstance(value, bytes | str):
            value = json.dumps(value)
        parts.append((name, (filename, value, *rest)))
    return parts


def _send(client: TestClient, case: Any) -> Any:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    kwargs["headers"] = {**(kwargs.get("headers") or {}), **AUTH}
    if kwargs.get("files"):
        kwargs["files"] = _httpx_files(kwargs["files"])
    request = client.build_request(**kwargs)
    # Read the (multipart) body now: the checks look at the request, and a streamed one can't
    # be read after it was sent.
    request.read()
    return client.send(request)


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
        response = _send(client, case)
        # Every error in the documented {"error": {"code", "message"}} shape.
        if response.status_code >= 400:
            error = response.json()["error"]
            assert error["code"]
            assert error["message"]
        case.validate_response(response, checks=FULL_CHECKS)

    check()


# Random bytes never decode, so generated cases only ever see 415 from the upload routes: the
# success answers in every response format are checked here with real speech.
@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt", "verbose_json"])
@pytest.mark.parametrize(
    ("path", "field"), [("/transcribe", "audio"), ("/v1/audio/transcriptions", "file")]
)
def test_real_transcriptions_conform_in_every_format(
    live: tuple[TestClient, Runtime],
    english_wav: bytes,
    path: str,
    field: str,
    response_format: str,
) -> None:
    client, _ = live
    body: Any = {field: english_wav, "language": "en", "response_format": response_format}
    case = SCHEMA[path]["POST"].Case(
        body=body,
        media_type="multipart/form-data",
    )
    response = _send(client, case)
    assert response.status_code == 200, response.text
    case.validate_response(response, checks=FULL_CHECKS)


@mock_aws
def test_s3_answers_conform(live: tuple[TestClient, Runtime], english_wav: bytes) -> None:
    """Transcribed, answered from the stored transcript, and an input that is not there."""
    client, runtime = live
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="audio/s1/chunk-0000.wav", Body=english_wav)
    runtime._s3 = s3
    operation = SCHEMA["/transcribe-s3"]["POST"]
    request = {
        "s3_input_path": f"s3://{BUCKET}/audio/s1/chunk-0000.wav",
        "s3_output_path": f"s3://{BUCKET}/transcripts/s1/chunk-0000.json",
        "language": "en",
    }
    missing = {"s3_input_path": f"s3://{BUCKET}/audio/s1/chunk-0001.wav"}
    statuses = []
    bodies: list[Any] = [request, request, missing]
    for body in bodies:
        case = operation.Case(body=body, media_type="application/json")
        response = _send(client, case)
        statuses.append(response.status_code)
        case.validate_response(response, checks=FULL_CHECKS)
    assert statuses[:2] == [200, 200]
    assert statuses[2] >= 400


class _FailingS3:
    """S3 answering 500 to everything: the server must say 502, and document it."""

    def __getattr__(self, name: str) -> Any:
        def fail(**_kwargs: Any) -> Any:
            error = {
                "Error": {"Code": "InternalError"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            }
            raise ClientError(error, name)  # type: ignore[arg-type]

        return fail


def test_upstream_failure_is_a_documented_502(live: tuple[TestClient, Runtime]) -> None:
    client, runtime = live
    saved = runtime._s3
    runtime._s3 = cast(Any, _FailingS3())
    try:
        case = SCHEMA["/transcribe-s3"]["POST"].Case(
            body={"s3_input_path": f"s3://{BUCKET}/audio/s1/chunk-0000.wav"},
            media_type="application/json",
        )
        response = _send(client, case)
    finally:
        runtime._s3 = saved
    assert response.status_code == 502, response.text
    case.validate_response(response, checks=FULL_CHECKS)
