"""Compute types: how the model's weights are stored and multiplied on the chosen device.

``auto`` picks per device: float16 on CUDA; ``int8`` on a CPU. ``int8`` on a CPU means every
Linear of the decoder (and the 51865-way output projection) holds int8 weights and quantizes
its activations row by row (int8.py); on a CPU that multiplies bfloat16 natively (AMX or
AVX512-BF16) the encoder and the attention run in bfloat16 instead of int8, elsewhere the
encoder's Linears are int8 too and attention stays float32. Measured on Whisper base
(whisper_engine/NOTES.md): the encoder is compute-bound over 1500 frames, where AMX bfloat16
beats int8; a decoding step reads every weight for a handful of tokens, where int8 (a quarter
of float32's bytes) wins; cross-attention reads each row's 1500 encoder keys and values per
layer per step, where bfloat16 halves the bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from whisper_engine.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ComputeType = Literal["auto", "float32", "int8", "bfloat16", "float16"]
COMPUTE_TYPES: Final[tuple[str, ...]] = get_args(ComputeType)


@dataclass(frozen=True)
class ComputePlan:
    """What a compute type means on one device.

    ``name`` is the resolved type (never "auto"); ``encoder_dtype`` and ``decoder_dtype`` are
    the float types activations flow in; ``quantize_encoder``/``quantize_decoder`` say whether
    the Linear layers of each part hold int8 weights (dynamic int8 activations).
    """

    name: str
    encoder_dtype: torch.dtype
    decoder_dtype: torch.dtype
    quantize_encoder: bool
    quantize_decoder: bool
    attention_dtype: torch.dtype  # the decoder's keys, values and queries

    def describe(self) -> str:
        """ "int8", or "int8 (encoder bfloat16)" when the parts differ."""
        encoder = _part(self.encoder_dtype, self.quantize_encoder)
        decoder = _part(self.decoder_dtype, self.quantize_decoder)
        return self.name if encoder == decoder else f"{self.name} (encoder {encoder})"


def _part(dtype: torch.dtype, quantized: bool) -> str:
    return "int8" if quantized else str(dtype).removeprefix("torch.")


def check_compute_type(value: str) -> ComputeType:
    """The value as a ComputeType; a ModelLoadError naming it otherwise."""
    if value not in COMPUTE_TYPES:
        raise ModelLoadError(
            f"unknown compute type {value!r} (use one of {', '.join(COMPUTE_TYPES)})"
        )
    checked: ComputeType = value  # type: ignore[assignment]  # membership checked above
    return checked


def cpu_has_native_bfloat16() -> bool:
    """True when the CPU multiplies bfloat16 in hardware (AMX tiles or AVX512-BF16)."""
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    for probe in probes:
        check = getattr(torch.cpu, probe, None)
        if check is not None and bool(check()):
            return True
    return False


def int8_supported() -> bool:
    """Dynamic int8 Linear needs one of torch's CPU quantized engines."""
    import torch

    engines = set(torch.backends.quantized.supported_engines)
    return bool(engines & {"x86", "fbgemm", "onednn", "qnnpack"})


def plan_compute(compute_type: str, device: str) -> ComputePlan:
    """Resolve ``compute_type`` for ``device`` ("cpu" or "cuda[:n]")."""
    import torch

    requested = check_compute_type(compute_type)
    cuda = device.startswith("cuda")
    if requested == "auto":
        if cuda:
            requested = "float16"
        elif int8_supported():
            requested = "int8"
        else:
            requested = "float32"
    if requested == "int8":
        if cuda:
            raise ModelLoadError(
                "compute type 'int8' is CPU-only here (torch dynamic quantization); "
                "use float16 or auto on CUDA"
            )
        if not int8_supported():
            raise ModelLoadError("compute type 'int8' needs a torch build with fbgemm or onednn")
        fast_bf16 = cpu_has_native_bfloat16()
        return ComputePlan(
            name="int8",
            encoder_dtype=torch.bfloat16 if fast_bf16 else torch.float32,
            decoder_dtype=torch.float32,
            quantize_encoder=not fast_bf16,
            quantize_decoder=True,
            attention_dtype=torch.bfloat16 if fast_bf16 else torch.float32,
        )
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        requested
    ]
    if not cuda and requested == "bfloat16" and not cpu_has_native_bfloat16():
        logger.warning("bfloat16 on a CPU without native bfloat16: expect it to be slow")
    if not cuda and requested == "float16":
        logger.warning("float16 on a CPU is slow on most CPUs; int8 or float32 are the CPU types")
    return ComputePlan(
        name=requested,
        encoder_dtype=dtype,
        decoder_dtype=dtype,
        quantize_encoder=False,
        quantize_decoder=False,
        attention_dtype=dtype,
    )


def quantize_linear_layers(module: Any) -> Any:
    """``module`` with every nn.Linear replaced (in place) by an int8 one (int8.py)."""
    from torch import nn

    from whisper_engine.int8 import Int8Linear

    for name, child in list(module.named_children()):
        if type(child) is nn.Linear:
            setattr(module, name, Int8Linear.from_linear(child))
        else:
            quantize_linear_layers(child)
    return module
