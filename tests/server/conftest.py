from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.runtime import Runtime
from server.settings import ServerSettings
from tests.support.speech import ENGLISH_TEXT, encode, espeak_available, synthesize
from whisper_engine.results import Segment, TranscriptionResult

API_KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_UPLOAD = 16 * 1024 * 1024
BUCKET = "audio-bucket"


def make_settings(**overrides: Any) -> ServerSettings:
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "language": "en",
        "device": "cpu",
        "allowed_buckets": [BUCKET],
        "max_upload_bytes": MAX_UPLOAD,
        "max_audio_seconds": 7200.0,
        "batch_max_size": 4,
        "batch_max_wait_ms": 50,
        "max_pending": 8,
    }
    values.update(overrides)
    return ServerSettings(_env_file=None, **values)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    from whisper_convert.prepare import prepare_default_model

    return Path(prepare_default_model())


@pytest.fixture(scope="session")
def english_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if not espeak_available():
        pytest.fail("espeak-ng is required (scripts/ci-tools.sh installs it)")
    path = tmp_path_factory.mktemp("speech") / "english.wav"
    encode(synthesize(ENGLISH_TEXT, "en"), path)
    return path.read_bytes()


@pytest.fixture(scope="session")
def english_mp3(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("speech") / "english.mp3"
    encode(synthesize(ENGLISH_TEXT, "en"), path)
    return path.read_bytes()


@pytest.fixture(scope="session")
def three_hour_flac(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Three hours of 8 kHz silence: small enough to upload, far over the duration cap."""
    path = tmp_path_factory.mktemp("long") / "three-hours.flac"
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "trim", "0", "3:00:00"],
        check=True,
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def live(model_dir: Path) -> Iterator[tuple[TestClient, Runtime]]:
    """The app with the real local model, loaded once per test module."""
    runtime = Runtime(make_settings(model_id=str(model_dir)))
    with TestClient(create_app(runtime)) as client:
        assert runtime.wait_loaded(120), runtime.load_error
        yield client, runtime


class BlockingTranscriber:
    """A fake at our own seam: holds every batch until released (for busy/backpressure tests)."""

    model_name = "fake"
    device = "cpu"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.batches: list[int] = []

    def transcribe_many(
        self, audios: Sequence[np.ndarray], *, language: Any = None
    ) -> list[TranscriptionResult]:
        self.batches.append(len(audios))
        self.release.wait(30)
        return [
            TranscriptionResult(
                text="x",
                segments=[Segment(0.0, 0.5, "x")],
                language="en",
                duration_s=a.shape[0] / 16000,
                model="fake",
            )
            for a in audios
        ]

    def unload(self) -> None:
        self.release.set()
