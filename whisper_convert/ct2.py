"""Conversion of a CTranslate2 Whisper checkpoint into a transformers checkpoint directory.

``weights.py`` maps the arrays, ``hf_files.py`` writes the transformers files; this module
drives a conversion into a staging directory, verifies it by loading it back, and renames it
into place with a completion marker.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from whisper_convert.ct2_format import model_bin_parts, read_model_bin
from whisper_convert.errors import ModelConversionError
from whisper_convert.hf_files import read_special_tokens, write_checkpoint, write_json
from whisper_convert.weights import (
    ENGLISH_VOCAB_SIZE,
    MULTILINGUAL_VOCAB_SIZE,
    WhisperDims,
    map_weights,
    read_dims,
)

__all__ = [
    "COMPLETE_MARKER",
    "CONVERTER_VERSION",
    "WhisperDims",
    "convert_ct2_to_transformers",
    "is_converted_model",
    "read_dims",
    "read_special_tokens",
    "verify_checkpoint",
]

logger = logging.getLogger(__name__)

COMPLETE_MARKER = ".conversion-complete.json"
# Bumped whenever the converter's output changes, so prepared models are converted again.
CONVERTER_VERSION = 2


def is_converted_model(directory: str | os.PathLike[str]) -> bool:
    """True when ``directory`` holds a finished conversion by this converter version.

    The marker is written last, so an interrupted conversion never counts as finished.
    """
    marker = Path(directory) / COMPLETE_MARKER
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and content.get("converter_version") == CONVERTER_VERSION


def convert_ct2_to_transformers(
    src_dir: str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    verify: bool = True,
    source_label: str | None = None,
) -> Path:
    """Convert a CTranslate2 Whisper directory into a transformers checkpoint directory.

    ``src_dir`` holds model.bin (or model.bin.part1, .part2, ...), config.json and
    tokenizer.json. The result is written to a temporary sibling and renamed into place, so
    ``dest_dir`` is either absent or complete (with a completion marker). With ``verify`` the
    result is loaded back with transformers and every parameter must be present.
    """
    source = Path(src_dir)
    dest = Path(dest_dir)
    if dest.exists() and not overwrite:
        raise ModelConversionError(f"{dest} already exists (pass overwrite=True to replace it)")
    started = time.perf_counter()
    tokenizer_path = source / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise ModelConversionError(f"{source}: no tokenizer.json")
    tokenizer_json = _read_json(tokenizer_path)
    config_path = source / "config.json"
    ct2_config = _read_json(config_path) if config_path.is_file() else {}

    checkpoint = read_model_bin(model_bin_parts(source))
    dims = read_dims(checkpoint)
    if dims.vocab_size not in (MULTILINGUAL_VOCAB_SIZE, ENGLISH_VOCAB_SIZE):
        logger.warning("unusual Whisper vocabulary size %d", dims.vocab_size)
    tokens = read_special_tokens(tokenizer_json)
    weights = map_weights(checkpoint, dims)
    tied = "proj_out.weight" not in weights
    del checkpoint

    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        write_checkpoint(staging, weights, tokens, dims, ct2_config, tokenizer_json, tied)
        del weights
        if verify:
            verify_checkpoint(staging)
        write_json(
            staging / COMPLETE_MARKER,
            {
                "converter_version": CONVERTER_VERSION,
                "source": source_label or str(source),
                "multilingual": dims.multilingual,
                "vocab_size": dims.vocab_size,
            },
        )
        # mkdtemp creates the directory private to its owner; a model directory is shared data.
        staging.chmod(0o755)
        for item in staging.iterdir():
            item.chmod(0o644)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(
        "converted %s to %s in %.1f s (%s, %d+%d layers, d_model %d)",
        source,
        dest,
        time.perf_counter() - started,
        "multilingual" if dims.multilingual else "English-only",
        dims.encoder_layers,
        dims.decoder_layers,
        dims.d_model,
    )
    return dest


def verify_checkpoint(directory: str | os.PathLike[str]) -> None:
    """Load a converted directory with transformers; raise if any parameter is missing."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    # Bandit B615 (no revision pinned) does not apply: local_files_only never downloads.
    loaded: Any = WhisperForConditionalGeneration.from_pretrained(  # nosec B615
        os.fspath(directory), local_files_only=True, output_loading_info=True
    )
    model, info = loaded
    problems = {key: value for key, value in info.items() if value and key != "mismatched_keys"}
    if info.get("mismatched_keys"):
        problems["mismatched_keys"] = info["mismatched_keys"]
    if problems:
        raise ModelConversionError(f"converted checkpoint does not load cleanly: {problems}")
    processor = WhisperProcessor.from_pretrained(  # nosec B615
        os.fspath(directory), local_files_only=True
    )
    tokenizer = processor.tokenizer
    if len(tokenizer) != model.config.vocab_size:
        raise ModelConversionError(
            f"tokenizer has {len(tokenizer)} tokens, model vocabulary {model.config.vocab_size}"
        )
    no_timestamps = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    if max(tokenizer.all_special_ids) != no_timestamps:
        raise ModelConversionError("the tokenizer's special tokens do not end at <|notimestamps|>")
    del model


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ModelConversionError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelConversionError(f"{path} is not a JSON object")
    return data
