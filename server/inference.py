"""One inference worker thread that batches audio from all concurrent requests.

The event loop never runs the model (P6): requests put their decoded audio on a bounded queue and
await a future; the worker takes up to ``max_batch`` jobs, waiting at most ``max_wait_s`` to fill
the batch, and runs them through the engine together.

Backpressure (503 + Retry-After, /health says busy) has two bounds: MAX_PENDING jobs, and the
bytes of decoded audio in flight (MAX_DECODED_AUDIO_MB). A request is admitted before it decodes,
reserving what its decode may hold (a small, highly compressed file can decode to hundreds of
MB); the reservation shrinks to the real array once decoded and is released when the model is
done with it, so hostile small uploads cannot push the server out of memory.

Queued work (the drainer, ``server/drainer.py``) goes through the same thread in batches of its
own, taken only when no direct request waits: a direct request waits behind at most the one
queued batch already running. Queued work is outside both bounds (it never makes /health say
busy); the drainer bounds it itself (DRAIN_BATCH_SIZE chunks at a time).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from chunk_job.engine import transcribe_each
from server.admission import AudioBudget, Ticket
from server.errors import ServerBusyError
from whisper_engine.errors import TranscriptionError, WhisperEngineError
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
    # A direct request awaits an asyncio future on its event loop; queued work (the drainer's
    # thread) a concurrent one, with no loop and no budget ticket.
    future: asyncio.Future[TranscriptionResult] | concurrent.futures.Future[TranscriptionResult]
    loop: asyncio.AbstractEventLoop | None
    ticket: Ticket | None
    enqueued: float = field(default_factory=time.perf_counter)

    def done(self) -> None:
        """Drop the audio, then give its bytes back to the budget (never the other way round)."""
        if hasattr(self, "samples"):
            del self.samples
        if self.ticket is not None:
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
        self._queued_work: collections.deque[_Job] = collections.deque()
        self._queued_work_lock = threading.Lock()
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
        # Queued work never started: its waiter (the drainer) gets an error, not a hang.
        while jobs := self._take_queued_work():
            for job in jobs:
                _settle(job, error=TranscriptionError("the server is stopping"))
                job.done()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def depth(self) -> int:
        """Jobs waiting plus jobs in the batch being run."""
        return self._queue.qsize() + self._in_flight

    @property
    def direct_idle(self) -> bool:
        """No direct request is waiting, decoding or being transcribed: the drainer may take
        queued work."""
        return self._queue.empty() and self.budget.used == 0

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
        future: asyncio.Future[TranscriptionResult] = loop.create_future()
        job = _Job(samples, language, future, loop, ticket)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            job.done()
            raise self._busy() from None
        return future

    def transcribe_queued(
        self, audios: Sequence[NDArray[np.float32]], languages: Sequence[str | None]
    ) -> list[TranscriptionResult | WhisperEngineError]:
        """Queued work, from the drainer's thread: run in batches of its own whenever no direct
        request waits; blocks until every chunk has its result or engine error. Any other
        failure (a bug, out of memory) is raised."""
        jobs = [
            _Job(samples, language, concurrent.futures.Future(), None, None)
            for samples, language in zip(audios, languages, strict=True)
        ]
        with self._queued_work_lock:
            self._queued_work.extend(jobs)
        out: list[TranscriptionResult | WhisperEngineError] = []
        for job in jobs:
            error = job.future.exception()
            if error is None:
                out.append(job.future.result())
            elif isinstance(error, WhisperEngineError):
                out.append(error)
            else:
                raise error
        return out

    def _take_queued_work(self) -> list[_Job]:
        with self._queued_work_lock:
            count = min(self.max_batch, len(self._queued_work))
            return [self._queued_work.popleft() for _ in range(count)]

    def _take_batch(self) -> list[_Job]:
        try:
            # Direct requests first: queued work only when none is waiting.
            first = self._queue.get_nowait() if self._queued_work else self._queue.get(timeout=0.2)
        except queue.Empty:
            return self._take_queued_work()
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
            # One bad job must not fail its neighbours: a failed batch is rerun one by one.
            outcomes = transcribe_each(
                self.engine, [j.samples for j in batch], [j.language for j in batch]
            )
        except BaseException as exc:
            # An unexpected failure (a bug, out of memory) reaches every waiter as itself, and
            # the worker keeps serving; the server's error mapping turns it into a 500.
            logger.exception("inference failed")
            for job in batch:
                _settle(job, error=exc)
            if not isinstance(exc, Exception):
                raise
            return
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, WhisperEngineError):
                _settle(job, error=outcome)
            else:
                _settle(job, result=outcome)


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

    if job.loop is None:
        apply()  # queued work: a thread-safe future, its waiter is a plain thread
    else:
        job.loop.call_soon_threadsafe(apply)
