"""Conversion of a CTranslate2 Whisper checkpoint into a transformers checkpoint directory.

The weight mapping inverts CTranslate2's ``WhisperLoader`` (``converters/transformers.py``):
self-attention ``linear_0`` holds q, k and v stacked by rows (k has no bias in Whisper, stored as
zeros), ``linear_1`` is out_proj; cross-attention ``linear_0`` is q, ``linear_1`` holds k and v,
``linear_2`` is out_proj; ``ffn/linear_0`` and ``ffn/linear_1`` are fc1 and fc2; layer norms are
gamma/beta. Dimensions are read from the weights, never assumed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from whisper_engine.ct2_format import Ct2Checkpoint, model_bin_parts, read_model_bin
from whisper_engine.errors import ModelConversionError, ModelError
from whisper_engine.tokens import TIME_PRECISION_S, SpecialTokens

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

MULTILINGUAL_VOCAB_SIZE = 51865
ENGLISH_VOCAB_SIZE = 51864
COMPLETE_MARKER = ".conversion-complete.json"
# Bumped whenever the converter's output changes, so prepared models are converted again.
CONVERTER_VERSION = 2
_TIMESTAMP_COUNT = 1501  # <|0.00|> ... <|30.00|>

# Scalars are CTranslate2's runtime flags (num_heads, pre_norm, activation, alibi...): nothing in
# transformers stores them. Every array, on the other hand, must find a place.


@dataclass(frozen=True)
class WhisperDims:
    vocab_size: int
    num_mel_bins: int
    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_heads: int
    decoder_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    max_source_positions: int
    max_target_positions: int

    @property
    def multilingual(self) -> bool:
        return self.vocab_size >= MULTILINGUAL_VOCAB_SIZE


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


def read_dims(checkpoint: Ct2Checkpoint) -> WhisperDims:
    """Model dimensions taken from the stored weights."""
    if checkpoint.spec_name != "WhisperSpec":
        raise ModelConversionError(
            f"model.bin holds a {checkpoint.spec_name}, not a Whisper model (WhisperSpec)"
        )
    names = checkpoint.variables.keys() | checkpoint.aliases.keys()

    def layers(stack: str) -> int:
        found = {int(m.group(1)) for n in names if (m := re.match(rf"{stack}/layer_(\d+)/", n))}
        if not found or found != set(range(len(found))):
            raise ModelConversionError(f"model.bin: {stack} layers are missing or not contiguous")
        return len(found)

    def shape(name: str) -> tuple[int, ...]:
        resolved = checkpoint.resolve(name)
        if resolved not in checkpoint.variables:
            raise ModelConversionError(f"model.bin has no variable {name!r}")
        return tuple(checkpoint.variables[resolved].array.shape)

    vocab_size, d_model = shape("decoder/embeddings/weight")
    return WhisperDims(
        vocab_size=vocab_size,
        num_mel_bins=shape("encoder/conv1/weight")[1],
        d_model=d_model,
        encoder_layers=layers("encoder"),
        decoder_layers=layers("decoder"),
        encoder_heads=int(checkpoint.scalar("encoder/num_heads")),
        decoder_heads=int(checkpoint.scalar("decoder/num_heads")),
        encoder_ffn_dim=shape("encoder/layer_0/ffn/linear_0/weight")[0],
        decoder_ffn_dim=shape("decoder/layer_0/ffn/linear_0/weight")[0],
        max_source_positions=shape("encoder/position_encodings/encodings")[0],
        max_target_positions=shape("decoder/position_encodings/encodings")[0],
    )


def map_weights(checkpoint: Ct2Checkpoint, dims: WhisperDims) -> dict[str, NDArray[np.float32]]:
    """transformers state-dict entries (float32) for every CTranslate2 Whisper variable."""
    used: set[str] = set()
    out: dict[str, NDArray[np.float32]] = {}

    def get(name: str) -> NDArray[np.float32]:
        used.add(checkpoint.resolve(name))
        used.add(name)
        return np.ascontiguousarray(checkpoint.float32(name))

    def linear(src: str, dest: str, *, bias: bool = True) -> None:
        out[f"{dest}.weight"] = get(f"{src}/weight")
        if bias:
            out[f"{dest}.bias"] = get(f"{src}/bias")

    def norm(src: str, dest: str) -> None:
        out[f"{dest}.weight"] = get(f"{src}/gamma")
        out[f"{dest}.bias"] = get(f"{src}/beta")

    def split_rows(src: str, dests: list[str], *, biasless: str | None) -> None:
        weight = get(f"{src}/weight")
        bias = get(f"{src}/bias") if checkpoint.has(f"{src}/bias") else None
        parts = len(dests)
        if weight.shape[0] != parts * dims.d_model:
            raise ModelConversionError(
                f"{src}/weight has shape {weight.shape}, not {parts}x{dims.d_model} rows"
            )
        for index, dest in enumerate(dests):
            rows = slice(index * dims.d_model, (index + 1) * dims.d_model)
            out[f"{dest}.weight"] = np.ascontiguousarray(weight[rows])
            if bias is None:
                continue
            if dest == biasless:
                # Whisper's k_proj has no bias; CTranslate2 fills its slot with zeros.
                if np.any(bias[rows] != 0):
                    raise ModelConversionError(f"{src}: non-zero key bias cannot be represented")
                continue
            out[f"{dest}.bias"] = np.ascontiguousarray(bias[rows])

    def attention_block(src: str, dest: str, *, cross: bool) -> None:
        if cross:
            linear(f"{src}/linear_0", f"{dest}.q_proj")
            split_rows(
                f"{src}/linear_1", [f"{dest}.k_proj", f"{dest}.v_proj"], biasless=f"{dest}.k_proj"
            )
            linear(f"{src}/linear_2", f"{dest}.out_proj")
        else:
            split_rows(
                f"{src}/linear_0",
                [f"{dest}.q_proj", f"{dest}.k_proj", f"{dest}.v_proj"],
                biasless=f"{dest}.k_proj",
            )
            linear(f"{src}/linear_1", f"{dest}.out_proj")

    for conv in ("conv1", "conv2"):
        linear(f"encoder/{conv}", f"model.encoder.{conv}")
    out["model.encoder.embed_positions.weight"] = get("encoder/position_encodings/encodings")
    norm("encoder/layer_norm", "model.encoder.layer_norm")
    for i in range(dims.encoder_layers):
        src, dest = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        attention_block(f"{src}/self_attention", f"{dest}.self_attn", cross=False)
        norm(f"{src}/self_attention/layer_norm", f"{dest}.self_attn_layer_norm")
        linear(f"{src}/ffn/linear_0", f"{dest}.fc1")
        linear(f"{src}/ffn/linear_1", f"{dest}.fc2")
        norm(f"{src}/ffn/layer_norm", f"{dest}.final_layer_norm")

    out["model.decoder.embed_tokens.weight"] = get("decoder/embeddings/weight")
    out["model.decoder.embed_positions.weight"] = get("decoder/position_encodings/encodings")
    norm("decoder/layer_norm", "model.decoder.layer_norm")
    for i in range(dims.decoder_layers):
        src, dest = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        attention_block(f"{src}/self_attention", f"{dest}.self_attn", cross=False)
        norm(f"{src}/self_attention/layer_norm", f"{dest}.self_attn_layer_norm")
        attention_block(f"{src}/attention", f"{dest}.encoder_attn", cross=True)
        norm(f"{src}/attention/layer_norm", f"{dest}.encoder_attn_layer_norm")
        linear(f"{src}/ffn/linear_0", f"{dest}.fc1")
        linear(f"{src}/ffn/linear_1", f"{dest}.fc2")
        norm(f"{src}/ffn/layer_norm", f"{dest}.final_layer_norm")

    if checkpoint.has("decoder/projection/weight") and not _is_tied(checkpoint):
        out["proj_out.weight"] = get("decoder/projection/weight")
    used.add("decoder/projection/weight")
    if checkpoint.has("decoder/projection/bias"):
        raise ModelConversionError("decoder/projection/bias is set; Whisper's proj_out has none")

    if checkpoint.has("decoder/scale_embeddings") and checkpoint.scalar("decoder/scale_embeddings"):
        raise ModelConversionError("decoder/scale_embeddings is set; Whisper never scales them")
    leftover = sorted(
        name
        for name, variable in checkpoint.variables.items()
        if name not in used and variable.array.ndim > 0 and not name.endswith("_scale")
    )
    if leftover:
        raise ModelConversionError(
            f"model.bin variables with no transformers mapping: {leftover[:5]}"
        )
    return out


def _is_tied(checkpoint: Ct2Checkpoint) -> bool:
    projection = checkpoint.resolve("decoder/projection/weight")
    return projection == checkpoint.resolve("decoder/embeddings/weight")


def read_special_tokens(tokenizer_json: dict[str, Any]) -> SpecialTokens:
    """Special token ids by content from a Hugging Face tokenizer.json."""
    added = {token["content"]: int(token["id"]) for token in tokenizer_json.get("added_tokens", [])}
    vocab = tokenizer_json.get("model", {}).get("vocab", {})

    def token_id(content: str) -> int:
        found = added.get(content, vocab.get(content))
        if found is None:
            raise ModelConversionError(f"tokenizer.json has no {content} token")
        return int(found)

    sot = token_id("<|startoftranscript|>")
    translate = token_id("<|translate|>")
    languages = {
        content: ident
        for content, ident in added.items()
        if sot < ident < translate and re.fullmatch(r"<\|[a-z]{2,3}(_[a-z]+)?\|>", content)
    }

    def lookup(content: str) -> int | None:
        found = added.get(content, vocab.get(content))
        return None if found is None else int(found)

    try:
        return SpecialTokens.from_lookup(lookup, languages)
    except ModelError as exc:
        raise ModelConversionError(f"tokenizer.json: {exc}") from exc


def _with_timestamp_tokens(
    tokenizer_json: dict[str, Any], tokens: SpecialTokens, vocab_size: int
) -> dict[str, Any]:
    """tokenizer.json with <|0.00|>...<|30.00|> added, so tokenizer and model vocabularies agree.

    They are not marked special: WhisperTokenizer locates the first timestamp id as "last special
    id + 1" and strips timestamps from decoded text itself.
    """
    result: dict[str, Any] = json.loads(json.dumps(tokenizer_json))
    added = result.setdefault("added_tokens", [])
    present = {token["content"] for token in added}
    count = min(_TIMESTAMP_COUNT, vocab_size - tokens.timestamp_begin)
    for index in range(count):
        content = f"<|{index * TIME_PRECISION_S:.2f}|>"
        if content in present:
            continue
        added.append(
            {
                "id": tokens.timestamp_begin + index,
                "content": content,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": False,
            }
        )
    return result


def _alignment_heads(ct2_config: dict[str, Any], dims: WhisperDims) -> list[list[int]]:
    heads = ct2_config.get("alignment_heads")
    if heads:
        return [[int(layer), int(head)] for layer, head in heads]
    # CTranslate2's own default: every head of the second half of the decoder.
    return [
        [layer, head]
        for layer in range(dims.decoder_layers // 2, dims.decoder_layers)
        for head in range(dims.decoder_heads)
    ]


def build_generation_config(
    tokens: SpecialTokens, dims: WhisperDims, ct2_config: dict[str, Any]
) -> dict[str, Any]:
    """generation_config.json content.

    Carries forced_decoder_ids as well as lang_to_id/task_to_id: a caller that passes neither
    language nor task then still gets "detect language, transcribe" instead of an unprompted
    decoder that loops.
    """
    suppress = [int(t) for t in ct2_config.get("suppress_ids") or []]
    begin_suppress = [int(t) for t in ct2_config.get("suppress_ids_begin") or [220, tokens.eot]]
    config: dict[str, Any] = {
        "alignment_heads": _alignment_heads(ct2_config, dims),
        "begin_suppress_tokens": begin_suppress,
        "bos_token_id": tokens.eot,
        "decoder_start_token_id": tokens.sot,
        "eos_token_id": tokens.eot,
        "pad_token_id": tokens.eot,
        "is_multilingual": dims.multilingual,
        "max_initial_timestamp_index": 50,
        "max_length": dims.max_target_positions,
        "no_timestamps_token_id": tokens.no_timestamps,
        "prev_sot_token_id": tokens.sot_prev,
        "return_timestamps": False,
        "suppress_tokens": suppress,
        "num_beams": 1,
        "do_sample": False,
    }
    if dims.multilingual:
        config["lang_to_id"] = dict(sorted(tokens.languages.items(), key=lambda item: item[1]))
        config["task_to_id"] = {"transcribe": tokens.transcribe, "translate": tokens.translate}
        config["forced_decoder_ids"] = [[1, None], [2, tokens.transcribe]]
    else:
        config["forced_decoder_ids"] = [[1, tokens.no_timestamps]]
    return config


def build_model_config(
    tokens: SpecialTokens, dims: WhisperDims, ct2_config: dict[str, Any], tied: bool
) -> dict[str, Any]:
    """config.json content for WhisperForConditionalGeneration."""
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "activation_function": "gelu",
        "vocab_size": dims.vocab_size,
        "num_mel_bins": dims.num_mel_bins,
        "d_model": dims.d_model,
        "encoder_layers": dims.encoder_layers,
        "decoder_layers": dims.decoder_layers,
        "encoder_attention_heads": dims.encoder_heads,
        "decoder_attention_heads": dims.decoder_heads,
        "encoder_ffn_dim": dims.encoder_ffn_dim,
        "decoder_ffn_dim": dims.decoder_ffn_dim,
        "max_source_positions": dims.max_source_positions,
        "max_target_positions": dims.max_target_positions,
        "num_hidden_layers": dims.encoder_layers,
        "scale_embedding": False,
        "tie_word_embeddings": tied,
        "bos_token_id": tokens.eot,
        "eos_token_id": tokens.eot,
        "pad_token_id": tokens.eot,
        "decoder_start_token_id": tokens.sot,
        "begin_suppress_tokens": [
            int(t) for t in ct2_config.get("suppress_ids_begin") or [220, tokens.eot]
        ],
        "suppress_tokens": [int(t) for t in ct2_config.get("suppress_ids") or []],
        "use_cache": True,
        "torch_dtype": "float32",
    }


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
        _write_checkpoint(staging, weights, tokens, dims, ct2_config, tokenizer_json, tied)
        del weights
        if verify:
            verify_checkpoint(staging)
        _write_json(
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


def _write_checkpoint(
    directory: Path,
    weights: dict[str, NDArray[np.float32]],
    tokens: SpecialTokens,
    dims: WhisperDims,
    ct2_config: dict[str, Any],
    tokenizer_json: dict[str, Any],
    tied: bool,
) -> None:
    from safetensors.numpy import save_file

    save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    _write_json(directory / "config.json", build_model_config(tokens, dims, ct2_config, tied))
    _write_json(
        directory / "generation_config.json", build_generation_config(tokens, dims, ct2_config)
    )
    _write_json(
        directory / "preprocessor_config.json",
        {
            "feature_extractor_type": "WhisperFeatureExtractor",
            "processor_class": "WhisperProcessor",
            "feature_size": dims.num_mel_bins,
            "sampling_rate": 16000,
            "hop_length": 160,
            "chunk_length": 30,
            "n_fft": 400,
            "n_samples": 480000,
            "nb_max_frames": 3000,
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": False,
        },
    )
    full_tokenizer = _with_timestamp_tokens(tokenizer_json, tokens, dims.vocab_size)
    _write_json(directory / "tokenizer.json", full_tokenizer)
    _write_slow_tokenizer_files(directory, tokenizer_json)
    # WhisperTokenizer takes "last special id + 1" as the first timestamp: every special token
    # (<|startoftranscript|> ... <|notimestamps|>) must be declared as such.
    additional = [
        token["content"]
        for token in sorted(tokenizer_json.get("added_tokens", []), key=lambda t: int(t["id"]))
        if token.get("special") and token["content"] != "<|endoftext|>"
    ]
    _write_json(
        directory / "tokenizer_config.json",
        {
            "tokenizer_class": "WhisperTokenizer",
            "additional_special_tokens": additional,
            "processor_class": "WhisperProcessor",
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "add_prefix_space": False,
            "errors": "replace",
            "model_max_length": 1024,
            "clean_up_tokenization_spaces": False,
        },
    )
    _write_json(
        directory / "special_tokens_map.json",
        {
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "additional_special_tokens": additional,
        },
    )


def _write_slow_tokenizer_files(directory: Path, tokenizer_json: dict[str, Any]) -> None:
    """vocab.json and merges.txt, for transformers versions that build the Python tokenizer."""
    model = tokenizer_json.get("model", {})
    if model.get("type") != "BPE":
        raise ModelConversionError("tokenizer.json is not a byte-level BPE tokenizer")
    _write_json(directory / "vocab.json", model["vocab"])
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    (directory / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )


def verify_checkpoint(directory: str | os.PathLike[str]) -> None:
    """Load a converted directory with transformers; raise if any parameter is missing."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    loaded: Any = WhisperForConditionalGeneration.from_pretrained(
        os.fspath(directory), local_files_only=True, output_loading_info=True
    )
    model, info = loaded
    problems = {key: value for key, value in info.items() if value and key != "mismatched_keys"}
    if info.get("mismatched_keys"):
        problems["mismatched_keys"] = info["mismatched_keys"]
    if problems:
        raise ModelConversionError(f"converted checkpoint does not load cleanly: {problems}")
    processor = WhisperProcessor.from_pretrained(os.fspath(directory), local_files_only=True)
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


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
