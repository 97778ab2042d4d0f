"""A Linear layer with int8 weights and dynamically quantized int8 activations (CPU).

Same arithmetic as ``torch.ao.quantization.quantize_dynamic`` with
``per_channel_dynamic_qconfig`` (the fbgemm/oneDNN kernels behind ``quantized.linear_dynamic``),
built directly: that API deep-copies the model and packs every weight three times, which cost
seconds of load time. torch marks its quantized tensor functions deprecated in favour of torchao
(not a dependency here); their warnings are silenced so that they do not repeat in every log.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn


class Int8Linear(nn.Module):
    """y = x W^T + b with W in int8 (prepacked), x quantized to int8 on every call."""

    def __init__(self, packed: Any, in_features: int, out_features: int) -> None:
        super().__init__()
        self.packed = packed
        self.in_features = in_features
        self.out_features = out_features

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        bias = None if linear.bias is None else linear.bias.detach()
        return cls.from_weight(linear.weight.detach(), bias)

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None) -> Int8Linear:
        """Per-channel symmetric weights: each output row's scale is its largest magnitude over
        127.5, as torch's PerChannelMinMaxObserver computes it."""
        weight = weight.float()
        bias = None if bias is None else bias.float()
        # max(|min|, max) per row without allocating |W| (fresh memory is slow to touch).
        largest = torch.maximum(weight.amax(dim=1), -weight.amin(dim=1))
        scales = (largest / 127.5).clamp(min=torch.finfo(torch.float32).eps)
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long, device=weight.device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch.quantize_per_channel(
                weight, scales.double(), zero_points, 0, torch.qint8
            )
            packed = torch.ops.quantized.linear_prepack(qweight, bias)
        return cls(packed, int(weight.shape[1]), int(weight.shape[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range: 7-bit activations, as torch's own dynamic Linear uses on x86 (the AVX2
        # kernels accumulate pairs in 16 bits).
        out: torch.Tensor = torch.ops.quantized.linear_dynamic(x, self.packed, reduce_range=True)
        return out.to(x.dtype)
