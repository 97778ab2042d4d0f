"""A real uvicorn server on loopback with the real model: health stays fast under load (P6)."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.runtime import Runtime
from tests.server.conftest import AUTH, make_settings

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(model_dir: Path) -> Iterator[str]:
    port = _free_port()
    runtime = Runtime(make_settings(model_id=str(model_dir), batch_max_size=2))
    config = uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not become healthy"
        time.sleep(0.2)
    yield url
    server.should_exit = True
    thread.join(30)


def test_health_answers_fast_while_four_transcriptions_run(
    base_url: str, english_wav: bytes
) -> None:
    def transcribe() -> int:
        response = httpx.post(
            f"{base_url}/transcribe",
            headers=AUTH,
            files={"audio": ("a.wav", english_wav)},
            timeout=300,
        )
        return response.status_code

    latencies: list[float] = []
    with ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(transcribe) for _ in range(4)]
        time.sleep(0.3)
        while not all(j.done() for j in jobs):
            started = time.perf_counter()
            response = httpx.get(f"{base_url}/health", timeout=5)
            latencies.append(time.perf_counter() - started)
            assert response.status_code in (200, 503)
            assert response.json()["status"] in ("healthy", "busy")
            time.sleep(0.1)
        assert [j.result() for j in jobs] == [200] * 4
    assert len(latencies) >= 5, "transcriptions finished before health was polled"
    # Inference never runs on the event loop: health stays well under a second while busy.
    print(
        f"health under load: n={len(latencies)} p50={statistics.median(latencies) * 1000:.1f} ms "
        f"max={max(latencies) * 1000:.1f} ms"
    )
    assert max(latencies) < 1.0
