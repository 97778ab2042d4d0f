"""One transcription: admission (before decoding), decode off the event loop, the model's queue.

What a decode may hold is reserved before it starts: twice the array of the duration the
container declares (plus a margin), or of MAX_AUDIO_SECONDS when it declares none. The decode is
capped at that duration, so it can never hold more than it reserved; a stream that turns out
longer than its header said is decoded again under a full-length reservation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.admission import Ticket
from server.errors import ServerBusyError, ServiceUnavailableError
from server.inference import InferenceWorker
from server.runtime import Runtime
from server.settings import DECODE_PEAK_FACTOR, decoded_bytes
from whisper_engine.errors import AudioTooLongError
from whisper_engine.results import TranscriptionResult

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# Headers estimate some durations (VBR mp3 without a Xing frame): decode up to this much more
# than declared before paying for a second, full-length decode.
_DECLARED_MARGIN = 1.2
_DECLARED_SLACK_S = 5.0


def decode_cap_s(declared_s: float | None, max_audio_s: float) -> float:
    """How long the first decode may run: the declared duration with a margin, within the cap."""
    if declared_s is None:
        return max_audio_s
    return min(max_audio_s, declared_s * _DECLARED_MARGIN + _DECLARED_SLACK_S)


def _worker(runtime: Runtime) -> InferenceWorker:
    worker = runtime.worker
    if worker is None:
        raise ServiceUnavailableError(runtime.load_error or "the model is still loading")
    return worker


async def _decode(
    ticket: Ticket, source: bytes | Path, max_duration_s: float
) -> NDArray[np.float32]:
    """Decode in a thread. If the request is cancelled meanwhile, the thread decodes on: its
    reservation is released when the thread ends, not when the request does."""
    from whisper_engine.audio import decode_audio

    task = asyncio.ensure_future(
        asyncio.to_thread(decode_audio, source, max_duration_s=max_duration_s)
    )
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_release_after(ticket))
        raise


def _release_after(ticket: Ticket) -> Callable[[asyncio.Future[Any]], None]:
    def release(task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved: nobody is left to see it
        ticket.release()

    return release


async def transcribe(
    runtime: Runtime, source: bytes | Path, language: str | None
) -> tuple[TranscriptionResult, float]:
    """Admit, decode, queue for the model and wait; the result and the seconds it took."""
    from whisper_engine.audio import probe_duration

    worker = _worker(runtime)
    max_s = runtime.settings.max_audio_seconds
    started = time.perf_counter()
    declared = await asyncio.to_thread(probe_duration, source)
    cap_s = decode_cap_s(declared, max_s)
    ticket = worker.admit(DECODE_PEAK_FACTOR * decoded_bytes(cap_s))
    try:
        try:
            samples = await _decode(ticket, source, cap_s)
        except AudioTooLongError:
            if cap_s >= max_s:
                raise
            # The header under-declared: retry with room for the longest audio allowed.
            if not ticket.resize(DECODE_PEAK_FACTOR * decoded_bytes(max_s)):
                raise ServerBusyError(
                    "decoded audio in flight would exceed MAX_DECODED_AUDIO_MB; try again later",
                    retry_after_s=worker.retry_after_s(),
                ) from None
            samples = await _decode(ticket, source, max_s)
        ticket.resize(samples.nbytes)  # shrinking always succeeds
    except asyncio.CancelledError:
        raise  # _decode gives the bytes back when its thread ends
    except BaseException:
        ticket.release()
        raise
    future = worker.submit(samples, language or runtime.settings.language, ticket)
    # The queued job is the array's only holder: it is dropped when the model is done with it.
    del samples
    runtime.metrics.queue_depth.set(worker.depth)
    result = await future
    elapsed = time.perf_counter() - started
    runtime.metrics.queue_depth.set(worker.depth)
    runtime.metrics.audio_seconds.inc(result.duration_s)
    if elapsed > 0 and result.duration_s > 0:
        runtime.metrics.real_time_factor.observe(result.duration_s / elapsed)
    return result, elapsed
