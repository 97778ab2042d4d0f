"""The server client on its own: health truthfulness, retry policy and the time budget."""

from __future__ import annotations

import httpx
import pytest
import respx

from router.budget import TimeBudget
from router.errors import ServerRejectedError
from router.server_client import MAX_ATTEMPTS, Timeouts, check_health, forward
from tests.router.conftest import Clock

BASE = "http://server.test:8000"
TIMEOUTS = Timeouts(connect=1.0, read=10.0)  # worst case 12 s per attempt


def budget_for(clock: Clock, seconds: float, reserve: float = 5.0) -> TimeBudget:
    deadline = clock.now + seconds
    return TimeBudget(lambda: int((deadline - clock.now) * 1000), reserve)


@pytest.fixture
def http() -> httpx.Client:
    return httpx.Client()


@pytest.mark.parametrize(
    ("response", "healthy", "reason"),
    [
        (httpx.Response(200, json={"status": "healthy", "model_loaded": True}), True, "healthy"),
        (httpx.Response(200, json={"status": "healthy"}), False, "model_loaded=None"),
        (httpx.Response(200, json={"status": "busy", "model_loaded": True}), False, "busy"),
        (httpx.Response(200, text="OK"), False, "without a JSON object"),
        (httpx.Response(200, json=["healthy"]), False, "without a JSON object"),
        (httpx.Response(503, json={"status": "loading"}), False, "HTTP 503 (status='loading')"),
        (httpx.Response(503, text="<html>"), False, "HTTP 503 (status=None)"),
        (httpx.Response(301, headers={"location": "http://elsewhere/"}), False, "HTTP 301"),
    ],
)
def test_health_is_truthful(
    http: httpx.Client, response: httpx.Response, healthy: bool, reason: str
) -> None:
    with respx.mock:
        respx.get(f"{BASE}/health").mock(return_value=response)
        got = check_health(http, BASE, 1.0)
    assert got.healthy is healthy
    assert reason in got.reason


def test_health_timeout_is_unhealthy(http: httpx.Client) -> None:
    with respx.mock:
        respx.get(f"{BASE}/health").mock(side_effect=httpx.ReadTimeout("slow"))
        got = check_health(http, BASE, 0.5)
    assert (got.healthy, got.reason) == (False, "health check failed: ReadTimeout")


def test_forward_stops_after_four_attempts(http: httpx.Client) -> None:
    clock = Clock()
    with respx.mock:
        route = respx.post(f"{BASE}/transcribe-s3").respond(503, json={"error": {"code": "busy"}})
        result = forward(http, BASE, "k", {}, TIMEOUTS, budget_for(clock, 900), clock.sleep)
    assert (result.ok, result.attempts, result.status_code) == (False, MAX_ATTEMPTS, 503)
    assert "busy" in result.detail
    assert route.call_count == MAX_ATTEMPTS
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_forward_ignores_retry_after_and_keeps_the_schedule(http: httpx.Client) -> None:
    clock = Clock()
    with respx.mock:
        respx.post(f"{BASE}/transcribe-s3").mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "120"}), httpx.Response(200)]
        )
        result = forward(http, BASE, "k", {}, TIMEOUTS, budget_for(clock, 900), clock.sleep)
    assert (result.ok, result.attempts) == (True, 2)
    assert clock.sleeps == [1.0]


@pytest.mark.parametrize(
    ("seconds", "cost", "attempts", "sleeps"),
    [
        # Each check: remaining - next wait - 12 s worst-case attempt must leave 5 s.
        (17.0, 0.0, 1, []),  # 17-1-12 < 5: no retry
        (18.0, 0.0, 2, [1.0]),  # 18-1-12 = 5: one retry; then 17-2-12 < 5
        (900.0, 0.0, 4, [1.0, 2.0, 4.0]),  # plenty: the attempt cap stops it
        (30.0, 6.0, 2, [1.0]),  # slow 503s eat time: 24-1-12 ok; 17-2-12 < 5
    ],
)
def test_budget_stops_retries_early(
    http: httpx.Client, seconds: float, cost: float, attempts: int, sleeps: list[float]
) -> None:
    clock = Clock()
    calls = 0

    def fail(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        clock.now += cost
        return httpx.Response(503)

    with respx.mock:
        respx.post(f"{BASE}/transcribe-s3").mock(side_effect=fail)
        result = forward(http, BASE, "k", {}, TIMEOUTS, budget_for(clock, seconds), clock.sleep)
    assert not result.ok
    assert (result.attempts, calls, clock.sleeps) == (attempts, attempts, sleeps)


@pytest.mark.parametrize("status", [400, 401, 404, 409, 413, 415, 422, 500, 501])
def test_forward_never_retries_other_statuses(http: httpx.Client, status: int) -> None:
    clock = Clock()
    with respx.mock:
        route = respx.post(f"{BASE}/transcribe-s3").respond(status, text="plain text error")
        with pytest.raises(ServerRejectedError) as info:
            forward(http, BASE, "k", {}, TIMEOUTS, budget_for(clock, 900), clock.sleep)
    assert route.call_count == 1 and clock.sleeps == []
    assert info.value.status_code == status and info.value.detail == "plain text error"


def test_forward_sends_bearer_and_explicit_timeouts(http: httpx.Client) -> None:
    clock = Clock()
    with respx.mock:
        route = respx.post(f"{BASE}/transcribe-s3").respond(200, json={})
        forward(http, BASE, "secret", {"a": 1}, TIMEOUTS, budget_for(clock, 900), clock.sleep)
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer secret"
    assert request.extensions["timeout"] == {
        "connect": 1.0,
        "read": 10.0,
        "write": 1.0,
        "pool": 1.0,
    }
