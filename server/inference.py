"""One inference worker thread that batches audio from all concurrent requests.

The event loop never runs the model (P6): requests put their decoded audio on a bounded queue and
await a future; the worker takes up to ``max_batch`` jobs, waiting at most ``max_wait_s`` to fill
the batch, and runs them through the engine together. A full queue is backpressure: the caller
gets ServerBusyError (503 + Retry-After) and /health says busy.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from server.errors import ServerBusyError
from whisper_engine.errors import WhisperEngineError
from whisper_engine.results import TranscriptionResult

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)


class Transcriber(Protocol):
    """What the server needs of the engine (whisper_engine.WhisperEngine satisfies it)."""

    @property
    def model_name(self) -> str: ...

    @property
    def device(self) -> str: ...

    def transcribe_many(
        self,
        audios: Sequence[NDArray[np.float32]],
        *,
        language: str | Sequence[str | None] | None = None,
    ) -> list[TranscriptionResult]: ...

    def unload(self) -> None: ...


@dataclass
class _Job:
    samples: NDArray[np.float32]
    language: str | None
    future: asyncio.Future[TranscriptionResult]
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)


BatchObserver = Callable[[int], None]


class InferenceWorker:
    def __init__(
        self,
        engine: Transcriber,
        *,
        max_batch: int,
        max_wait_s: float,
        max_pending: int,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=max_pending)
        self._in_flight = 0
        self._stop = threading.Event()
        self._on_batch = on_batch
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self._avg_batch_s = 5.0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def depth(self) -> int:
        """Jobs waiting plus jobs in the batch being run."""
        return self._queue.qsize() + self._in_flight

    @property
    def saturated(self) -> bool:
        return self._queue.full()

    def retry_after_s(self) -> int:
        batches_ahead = max(1, self.depth // self.max_batch)
        return max(1, round(batches_ahead * self._avg_batch_s))

    def submit(
        self, samples: NDArray[np.float32], language: str | None
    ) -> asyncio.Future[TranscriptionResult]:
        loop = asyncio.get_running_loop()
        job = _Job(samples, language, loop.create_future(), loop)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise ServerBusyError(
                f"{self.depth} transcriptions are waiting; try again later",
                retry_after_s=self.retry_after_s(),
            ) from None
        return job.future

    def _take_batch(self) -> list[_Job]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take_batch()
            if not batch:
                continue
            self._in_flight = len(batch)
            started = time.perf_counter()
            try:
                self._run_batch(batch)
            finally:
                self._in_flight = 0
                elapsed = time.perf_counter() - started
                self._avg_batch_s = 0.8 * self._avg_batch_s + 0.2 * elapsed
                if self._on_batch is not None:
                    self._on_batch(len(batch))

    def _run_batch(self, batch: list[_Job]) -> None:
        try:
            results = self.engine.transcribe_many(
                [j.samples for j in batch], language=[j.language for j in batch]
            )
        except WhisperEngineError as exc:
            if len(batch) == 1:
                _settle(batch[0], error=exc)
                return
            # One bad job must not fail its neighbours: run them one by one.
            logger.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            for job in batch:
                self._run_batch([job])
            return
        except BaseException as exc:
            # An unexpected failure (a bug, out of memory) reaches every waiter as itself, and
            # the worker keeps serving; the server's error mapping turns it into a 500.
            logger.exception("inference failed")
            for job in batch:
                _settle(job, error=exc)
            if not isinstance(exc, Exception):
                raise
            return
        for job, result in zip(batch, results, strict=True):
            _settle(job, result=result)


def _settle(
    job: _Job, *, result: TranscriptionResult | None = None, error: BaseException | None = None
) -> None:
    def apply() -> None:
        if job.future.done():
            return  # the request went away (client disconnect)
        if error is not None:
            job.future.set_exception(error)
        elif result is not None:
            job.future.set_result(result)

    job.loop.call_soon_threadsafe(apply)
