"""One inference worker thread that batches audio from all concurrent requests.

The event loop never runs the model (P6): requests put their decoded audio on a bounded queue and
await a future; the worker takes up to ``max_batch`` jobs, waiting at most ``max_wait_s`` to fill
the batch, and runs them through the engine together.

Backpressure (503 + Retry-After, /health says busy) has two bounds: MAX_PENDING jobs, and the
bytes of decoded audio in flight (MAX_DECODED_AUDIO_MB). A request is admitted before it decodes,
reserving what its decode may hold (a small, highly compressed file can decode to hundreds of
MB); the reservation shrinks to the real array once decoded and is released when the model is
done with it, so hostile small uploads cannot push the server out of memory.
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

from server.admission import AudioBudget, Ticket
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
    ticket: Ticket
    enqueued: float = field(default_factory=time.perf_counter)

    def done(self) -> None:
        """Drop the audio, then give its bytes back to the budget (never the other way round)."""
        if hasattr(self, "samples"):
            del self.samples
        self.ticket.release()


BatchObserver = Callable[[int], None]


class InferenceWorker:
    def __init__(
        self,
        engine: Transcriber,
        *,
        max_batch: int,
        max_wait_s: float,
        max_pending: int,
        max_decoded_bytes: int,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.budget = AudioBudget(max_decoded_bytes)
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
    def busy_reason(self) -> str | None:
        """Why no new transcription can be taken now, or None."""
        if self._queue.full():
            return "queue is full"
        if self.budget.exhausted:
            return "decoded audio in flight is at MAX_DECODED_AUDIO_MB"
        return None

    @property
    def saturated(self) -> bool:
        return self.busy_reason is not None

    def retry_after_s(self) -> int:
        batches_ahead = max(1, self.depth // self.max_batch)
        return max(1, round(batches_ahead * self._avg_batch_s))

    def _busy(self) -> ServerBusyError:
        return ServerBusyError(
            f"{self.depth} transcriptions are waiting; try again later",
            retry_after_s=self.retry_after_s(),
        )

    def admit(self, decode_bytes: int) -> Ticket:
        """Reserve what a decode may hold, before decoding; ServerBusyError when it can't."""
        if self._queue.full():
            # Refuse before decoding: a busy server should not spend CPU on work it can't take.
            raise self._busy()
        ticket = self.budget.reserve(decode_bytes)
        if ticket is None:
            raise ServerBusyError(
                f"decoded audio in flight would exceed MAX_DECODED_AUDIO_MB "
                f"({self.budget.used} of {self.budget.capacity} bytes held); try again later",
                retry_after_s=self.retry_after_s(),
            )
        return ticket

    def submit(
        self, samples: NDArray[np.float32], language: str | None, ticket: Ticket
    ) -> asyncio.Future[TranscriptionResult]:
        """Queue decoded audio; the ticket is the worker's from here on (released when done)."""
        loop = asyncio.get_running_loop()
        job = _Job(samples, language, loop.create_future(), loop, ticket)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            job.done()
            raise self._busy() from None
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
            size = self._in_flight = len(batch)
            started = time.perf_counter()
            try:
                self._run_batch(batch)
            finally:
                for job in batch:
                    job.done()
                # Not held while the next batch is awaited.
                del batch
                self._in_flight = 0
                elapsed = time.perf_counter() - started
                self._avg_batch_s = 0.8 * self._avg_batch_s + 0.2 * elapsed
                if self._on_batch is not None:
                    self._on_batch(size)

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
