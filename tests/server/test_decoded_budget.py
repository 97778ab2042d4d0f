"""Small uploads, huge arrays: decoded audio in flight stays within MAX_DECODED_AUDIO_MB.

Real FLAC made by sox (silence compresses ~50x; decoded to 16 kHz float32 it grows again 4x per
sample), real decoding; only the model is a fake that holds each batch until released.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.admission import AudioBudget
from server.app import create_app
from server.inference import InferenceWorker
from server.runtime import Runtime
from server.settings import MIB, ServerSettings
from server.transcription import decode_cap_s, transcribe
from tests.server.conftest import AUTH, BlockingTranscriber, make_settings
from transcript_contracts.errors import SettingsError
from transcript_contracts.settings import load_settings

SECONDS = 60
ARRAY_BYTES = SECONDS * 16_000 * 4  # what one decoded upload holds once decoded
MAX_AUDIO_S = 90.0
BUDGET_MB = 16


class MeasuringTranscriber(BlockingTranscriber):
    """Holds every batch until released and records the decoded bytes it was ever handed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen_bytes: list[int] = []

    def transcribe_many(self, audios: Sequence[np.ndarray], *, language: Any = None) -> Any:
        self.seen_bytes.extend(a.nbytes for a in audios)
        return super().transcribe_many(audios, language=language)


@pytest.fixture(scope="module")
def silent_flac(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("budget") / "silence.flac"
    command = ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-C", "8", str(path)]
    subprocess.run([*command, "trim", "0", str(SECONDS)], check=True)
    data = path.read_bytes()
    # The attack's premise: the upload is a small fraction of what it decodes to.
    assert len(data) * 40 < ARRAY_BYTES, len(data)
    return data


@pytest.fixture
def server() -> Iterator[tuple[TestClient, Runtime, MeasuringTranscriber]]:
    fake = MeasuringTranscriber()
    settings = make_settings(
        max_audio_seconds=MAX_AUDIO_S,
        max_decoded_audio_mb=BUDGET_MB,
        batch_max_size=1,
        batch_max_wait_ms=0,
        max_pending=64,  # the queue is not what refuses here
    )
    runtime = Runtime(settings, engine_loader=lambda s: fake)
    with TestClient(create_app(runtime)) as client:
        assert runtime.wait_loaded(10)
        yield client, runtime, fake
        fake.release.set()


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@contextmanager
def posting(fake: MeasuringTranscriber, workers: int) -> Iterator[ThreadPoolExecutor]:
    """Threads to post from; the model is released before they are joined, even on failure."""
    pool = ThreadPoolExecutor(workers)
    try:
        yield pool
    finally:
        fake.release.set()
        pool.shutdown(wait=True)


def _post(client: TestClient, data: bytes) -> Any:
    return client.post("/transcribe", headers=AUTH, files={"audio": ("a.flac", data)})


def test_requests_over_the_budget_get_503_and_the_rest_are_served(
    server: tuple[TestClient, Runtime, MeasuringTranscriber], silent_flac: bytes
) -> None:
    client, runtime, fake = server
    worker = runtime.worker
    assert worker is not None
    budget = worker.budget
    assert budget.capacity == BUDGET_MB * MIB
    with posting(fake, 4) as pool:
        first = pool.submit(_post, client, silent_flac)
        # Decoded, the first holds its array only (the decode's double share is given back).
        _wait(lambda: budget.used == ARRAY_BYTES and bool(fake.seen_bytes), "first not decoded")
        second = pool.submit(_post, client, silent_flac)
        _wait(lambda: budget.used == 2 * ARRAY_BYTES, "second never decoded")
        # A third decode would need 2 x 77 s of audio on top: over 16 MiB.
        busy = _post(client, silent_flac)
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"]["code"] == "busy"
        assert "MAX_DECODED_AUDIO_MB" in busy.json()["error"]["message"]
        assert int(busy.headers["Retry-After"]) >= 1
        fake.release.set()
        assert first.result().status_code == 200
        assert second.result().status_code == 200
    assert fake.seen_bytes == [ARRAY_BYTES, ARRAY_BYTES]
    _wait(lambda: budget.used == 0, "reservations not released after the model finished")
    assert _post(client, silent_flac).status_code == 200


def test_a_flood_of_small_files_never_holds_more_than_the_budget(
    server: tuple[TestClient, Runtime, MeasuringTranscriber], silent_flac: bytes
) -> None:
    client, runtime, fake = server
    assert runtime.worker is not None
    budget = runtime.worker.budget
    with posting(fake, 12) as pool:
        posts = [pool.submit(_post, client, silent_flac) for _ in range(12)]
        # Two decoded uploads (7.7 MB) leave no room for a third decode (9.9 MB) in 16.8 MB:
        # at least ten are refused while the model holds the rest.
        _wait(lambda: sum(p.done() for p in posts) >= 10, "the flood was not refused")
        fake.release.set()
        statuses = [p.result().status_code for p in posts]
    served = statuses.count(200)
    assert served in (1, 2), statuses
    assert statuses.count(503) == 12 - served
    assert fake.seen_bytes == [ARRAY_BYTES] * served
    assert 0 < budget.peak <= budget.capacity
    _wait(lambda: budget.used == 0, "reservations leaked")


def test_a_header_that_under_declares_is_decoded_again_within_the_budget(
    server: tuple[TestClient, Runtime, MeasuringTranscriber],
    silent_flac: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, runtime, fake = server
    assert runtime.worker is not None
    budget = runtime.worker.budget
    import whisper_engine.audio

    def declares(seconds: float) -> None:
        monkeypatch.setattr(whisper_engine.audio, "probe_duration", lambda source: seconds)

    with posting(fake, 2) as pool:
        held = [pool.submit(_post, client, silent_flac)]
        _wait(lambda: budget.used == ARRAY_BYTES, "first never decoded")
        held.append(pool.submit(_post, client, silent_flac))
        _wait(lambda: budget.used == 2 * ARRAY_BYTES, "second never decoded")
        # The container says 1 s, the stream holds 60 s: the small first decode is admitted,
        # the full-length one it then needs (2 x 90 s) is not, beside the two held: busy.
        declares(1.0)
        refused = _post(client, silent_flac)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "busy"
        assert budget.used == 2 * ARRAY_BYTES
        fake.release.set()
        assert [h.result().status_code for h in held] == [200, 200]

    # With room, the same lie costs a second decode and nothing else.
    response = _post(client, silent_flac)
    assert response.status_code == 200, response.text
    assert response.json()["duration"] == pytest.approx(SECONDS, abs=0.1)
    assert budget.peak <= budget.capacity


def test_a_cancelled_request_holds_its_share_until_its_decode_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import whisper_engine.audio

    decoding, finish = threading.Event(), threading.Event()

    def slow_decode(source: object, *, max_duration_s: float) -> np.ndarray:
        decoding.set()
        finish.wait(10)
        return np.zeros(16_000, dtype=np.float32)

    monkeypatch.setattr(whisper_engine.audio, "probe_duration", lambda source: 10.0)
    monkeypatch.setattr(whisper_engine.audio, "decode_audio", slow_decode)
    runtime = Runtime(make_settings(max_audio_seconds=MAX_AUDIO_S, max_decoded_audio_mb=BUDGET_MB))
    worker = InferenceWorker(
        BlockingTranscriber(), max_batch=1, max_wait_s=0, max_pending=4, max_decoded_bytes=MIB * 16
    )
    runtime.worker = worker

    async def scenario() -> None:
        request = asyncio.ensure_future(transcribe(runtime, b"audio", "en"))
        await asyncio.to_thread(decoding.wait, 10)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        # The thread still decodes: its memory is still counted.
        assert worker.budget.used == 2 * decode_cap_s(10.0, MAX_AUDIO_S) * 16_000 * 4
        finish.set()
        for _ in range(200):
            if worker.budget.used == 0:
                break
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert worker.budget.used == 0


def test_decode_cap_follows_the_declared_duration() -> None:
    assert decode_cap_s(None, 7200) == 7200
    assert decode_cap_s(10, 7200) == pytest.approx(17)
    assert decode_cap_s(7000, 7200) == 7200
    assert decode_cap_s(9000, 7200) == 7200


def test_budget_reservations() -> None:
    budget = AudioBudget(1_000_000)
    a = budget.reserve(600_000)
    assert a is not None
    assert budget.reserve(500_000) is None
    assert a.resize(200_000)
    b = budget.reserve(500_000)
    assert b is not None
    assert not a.resize(600_000)  # would need 900 000 with b's 500 000
    assert a.held == 200_000
    assert budget.used == 700_000
    a.release()
    a.release()  # once only
    assert budget.used == 500_000
    assert budget.peak == 700_000
    assert not budget.exhausted
    c = budget.reserve(480_000)
    assert c is not None
    assert budget.exhausted  # 20 000 bytes free: not one second of audio


def test_budget_must_hold_one_decode_of_the_longest_audio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_KEY", "k")
    monkeypatch.setenv("MAX_AUDIO_SECONDS", "7200")
    monkeypatch.setenv("MAX_DECODED_AUDIO_MB", "512")
    with pytest.raises(SettingsError, match="MAX_DECODED_AUDIO_MB must be at least 879"):
        load_settings(ServerSettings, _env_file=None)
    monkeypatch.setenv("MAX_DECODED_AUDIO_MB", "879")
    assert load_settings(ServerSettings, _env_file=None).max_decoded_audio_bytes == 879 * MIB


def test_health_says_busy_when_the_budget_is_spent(
    server: tuple[TestClient, Runtime, MeasuringTranscriber],
) -> None:
    client, runtime, _ = server
    assert runtime.worker is not None
    budget = runtime.worker.budget
    ticket = budget.reserve(budget.capacity)
    assert ticket is not None
    try:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "busy"
        assert "MAX_DECODED_AUDIO_MB" in health.json()["detail"]
    finally:
        ticket.release()
    assert client.get("/health").json()["status"] == "healthy"
