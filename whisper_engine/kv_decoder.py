"""Whisper's text decoder, run one step at a time over pre-allocated key/value buffers.

transformers' decoder forward grows a dynamic cache by concatenation and pays several hundred
microseconds of Python per layer per step (cache objects, mask building, output capture); the
profile in whisper_engine/NOTES.md put that on a par with the arithmetic for Whisper base on a
CPU. Here the decoder's weights are rearranged once at load time (query/key/value projections
fused into one matrix, encoder key/value projections fused into another, optionally int8) and a
step is a fixed sequence of tensor calls:

- self-attention keys/values are written into buffers allocated for the longest decode, so no
  step allocates or copies a growing cache;
- the encoder's keys/values are projected once per batch;
- the alignment heads' cross-attention queries are returned when asked for, and their scores
  against the encoder keys are computed once per window at the end (``alignment_scores``), so
  that word timing (alignment.py) needs no second decoder pass and steps do not re-read keys.

The arithmetic follows transformers' Whisper decoder exactly (pre-norm layers, the query scaled
after its projection, GELU), so float32 output matches it and CTranslate2's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

Projection = Callable[["torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class _Norm:
    weight: torch.Tensor
    bias: torch.Tensor
    eps: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F  # noqa: N812 - torch's own convention

        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


@dataclass(frozen=True)
class _Layer:
    self_norm: _Norm
    self_qkv: Projection
    self_out: Projection
    cross_norm: _Norm
    cross_q: Projection
    cross_kv: Projection
    cross_out: Projection
    ffn_norm: _Norm
    fc1: Projection
    fc2: Projection
    activation: Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DecoderWeights:
    """The decoder's parameters, arranged for step-by-step decoding on one device and dtype."""

    layers: tuple[_Layer, ...]
    embed_tokens: torch.Tensor
    embed_positions: torch.Tensor
    embed_scale: float
    final_norm: _Norm
    proj_out: Projection
    heads: int
    head_dim: int
    dtype: torch.dtype
    # Keys, values and queries of both attentions. On a CPU with native bfloat16 the int8 plan
    # keeps them in bfloat16: cross-attention reads every row's 1500 encoder frames per layer
    # at every step, and at half the bytes it ran 3-4x faster here.
    attention_dtype: torch.dtype
    # layer -> heads whose cross-attention follows the audio (OpenAI's alignment heads)
    alignment_heads: dict[int, list[int]]
    modules: Any  # the nn.Modules behind the projections, kept alive (and movable) here

    @property
    def max_positions(self) -> int:
        return int(self.embed_positions.shape[0])

    @property
    def alignment_head_count(self) -> int:
        return sum(len(h) for h in self.alignment_heads.values())


def build_decoder_weights(
    model: Any,
    *,
    dtype: torch.dtype,
    quantize: bool,
    alignment_heads: Sequence[tuple[int, int]],
    attention_dtype: torch.dtype | None = None,
) -> DecoderWeights:
    """Rearrange a transformers WhisperForConditionalGeneration's decoder (already on its device).

    With ``quantize`` every projection, the output projection included, holds int8 weights
    (dynamic int8 activations, CPU only); activations stay float32 then.
    """
    import torch
    from torch import nn

    from whisper_engine.int8 import Int8Linear

    decoder = model.model.decoder
    device = decoder.embed_tokens.weight.device
    float_dtype = torch.float32 if quantize else dtype

    def linear(*parts: nn.Linear) -> nn.Module:
        """One projection computing ``parts`` side by side (their outputs concatenated)."""
        bias: torch.Tensor | None = None
        if len(parts) == 1:  # no copy
            weight = parts[0].weight.detach()
            if parts[0].bias is not None:
                bias = parts[0].bias.detach()
        else:
            weight = torch.cat([p.weight.detach() for p in parts], dim=0)
            if any(p.bias is not None for p in parts):
                bias = torch.cat(
                    [
                        p.bias.detach()
                        if p.bias is not None
                        else torch.zeros(p.out_features, device=device, dtype=p.weight.dtype)
                        for p in parts
                    ]
                )
        if quantize:
            return Int8Linear.from_weight(weight, bias)
        # On the meta device: no random initialisation of weights that are replaced right away.
        fused = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
        fused.weight = nn.Parameter(weight.to(float_dtype, copy=True), requires_grad=False)
        if bias is not None:
            fused.bias = nn.Parameter(bias.to(float_dtype, copy=True), requires_grad=False)
        return fused

    def norm(source: nn.LayerNorm) -> _Norm:
        return _Norm(
            source.weight.detach().to(float_dtype, copy=True),
            source.bias.detach().to(float_dtype, copy=True),
            float(source.eps),
        )

    modules = nn.ModuleList()  # keeps the projections' modules alive

    def projection(*parts: nn.Linear) -> Projection:
        module = linear(*parts)
        modules.append(module)
        forward: Projection = module.forward
        return forward

    layers = []
    for layer in decoder.layers:
        sa, ca = layer.self_attn, layer.encoder_attn
        layers.append(
            _Layer(
                self_norm=norm(layer.self_attn_layer_norm),
                self_qkv=projection(sa.q_proj, sa.k_proj, sa.v_proj),
                self_out=projection(sa.out_proj),
                cross_norm=norm(layer.encoder_attn_layer_norm),
                cross_q=projection(ca.q_proj),
                cross_kv=projection(ca.k_proj, ca.v_proj),
                cross_out=projection(ca.out_proj),
                ffn_norm=norm(layer.final_layer_norm),
                fc1=projection(layer.fc1),
                fc2=projection(layer.fc2),
                activation=layer.activation_fn,
            )
        )
    proj_out = projection(model.proj_out)
    first = decoder.layers[0].self_attn
    by_layer: dict[int, list[int]] = {}
    for layer_index, head in alignment_heads:
        by_layer.setdefault(int(layer_index), []).append(int(head))
    return DecoderWeights(
        layers=tuple(layers),
        # Copies: the originals may view the memory-mapped checkpoint (model.py).
        embed_tokens=decoder.embed_tokens.weight.detach().to(float_dtype, copy=True),
        embed_positions=decoder.embed_positions.weight.detach().to(float_dtype, copy=True),
        embed_scale=float(getattr(decoder, "embed_scale", 1.0) or 1.0),
        final_norm=norm(decoder.layer_norm),
        proj_out=proj_out,
        heads=int(first.num_heads),
        head_dim=int(first.head_dim),
        dtype=float_dtype,
        attention_dtype=attention_dtype or float_dtype,
        alignment_heads={k: sorted(v) for k, v in sorted(by_layer.items())},
        modules=modules,
    )


class CachedDecoder:
    """One batch's decoding state: encoder keys/values and the self-attention buffers."""

    def __init__(self, weights: DecoderWeights, encoded: torch.Tensor, max_length: int) -> None:
        import torch

        if max_length > weights.max_positions:
            raise ValueError(f"max_length {max_length} > {weights.max_positions} positions")
        self.weights = weights
        batch, frames, width = encoded.shape
        heads, head_dim = weights.heads, weights.head_dim
        encoded = encoded.to(weights.dtype)
        attention = weights.attention_dtype
        self.cross: list[tuple[torch.Tensor, torch.Tensor]] = []
        for layer in weights.layers:
            kv = layer.cross_kv(encoded).view(batch, frames, 2, heads, head_dim)
            keys, values = kv.to(attention).permute(2, 0, 3, 1, 4).unbind(0)
            self.cross.append((keys.contiguous(), values.contiguous()))
        self.alignment_keys = self._alignment_keys()
        shape = (len(weights.layers), 2, batch, heads, max_length, head_dim)
        self.cache = torch.empty(shape, dtype=attention, device=encoded.device)
        self.length = 0
        self.width = width

    @property
    def batch(self) -> int:
        return int(self.cache.shape[2])

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every row not in ``rows`` (indices into the current batch), e.g. finished ones."""
        self.cache = self.cache.index_select(2, rows)
        self.cross = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.cross]

    def _alignment_keys(self) -> torch.Tensor | None:
        """The alignment heads' encoder keys of the whole batch, (batch, heads, dim, frames),
        heads in ``weights.alignment_heads`` order. Kept for rows that leave the batch."""
        import torch

        parts = [
            self.cross[index][0][:, heads] for index, heads in self.weights.alignment_heads.items()
        ]
        return torch.cat(parts, dim=1).transpose(-1, -2).contiguous() if parts else None

    def alignment_scores(self, row: int, queries: torch.Tensor) -> torch.Tensor:
        """Cross-attention scores before softmax, (heads, positions, frames) in float32, of
        ``queries`` (heads, positions, dim) that ``step`` returned for batch row ``row`` (its
        index when the batch started)."""
        if self.alignment_keys is None:
            raise ValueError("the model has no alignment heads")
        return (queries.to(self.alignment_keys.dtype) @ self.alignment_keys[row]).float()

    def step(
        self, ids: torch.Tensor, *, alignment: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Feed ``ids`` (batch, T); return the logits of the last position (batch, vocab) in
        float32 and, with ``alignment``, the alignment heads' cross-attention queries (batch,
        heads, T, dim) for ``alignment_scores``."""
        import torch
        import torch.nn.functional as F  # noqa: N812 - torch's own convention

        w = self.weights
        batch, count = ids.shape
        start, end = self.length, self.length + count
        heads, head_dim = w.heads, w.head_dim
        scaling = head_dim**-0.5
        attention = w.attention_dtype
        hidden = w.embed_tokens[ids] * w.embed_scale + w.embed_positions[start:end]
        mask = None
        if count > 1:
            # Position start+i sees the cache and itself: a causal mask shifted by the cache.
            rows = torch.arange(start, end, device=ids.device)[:, None]
            mask = torch.arange(end, device=ids.device)[None, :] <= rows
        queries: list[torch.Tensor] = []
        for index, layer in enumerate(w.layers):
            x = layer.self_norm(hidden)
            qkv = layer.self_qkv(x).view(batch, count, 3, heads, head_dim).transpose(1, 3)
            query, key, value = qkv.unbind(2)
            cache = self.cache[index]
            cache[0, :, :, start:end] = key
            cache[1, :, :, start:end] = value
            attended = F.scaled_dot_product_attention(
                (query * scaling).to(attention),
                cache[0, :, :, :end],
                cache[1, :, :, :end],
                attn_mask=mask,
                scale=1.0,
            ).to(w.dtype)
            hidden = hidden + layer.self_out(attended.transpose(1, 2).reshape(batch, count, -1))

            x = layer.cross_norm(hidden)
            query = layer.cross_q(x).view(batch, count, heads, head_dim).transpose(1, 2)
            query = (query * scaling).to(attention)
            keys, values = self.cross[index]
            if alignment and index in w.alignment_heads:
                queries.append(query[:, w.alignment_heads[index]])
            attended = F.scaled_dot_product_attention(query, keys, values, scale=1.0).to(w.dtype)
            hidden = hidden + layer.cross_out(attended.transpose(1, 2).reshape(batch, count, -1))

            x = layer.ffn_norm(hidden)
            hidden = hidden + layer.fc2(layer.activation(layer.fc1(x)))
        self.length = end
        last = w.final_norm(hidden[:, -1])
        logits = w.proj_out(last).float()
        return logits, (torch.cat(queries, dim=1) if queries else None)
