"""Truthful health and backpressure (P6), with a fake engine at the runtime's loader seam."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from server.app import create_app
from server.runtime import Runtime
from tests.server.conftest import AUTH, BlockingTranscriber, make_settings
from tests.support.speech import encode


def _wav(tmp_path: Path) -> bytes:
    tone = (0.1 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440)).astype(np.float32)
    return encode(tone, tmp_path / "tone.wav").read_bytes()


def test_health_is_503_while_the_model_loads(tmp_path: Path) -> None:
    gate = threading.Event()
    fake = BlockingTranscriber()
    fake.release.set()

    def slow_loader(settings: object) -> BlockingTranscriber:
        gate.wait(30)
        return fake

    runtime = Runtime(make_settings(), engine_loader=slow_loader)
    with TestClient(create_app(runtime)) as client:
        loading = client.get("/health")
        assert loading.status_code == 503
        assert loading.json()["status"] == "loading"
        assert loading.json()["model_loaded"] is False
        refused = client.post(
            "/transcribe", headers=AUTH, files={"audio": ("a.wav", _wav(tmp_path))}
        )
        assert refused.status_code == 503
        gate.set()
        assert runtime.wait_loaded(10)
        assert client.get("/health").json()["status"] == "healthy"


def test_health_is_503_when_the_model_cannot_load() -> None:
    def broken(settings: object) -> BlockingTranscriber:
        raise OSError("no such model directory")

    runtime = Runtime(make_settings(), engine_loader=broken)
    with TestClient(create_app(runtime)) as client:
        runtime.wait_loaded(10)
        body = client.get("/health")
        assert body.status_code == 503
        assert body.json()["status"] == "unavailable"
        assert "no such model directory" in body.json()["detail"]


def test_full_queue_answers_503_with_retry_after_and_health_says_busy(tmp_path: Path) -> None:
    fake = BlockingTranscriber()
    runtime = Runtime(
        make_settings(max_pending=2, batch_max_size=1, batch_max_wait_ms=0),
        engine_loader=lambda s: fake,
    )
    wav = _wav(tmp_path)
    with TestClient(create_app(runtime)) as client, ThreadPoolExecutor(4) as pool:
        assert runtime.wait_loaded(10)

        def post() -> Any:
            return client.post("/transcribe", headers=AUTH, files={"audio": ("a.wav", wav)})

        # One in the model, then two waiting; one at a time, so that the worker has taken the
        # first off the queue before the others arrive, however slow the machine.
        running = []
        for expected in (1, 2, 3):
            running.append(pool.submit(post))
            deadline = time.monotonic() + 20
            while runtime.worker is not None and (
                runtime.worker.depth < expected or not fake.batches
            ):
                assert time.monotonic() < deadline, f"depth never reached {expected}"
                time.sleep(0.01)
        assert runtime.worker is not None
        assert runtime.worker.saturated
        busy = post()
        assert busy.status_code == 503
        assert busy.json()["error"]["code"] == "busy"
        assert int(busy.headers["Retry-After"]) >= 1
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "busy"
        assert health.json()["queue_depth"] == 3
        fake.release.set()
        assert [f.result().status_code for f in running] == [200, 200, 200]
        assert client.get("/health").json()["status"] == "healthy"


def test_concurrent_requests_share_a_batch(tmp_path: Path) -> None:
    fake = BlockingTranscriber()
    runtime = Runtime(
        make_settings(batch_max_size=4, batch_max_wait_ms=500, max_pending=8),
        engine_loader=lambda s: fake,
    )
    wav = _wav(tmp_path)
    fake.release.set()
    with TestClient(create_app(runtime)) as client, ThreadPoolExecutor(4) as pool:
        assert runtime.wait_loaded(10)
        futures = [
            pool.submit(client.post, "/transcribe", headers=AUTH, files={"audio": ("a.wav", wav)})
            for _ in range(4)
        ]
        assert all(f.result().status_code == 200 for f in futures)
    assert max(fake.batches) > 1, fake.batches
