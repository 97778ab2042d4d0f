"""On a CUDA GPU: float16 + SDPA with the pre-allocated cache, warm-up, batching, memory.

Never part of the default run (``-m 'not gpu'`` in pyproject.toml); benchmarks/gpu_check.sh runs
them on a CUDA machine. Written without a GPU at hand: the bounds are the CPU's, with margin.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from tests.support.speech import ENGLISH_TEXT, SWEDISH_TEXT, wer
from whisper_engine.transcriber import WhisperEngine

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


@pytest.fixture(scope="module")
def cuda_engine(model_dir: Path) -> Iterator[WhisperEngine]:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    engine = WhisperEngine.load(model_dir, device="cuda")
    yield engine
    engine.unload()


def test_float16_on_cuda_transcribes_with_words(
    cuda_engine: WhisperEngine, english_speech: np.ndarray, swedish_speech: np.ndarray
) -> None:
    assert cuda_engine.device.startswith("cuda")
    assert cuda_engine.compute_type == "float16"
    assert cuda_engine.batch_size == 16
    english = cuda_engine.transcribe(english_speech, language="en")
    swedish = cuda_engine.transcribe(swedish_speech, language="sv")
    assert wer(ENGLISH_TEXT, english.text) <= 0.1, english.text
    assert wer(SWEDISH_TEXT, swedish.text) <= 0.8, swedish.text
    words = [w for s in english.segments for w in s.words or []]
    assert words
    assert all(a.end <= b.start + 1e-6 for a, b in pairwise(words))
    assert english.detected_language == "en"


def test_warm_first_request_and_a_full_batch_in_memory(
    cuda_engine: WhisperEngine, english_speech: np.ndarray
) -> None:
    import torch

    # The warm-up at load made kernels and allocator ready: the first real call is not the
    # slow one (a cold CUDA context costs seconds; a warm base-model window tens of ms).
    started = time.perf_counter()
    cuda_engine.transcribe(english_speech, language="en")
    first = time.perf_counter() - started
    started = time.perf_counter()
    cuda_engine.transcribe(english_speech, language="en")
    second = time.perf_counter() - started
    assert first < max(3 * second, 1.0), (first, second)

    torch.cuda.reset_peak_memory_stats()
    audios = [english_speech] * 32  # two full batches of 16
    results = cuda_engine.transcribe_many(audios, language="en")
    assert len({r.text for r in results}) == 1  # batch composition does not change the text
    peak = torch.cuda.max_memory_allocated()
    assert peak < 4 * 1024**3, f"peak {peak / 1024**3:.2f} GiB for Whisper base"
