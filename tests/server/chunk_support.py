"""Builders for the chunk-job tests of the server: a moto bucket and queue, a fast fake engine,
an S3 client that fails on chosen keys, a slow S3 body."""

from __future__ import annotations

import io
import threading
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from botocore.exceptions import EndpointConnectionError

from whisper_engine.results import Segment, TranscriptionResult


def wav_bytes(seconds: float = 1.0) -> bytes:
    """A 16 kHz mono tone as WAV; the fake engine reports its duration."""
    t = np.arange(int(seconds * 16_000)) / 16_000
    pcm = (0.2 * np.sin(2 * np.pi * 440.0 * t) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


CORRUPT_AUDIO = b"ID3" + bytes(range(256)) * 8


@dataclass
class FakeEngine:
    """Answers every audio at once; ``hook(batch)`` runs first (block, raise). ``batches``
    records each call's audio lengths in seconds."""

    hook: Callable[[list[float]], object] | None = None
    batches: list[list[float]] = field(default_factory=list)
    model_name: str = "fake-whisper"
    device: str = "cpu"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def transcribe_many(
        self, audios: Sequence[np.ndarray], *, language: Any = None
    ) -> list[TranscriptionResult]:
        lengths = [round(a.shape[0] / 16_000, 2) for a in audios]
        with self.lock:
            self.batches.append(lengths)
        if self.hook is not None:
            self.hook(lengths)
        return [
            TranscriptionResult(
                text=f"tone of {length:.1f} seconds",
                segments=[Segment(0.0, length, f"tone of {length:.1f} seconds")],
                language="en",
                duration_s=length,
                model=self.model_name,
            )
            for length in lengths
        ]

    def unload(self) -> None:
        return None

    @property
    def chunks(self) -> int:
        with self.lock:
            return sum(len(b) for b in self.batches)


class SlowBody:
    """An S3 body that trickles ``parts`` parts, ``delay_s`` apart."""

    def __init__(self, data: bytes, parts: int, delay_s: float) -> None:
        self._data = data
        self._parts = parts
        self._delay_s = delay_s

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        step = max(1, len(self._data) // self._parts)
        for start in range(0, len(self._data), step):
            time.sleep(self._delay_s)
            yield self._data[start : start + step]

    def close(self) -> None:
        return None


class FaultyS3:
    """A real (moto) client, except for the calls named in ``faults``: (operation, key) ->
    a callable that answers instead (raise, or return a slow body)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.faults: dict[tuple[str, str], Callable[..., Any]] = {}

    def fail(self, operation: str, key: str) -> None:
        def raise_transport(**_kwargs: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://s3.example.invalid")

        self.faults[(operation, key)] = raise_transport

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name not in ("head_object", "get_object"):
            return attr

        def call(**kwargs: Any) -> Any:
            fault = self.faults.get((name, kwargs.get("Key", "")))
            return fault(**kwargs) if fault else attr(**kwargs)

        return call
