"""Compute types, the int8 Linear, COMPUTE_TYPE/BATCH_SIZE validation and the CUDA fallback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from batch_worker.settings import WorkerSettings
from transcript_contracts.errors import SettingsError
from transcript_contracts.settings import load_settings
from whisper_engine import model as model_module
from whisper_engine.compute import check_compute_type, plan_compute
from whisper_engine.errors import ModelLoadError
from whisper_engine.int8 import Int8Linear
from whisper_engine.runner import plan_batches
from whisper_engine.transcriber import EngineOptions, WhisperEngine


def test_unknown_compute_type_names_itself() -> None:
    with pytest.raises(ModelLoadError, match="'int4'"):
        check_compute_type("int4")


def test_auto_resolves_per_device() -> None:
    assert plan_compute("auto", "cuda").name == "float16"
    cpu = plan_compute("auto", "cpu")
    assert cpu.name == "int8" and cpu.quantize_decoder
    assert plan_compute("float32", "cpu").describe() == "float32"
    with pytest.raises(ModelLoadError, match="CPU-only"):
        plan_compute("int8", "cuda")


def test_bad_settings_name_themselves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "bucket")
    monkeypatch.setenv("QUEUE_URL", "https://sqs.example/q")
    monkeypatch.setenv("COMPUTE_TYPE", "int4")
    monkeypatch.setenv("BATCH_SIZE", "0")
    with pytest.raises(SettingsError) as info:
        load_settings(WorkerSettings)
    text = str(info.value)
    assert "COMPUTE_TYPE: " in text and "BATCH_SIZE: " in text


def test_good_settings_reach_the_engine_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "bucket")
    monkeypatch.setenv("QUEUE_URL", "https://sqs.example/q")
    monkeypatch.setenv("COMPUTE_TYPE", "bfloat16")
    monkeypatch.setenv("BATCH_SIZE", "8")
    settings = load_settings(WorkerSettings)
    assert check_compute_type(settings.compute_type) == "bfloat16"
    assert EngineOptions(batch_size=settings.batch_size).batch_size == 8
    with pytest.raises(ValueError, match="batch_size"):
        EngineOptions(batch_size=0)


def test_int8_linear_is_close_to_float_and_row_independent() -> None:
    generator = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(48, 64, generator=generator) * 0.1)
    quantized = Int8Linear.from_linear(linear)
    x = torch.randn(3, 64, generator=generator)
    x[2] *= 50  # a row with a much larger range must not coarsen the others
    with torch.inference_mode():
        exact = linear(x)
        approx = quantized(x)
        alone = quantized(x[:1])
    error = (approx - exact).abs().max(dim=1).values / exact.abs().max(dim=1).values
    assert float(error.max()) < 0.03
    assert torch.equal(approx[:1], alone)


def test_batches_are_even_and_cover_every_window() -> None:
    batches = plan_batches([5, 1, 4, 2, 3], batch_size=4, streams=2)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]
    assert [len(b) for b in batches] == [3, 2]
    assert batches[0] == [1, 3, 4]  # shortest first
    assert plan_batches([1] * 9, batch_size=4, streams=1) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert plan_batches([], batch_size=4, streams=2) == []


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["no-cuda-build", "out-of-memory"])
def test_auto_falls_back_to_cpu_when_cuda_fails_at_load(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    # A GPU is "visible", but loading on it fails: on this CPU-only torch, moving the model to
    # CUDA raises by itself; the out-of-memory case raises what torch raises then.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    real_load_on = model_module._load_on

    def load_on(source: Any, target: str, compute_type: str, started: float) -> Any:
        if target.startswith("cuda") and failure == "out-of-memory":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_load_on(source, target, compute_type, started)

    monkeypatch.setattr(model_module, "_load_on", load_on)
    with caplog.at_level(logging.ERROR, logger="whisper_engine.model"):
        engine = WhisperEngine.load(
            model_dir, device="auto", options=EngineOptions(use_vad=False, warmup=False)
        )
    try:
        assert engine.device == "cpu"
        assert engine.fallback_reason
        assert engine.compute_type.startswith("int8")
        assert any("falling back to CPU" in r.getMessage() for r in caplog.records)
    finally:
        engine.unload()


@pytest.mark.slow
def test_explicit_cuda_fails_loudly(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ModelLoadError, match="cuda"):
        WhisperEngine.load(model_dir, device="cuda", options=EngineOptions(warmup=False))
