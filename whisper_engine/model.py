"""Loading a Whisper checkpoint with transformers, offline, in a compute type; where the default
model lives."""

from __future__ import annotations

import gc
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisper_engine.compute import (
    ComputePlan,
    check_compute_type,
    plan_compute,
    quantize_linear_layers,
)
from whisper_engine.errors import ModelLoadError
from whisper_engine.kv_decoder import DecoderWeights, build_decoder_weights
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

    # transformers' WhisperEncoder, converted to the compute type; the rest of transformers'
    # model is dropped after loading (``decoder`` holds the decoder's weights).
    encoder: Any
    processor: Any
    tokens: SpecialTokens
    multilingual: bool
    suppress_tokens: list[int]
    begin_suppress_tokens: list[int]
    device: str
    dtype: Any  # the encoder's input dtype
    name: str
    load_s: float
    decoder: DecoderWeights | None = None
    compute: ComputePlan | None = None
    # Why the model is on the CPU although DEVICE=auto found a GPU (CUDA failed at load).
    fallback_reason: str | None = None

    @property
    def compute_type(self) -> str:
        return self.compute.describe() if self.compute is not None else "float32"

    def encode(self, features: Any) -> Any:
        """Encoder output (batch, frames, width) for log-mel features (batch, mels, 3000)."""
        return self.encoder(input_features=features).last_hidden_state


def load_whisper(
    model_id_or_dir: str | os.PathLike[str],
    *,
    device: str = "auto",
    compute_type: str = "auto",
) -> LoadedWhisper:
    """Load a Whisper checkpoint offline in the given compute type (compute.py).

    With ``device="auto"`` a CUDA failure while loading (driver mismatch, out of memory) is
    logged at error level and the model is loaded on the CPU instead; an explicit ``"cuda"``
    fails with ModelLoadError.
    """
    # Before transformers/huggingface_hub import: they read these once.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    started = time.perf_counter()
    import torch

    check_compute_type(compute_type)
    target = resolve_device(device)
    try:
        loaded = _load_on(model_id_or_dir, target, compute_type, started)
    except (RuntimeError, AssertionError) as exc:
        # torch reports CUDA trouble as RuntimeError (OutOfMemoryError and AcceleratorError
        # are subclasses) and "not compiled with CUDA" as AssertionError.
        if not target.startswith("cuda"):
            raise ModelLoadError(f"cannot load Whisper model: {exc}") from exc
        if device != "auto":
            raise ModelLoadError(f"cannot load Whisper model on {target}: {exc}") from exc
        reason = f"{type(exc).__name__}: {exc}".strip()
        logger.error("CUDA failed while loading the model, falling back to CPU: %s", reason)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        # A CUDA-only type (float16) becomes the CPU's own choice; the others carry over.
        cpu_type = compute_type if compute_type in ("float32", "int8", "bfloat16") else "auto"
        loaded = _load_on(model_id_or_dir, "cpu", cpu_type, started)
        loaded.fallback_reason = reason
    return loaded


def _load_on(
    model_id_or_dir: str | os.PathLike[str], target: str, compute_type: str, started: float
) -> LoadedWhisper:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    source = os.fspath(model_id_or_dir)
    plan = plan_compute(compute_type, target)
    if os.path.sep in source and not os.path.isdir(source):
        raise ModelLoadError(f"model directory {source} does not exist")
    try:
        # Bandit B615 (no revision pinned) does not apply: local_files_only never downloads.
        processor = WhisperProcessor.from_pretrained(source, local_files_only=True)  # nosec B615
        model: Any = WhisperForConditionalGeneration.from_pretrained(  # nosec B615
            source, local_files_only=True, dtype=torch.float32, attn_implementation="sdpa"
        )
    except OSError as exc:
        # transformers reports a missing local file or an uncached hub id as OSError.
        raise ModelLoadError(f"cannot load Whisper model {source!r} offline: {exc}") from exc
    model.to(device=target)
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

    with torch.inference_mode():
        decoder = build_decoder_weights(
            model,
            dtype=plan.decoder_dtype,
            quantize=plan.quantize_decoder,
            alignment_heads=alignment_heads(model),
            attention_dtype=plan.attention_dtype,
        )
    encoder = model.model.encoder
    if plan.quantize_encoder:
        quantize_linear_layers(encoder)
    else:
        encoder.to(dtype=plan.encoder_dtype)
    _own_storage(encoder)
    # Only the encoder is kept: the decoder's weights now live in ``decoder``, and what is left
    # may still point into the memory-mapped checkpoint file, which would then stay resident.
    del model
    name = Path(source).name if os.path.isdir(source) else source
    load_s = time.perf_counter() - started
    logger.info(
        "loaded Whisper model %s on %s (%s) in %.2f s", name, target, plan.describe(), load_s
    )
    return LoadedWhisper(
        encoder=encoder,
        processor=processor,
        tokens=tokens,
        multilingual=multilingual,
        suppress_tokens=[int(t) for t in suppress],
        begin_suppress_tokens=[int(t) for t in begin_suppress],
        device=target,
        dtype=torch.float32 if plan.quantize_encoder else plan.encoder_dtype,
        name=name,
        load_s=load_s,
        decoder=decoder,
        compute=plan,
    )


def _own_storage(module: Any) -> None:
    """Give every parameter and buffer its own memory: transformers may leave tensors that
    view the memory-mapped safetensors file, which keeps all of its pages resident."""
    import torch

    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            tensor.data = tensor.data.clone()


def alignment_heads(model: Any) -> list[tuple[int, int]]:
    """(decoder layer, head) pairs whose cross-attention follows the audio.

    Checkpoints converted from OpenAI's (and CTranslate2's) carry them in the generation
    config; otherwise every head of the second half of the decoder layers, OpenAI's default.
    """
    configured = getattr(model.generation_config, "alignment_heads", None)
    if configured:
        return [(int(layer), int(head)) for layer, head in configured]
    layers = int(model.config.decoder_layers)
    heads = int(model.config.decoder_attention_heads)
    logger.warning("no alignment heads in the model's config: using the last half's heads")
    return [(layer, head) for layer in range(layers // 2, layers) for head in range(heads)]


def release(loaded: LoadedWhisper) -> None:
    """Drop the model's tensors and hand cached GPU memory back to the driver."""
    import torch

    loaded.encoder = None
    loaded.decoder = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
