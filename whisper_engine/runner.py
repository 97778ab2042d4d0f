"""Running windows through the model: batches, and on a CPU several batches at once.

On the CPU a decoding step is a few hundred small tensor operations. Split over two OpenMP
threads each of them ends in a barrier, and when another process holds one of the cores (the
shared development machine, a busy server) the waiting thread spins: a batch measured 3.4 s on
one thread took 20-30 s on two (whisper_engine/NOTES.md). So on a CPU every operation runs on
one thread and the cores are used by decoding as many batches at the same time ("streams",
Python threads: torch releases the GIL inside its operations). On CUDA one stream.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

MAX_CPU_STREAMS = 4


def _load_libc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    return trim


_MALLOC_TRIM = _load_libc_trim()


def release_freed_memory() -> None:
    """Give the memory a transcription freed back to the operating system.

    glibc keeps freed blocks in per-thread arenas for reuse; with batches decoded on several
    threads the resident size then ratchets up by hundreds of MB and stays there (measured:
    0.85 GB after load, 1.3 GB after three transcriptions of 100 s). ``malloc_trim`` returns
    what is free; it costs milliseconds against seconds of inference.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_streams(device: str) -> int:
    return 1 if device.startswith("cuda") else max(1, min(MAX_CPU_STREAMS, usable_cores()))


def configure_cpu_threads(streams: int) -> int:
    """Intra-op threads per stream (the cores divided among the streams); returns it."""
    import torch

    threads = max(1, usable_cores() // max(1, streams))
    torch.set_num_threads(threads)
    return threads


def plan_batches(lengths: Sequence[int], batch_size: int, streams: int) -> list[list[int]]:
    """Window indices grouped into batches of at most ``batch_size``.

    Sorted by length, since windows of similar length decode for a similar number of steps and
    the rows of a batch then finish together; at least ``streams`` batches when there are that
    many windows, and batches of even size, so that the streams get even shares.
    """
    count = len(lengths)
    if count == 0:
        return []
    order = sorted(range(count), key=lambda i: lengths[i])
    batches = max(-(-count // batch_size), min(streams, count))
    size = -(-count // batches)
    return [order[i : i + size] for i in range(0, count, size)]


class Streams:
    """Runs jobs one after another or on a small pool of threads."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool = (
            ThreadPoolExecutor(max_workers=count, thread_name_prefix="whisper-stream")
            if count > 1
            else None
        )

    def run(self, job: Callable[[T], None], items: Sequence[T]) -> None:
        """``job`` for every item; the first exception is raised after all have finished."""
        if self._pool is None or len(items) < 2:
            for item in items:
                job(item)
            return
        futures = [self._pool.submit(job, item) for item in items]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
