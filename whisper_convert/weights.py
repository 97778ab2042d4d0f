"""CTranslate2 Whisper weights -> transformers state-dict entries.

The mapping inverts CTranslate2's ``WhisperLoader`` (``converters/transformers.py``):
self-attention ``linear_0`` holds q, k and v stacked by rows (k has no bias in Whisper, stored as
zeros), ``linear_1`` is out_proj; cross-attention ``linear_0`` is q, ``linear_1`` holds k and v,
``linear_2`` is out_proj; ``ffn/linear_0`` and ``ffn/linear_1`` are fc1 and fc2; layer norms are
gamma/beta. Dimensions are read from the weights, never assumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from whisper_convert.ct2_format import Ct2Checkpoint
from whisper_convert.errors import ModelConversionError

if TYPE_CHECKING:
    from numpy.typing import NDArray

MULTILINGUAL_VOCAB_SIZE = 51865
ENGLISH_VOCAB_SIZE = 51864

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
