"""Loading a Whisper checkpoint with transformers, offline, and where the default model lives."""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisper_engine.errors import ModelLoadError
from whisper_engine.tokens import SpecialTokens

logger = logging.getLogger(__name__)

# What a deployment loads when MODEL_ID is set to nothing more specific (needs the weights in
# the local Hugging Face cache: nothing is downloaded at run time).
DEPLOYMENT_MODEL_ID = "KBLab/kb-whisper-small"
MODEL_DIR_ENV = "SMART_ROUTER_MODEL_DIR"
DEFAULT_MODEL_NAME = "whisper-base"


def default_model_dir() -> Path:
    """Where ``smart-router model prepare`` puts the offline default model.

    ``$SMART_ROUTER_MODEL_DIR`` when set; else ``models/whisper-base`` at the repository root for
    a source checkout; else ``~/.cache/smart-router/models/whisper-base``.
    """
    configured = os.environ.get(MODEL_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / "models" / DEFAULT_MODEL_NAME
    return Path.home() / ".cache" / "smart-router" / "models" / DEFAULT_MODEL_NAME


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when a GPU is visible; 'cuda' without one is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} requested but no CUDA GPU is available")
    if device != "cpu" and not device.startswith("cuda"):
        raise ModelLoadError(f"unknown device {device!r} (use auto, cpu or cuda)")
    return device


@dataclass
class LoadedWhisper:
    """A model, its processor and the facts the decoder needs, ready on one device."""

    model: Any
    processor: Any
    tokens: SpecialTokens
    multilingual: bool
    suppress_tokens: list[int]
    begin_suppress_tokens: list[int]
    device: str
    dtype: Any
    name: str
    load_s: float


def load_whisper(model_id_or_dir: str | os.PathLike[str], *, device: str = "auto") -> LoadedWhisper:
    """Load WhisperForConditionalGeneration + WhisperProcessor without touching the network.

    fp16 with SDPA attention on CUDA, fp32 on CPU.
    """
    # Before transformers/huggingface_hub import: they read these once.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    started = time.perf_counter()
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    source = os.fspath(model_id_or_dir)
    target = resolve_device(device)
    dtype = torch.float16 if target.startswith("cuda") else torch.float32
    if os.path.sep in source and not os.path.isdir(source):
        raise ModelLoadError(f"model directory {source} does not exist")
    try:
        processor = WhisperProcessor.from_pretrained(source, local_files_only=True)
        model: Any = WhisperForConditionalGeneration.from_pretrained(
            source, local_files_only=True, dtype=dtype, attn_implementation="sdpa"
        )
    except OSError as exc:
        # transformers reports a missing local file or an uncached hub id as OSError.
        raise ModelLoadError(f"cannot load Whisper model {source!r} offline: {exc}") from exc
    # Older transformers ignore the dtype argument; this makes it hold everywhere.
    model.to(device=target, dtype=dtype)
    model.eval()

    tokenizer = processor.tokenizer
    unk = tokenizer.unk_token_id

    def lookup(content: str) -> int | None:
        found = tokenizer.convert_tokens_to_ids(content)
        return (
            None
            if found is None or (found == unk and content != tokenizer.unk_token)
            else int(found)
        )

    generation = model.generation_config
    multilingual = bool(getattr(generation, "is_multilingual", model.config.vocab_size >= 51865))
    languages = dict(getattr(generation, "lang_to_id", None) or {}) if multilingual else {}
    tokens = SpecialTokens.from_lookup(lookup, languages)
    suppress = list(
        getattr(generation, "suppress_tokens", None) or model.config.suppress_tokens or []
    )
    # OpenAI's blank suppression: " " (id 220 in Whisper's byte-level BPE) and end-of-text.
    begin_suppress = list(getattr(generation, "begin_suppress_tokens", None) or [220, tokens.eot])
    name = Path(source).name if os.path.isdir(source) else source
    load_s = time.perf_counter() - started
    logger.info("loaded Whisper model %s on %s (%s) in %.2f s", name, target, dtype, load_s)
    return LoadedWhisper(
        model=model,
        processor=processor,
        tokens=tokens,
        multilingual=multilingual,
        suppress_tokens=[int(t) for t in suppress],
        begin_suppress_tokens=[int(t) for t in begin_suppress],
        device=target,
        dtype=dtype,
        name=name,
        load_s=load_s,
    )


def release(loaded: LoadedWhisper) -> None:
    """Drop the model's tensors and hand cached GPU memory back to the driver."""
    import torch

    loaded.model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
