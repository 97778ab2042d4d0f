"""A Linear layer with int8 weights and int8 activations quantized row by row (CPU).

Weights: symmetric int8 with one scale per output channel. Activations: each row (one token of
one window) gets its own symmetric int8 scale when the layer is called, as CTranslate2's int8
does. torch's ``quantize_dynamic`` scales activations per tensor instead, over the whole batch:
a window's text then depended on which other windows shared its batch, and 7-bit activations
(its x86 ``reduce_range``) garbled the first words of English test speech. The product is
``torch._int_mm`` (int8 x int8 -> int32 through oneDNN: VNNI/AMX where the CPU has them), so the
weights are read at a quarter of float32's bytes, which is what a decoding step waits on.
"""

from __future__ import annotations

import torch
from torch import nn

# Largest magnitude of a symmetric int8 value.
_QMAX = 127.0


class Int8Linear(nn.Module):
    """y = x W^T + b with W and x in int8, accumulated in int32, rescaled to float32."""

    def __init__(
        self, weight_t: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None
    ) -> None:
        super().__init__()
        # (in, out) view of an (out, in) contiguous int8 matrix: _int_mm's fast layout. Plain
        # attributes, not buffers: built on their device once, never moved or saved.
        self.weight_t = weight_t
        self.scales = scales  # (out,) float32
        self.bias = bias
        self.in_features = int(weight_t.shape[0])
        self.out_features = int(weight_t.shape[1])

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        bias = None if linear.bias is None else linear.bias.detach()
        return cls.from_weight(linear.weight.detach(), bias)

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None) -> Int8Linear:
        weight = weight.float()
        # max(|min|, max) per row without allocating |W| (fresh memory is slow to touch).
        largest = torch.maximum(weight.amax(dim=1), -weight.amin(dim=1))
        scales = (largest / _QMAX).clamp(min=torch.finfo(torch.float32).tiny)
        quantized = torch.round(weight / scales[:, None]).clamp_(-_QMAX, _QMAX).to(torch.int8)
        bias = None if bias is None else bias.to(torch.float32, copy=True)
        return cls(quantized.t(), scales, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, shape[-1]).float()
        row_scales = (rows.abs().amax(dim=1, keepdim=True) / _QMAX).clamp_(
            min=torch.finfo(torch.float32).tiny
        )
        quantized = torch.round(rows / row_scales).to(torch.int8)
        out = torch._int_mm(quantized, self.weight_t).float()
        out = out.mul_(row_scales * self.scales)
        if self.bias is not None:
            out = out.add_(self.bias)
        return out.reshape(*shape[:-1], self.out_features).to(x.dtype)
