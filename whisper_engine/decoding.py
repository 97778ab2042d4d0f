"""Batched greedy Whisper decoding over fixed 30 s windows.

A hand-written loop instead of ``generate()``: the first decoder step yields the no-speech
probability and the language distribution (OpenAI's method) for free, every step's log
probability is at hand for the confidence checks, and a row that starts repeating itself stops
right away instead of running to the token limit. The logit rules (logit_rules.py) follow
OpenAI's reference decoder, so output matches faster-whisper's greedy decoding.

Per step: one decoder call over pre-allocated key/value buffers (kv_decoder.py), one masked
log-softmax and argmax for the whole batch, one copy of the chosen ids to the host for the
end-of-text and loop checks. Rows that finish leave the batch once a quarter of it has
finished, so a long row does not drag finished ones through every step.

By default the text is decoded without timestamp tokens (Whisper base garbles a window's first
words in timestamp mode) and the alignment heads' queries are kept, so that token times come
from alignment.py without a second decoder pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from whisper_engine.alignment import token_start_times
from whisper_engine.kv_decoder import CachedDecoder, DecoderWeights
from whisper_engine.logit_rules import LogitRules
from whisper_engine.safeguards import MIN_LOOP_TOKENS, find_repetition_loop
from whisper_engine.tokens import TIME_PRECISION_S, SpecialTokens

if TYPE_CHECKING:
    import torch
    from numpy.typing import NDArray


@dataclass(frozen=True)
class DecodeOptions:
    max_new_tokens: int = 224
    # True: Whisper's own timestamp tokens give segment times (OpenAI's original mode).
    # False (default): plain text; times come from cross-attention alignment.
    timestamp_tokens: bool = False
    # Keep the alignment heads' attention and compute token start times (no-timestamp mode).
    alignment: bool = True
    max_initial_timestamp_s: float = 1.0
    suppress_blank: bool = True


@dataclass(frozen=True)
class WindowDecoding:
    """What the decoder produced for one window."""

    tokens: list[int]  # generated tokens without prompt and end-of-text
    language: str
    language_prob: float
    no_speech_prob: float
    avg_logprob: float
    finished: bool  # reached end-of-text
    loop_cut: int | None  # index in ``tokens`` where a repetition loop was cut, if any
    token_logprobs: list[float]  # one per token in ``tokens``
    # Start time (s, from the window start) of each token and of the end-of-text: one more
    # entry than ``tokens``. None without alignment.
    token_starts: NDArray[np.float64] | None = None
    # The window's language distribution over ``SpecialTokens.languages`` order; None for an
    # English-only model.
    language_probs: NDArray[np.float64] | None = None


def decode_windows(
    weights: DecoderWeights,
    encoded: torch.Tensor,
    *,
    tokens: SpecialTokens,
    multilingual: bool,
    languages: Sequence[str | None],
    groups: Sequence[int],
    suppress_tokens: Sequence[int],
    begin_suppress_tokens: Sequence[int],
    options: DecodeOptions,
    audio_frames: Sequence[int] | None = None,
) -> list[WindowDecoding]:
    """Greedy-decode a batch of encoded windows (B, frames, width).

    ``languages[i]`` forces window i's language; None detects it, pooled over the windows of
    this batch that share ``groups[i]`` (the windows of one audio get one language).
    ``audio_frames[i]``: encoder frames of window i that hold audio (alignment ignores the
    padding); all frames when not given.
    """
    import torch

    batch, frames = encoded.shape[0], encoded.shape[1]
    device = encoded.device
    align = options.alignment and not options.timestamp_tokens and weights.alignment_heads != {}
    prompt_len = 1 + (2 if multilingual else 0) + (0 if options.timestamp_tokens else 1)
    decoder = CachedDecoder(weights, encoded, max_length=prompt_len + options.max_new_tokens + 1)

    sot = torch.full((batch, 1), tokens.sot, dtype=torch.long, device=device)
    first_logits, first_queries = decoder.step(sot, alignment=align)
    no_speech = first_logits.softmax(dim=-1)[:, tokens.no_speech].tolist()
    language_probs = _language_probs(first_logits, tokens, multilingual)
    chosen, chosen_probs = _choose_languages(language_probs, tokens, languages, groups)

    rest: list[list[int]] = []
    for language in chosen:
        ids: list[int] = []
        if multilingual:
            language_id = tokens.language_id(language)
            if language_id is None:
                raise ValueError(f"language {language!r} is not supported by this model")
            ids += [language_id, tokens.transcribe]
        if not options.timestamp_tokens:
            ids.append(tokens.no_timestamps)
        rest.append(ids)
    prompt_queries = [first_queries]
    if rest[0]:
        rest_ids = torch.tensor(rest, dtype=torch.long, device=device)
        logits, queries = decoder.step(rest_ids, alignment=align)
        prompt_queries.append(queries)
    else:
        logits = first_logits

    rules = LogitRules(
        vocab=int(logits.shape[-1]),
        batch=batch,
        device=device,
        tokens=tokens,
        suppress_tokens=suppress_tokens,
        begin_suppress_tokens=begin_suppress_tokens,
        timestamp_tokens=options.timestamp_tokens,
        suppress_blank=options.suppress_blank,
        max_initial_timestamp=round(options.max_initial_timestamp_s / TIME_PRECISION_S),
    )
    generated: list[list[int]] = [[] for _ in range(batch)]
    token_logprobs: list[list[float]] = [[] for _ in range(batch)]
    logprob_sums = [0.0] * batch
    finished = [False] * batch
    loop_cut: list[int | None] = [None] * batch
    rows = list(range(batch))  # original index of each row still in the decoder
    step_queries: list[tuple[torch.Tensor, list[int]]] = []
    for _ in range(options.max_new_tokens):
        next_tokens, picked = rules.pick(logits)
        next_list = next_tokens.tolist()
        picked_list = picked.tolist()
        for position, row in enumerate(rows):
            if finished[row]:
                next_list[position] = tokens.eot
                continue
            token = next_list[position]
            logprob_sums[row] += picked_list[position]
            if token == tokens.eot:
                finished[row] = True
                continue
            generated[row].append(token)
            token_logprobs[row].append(picked_list[position])
            loop = _loop_in(generated[row], tokens.timestamp_begin)
            if loop is not None:
                loop_cut[row] = loop
                finished[row] = True
                next_list[position] = tokens.eot
        if all(finished):
            break
        done = [p for p, row in enumerate(rows) if finished[row]]
        if done and len(done) * 4 >= len(rows):
            keep = [p for p, row in enumerate(rows) if not finished[row]]
            kept = torch.tensor(keep, dtype=torch.long, device=device)
            decoder.keep(kept)
            rules.keep(kept)
            rows = [rows[p] for p in keep]
            next_list = [next_list[p] for p in keep]
        step_ids = torch.tensor(next_list, dtype=torch.long, device=device)
        rules.advance(step_ids)
        logits, queries = decoder.step(step_ids[:, None], alignment=align)
        if queries is not None:
            step_queries.append((queries, rows))

    results = []
    for row in range(batch):
        kept_tokens = generated[row] if loop_cut[row] is None else generated[row][: loop_cut[row]]
        starts = None
        if align:
            row_queries = _row_queries(row, prompt_queries, step_queries, len(kept_tokens))
            row_scores = decoder.alignment_scores(row, row_queries).cpu().numpy()
            used = audio_frames[row] if audio_frames is not None else frames
            starts = token_start_times(row_scores, prompt_len, used)
        results.append(
            WindowDecoding(
                tokens=kept_tokens,
                language=chosen[row],
                language_prob=chosen_probs[row],
                no_speech_prob=no_speech[row],
                avg_logprob=logprob_sums[row] / (len(generated[row]) + 1),
                finished=finished[row] and loop_cut[row] is None,
                loop_cut=loop_cut[row],
                token_logprobs=token_logprobs[row][: len(kept_tokens)],
                token_starts=starts,
                language_probs=None if language_probs is None else language_probs[row],
            )
        )
    return results


def _row_queries(
    row: int,
    prompt_queries: Sequence[torch.Tensor | None],
    step_queries: Sequence[tuple[torch.Tensor, list[int]]],
    text_tokens: int,
) -> torch.Tensor:
    """Alignment-head queries of one row, (heads, prompt + text tokens, dim): the prompt's
    positions and those of the steps that fed its first ``text_tokens`` tokens."""
    import torch

    parts = [q[row] for q in prompt_queries if q is not None]
    for queries, rows in step_queries[:text_tokens]:
        parts.append(queries[rows.index(row)])
    return torch.cat(parts, dim=1)


def _language_probs(
    first_logits: torch.Tensor, tokens: SpecialTokens, multilingual: bool
) -> NDArray[np.float64] | None:
    """(rows, languages) softmax over the language tokens at the first step."""
    if not multilingual or not tokens.languages:
        return None
    import torch

    ids = torch.tensor(list(tokens.languages.values()), device=first_logits.device)
    probs: NDArray[np.float64] = (
        first_logits[:, ids].double().softmax(dim=-1).cpu().numpy().astype(np.float64)
    )
    return probs


def _choose_languages(
    probs: NDArray[np.float64] | None,
    tokens: SpecialTokens,
    languages: Sequence[str | None],
    groups: Sequence[int],
) -> tuple[list[str], list[float]]:
    """Per row: the forced language and its probability, or the detected one (pooled over the
    batch's rows of the same group that also detect)."""
    if probs is None:
        return ["en"] * len(languages), [1.0] * len(languages)
    codes = language_codes(tokens)
    chosen: list[str] = []
    chosen_probs: list[float] = []
    for row, forced in enumerate(languages):
        if forced is not None:
            index = codes.index(forced) if forced in codes else -1
            chosen.append(forced)
            chosen_probs.append(float(probs[row, index]) if index >= 0 else 0.0)
            continue
        members = [i for i, g in enumerate(groups) if g == groups[row] and languages[i] is None]
        pooled = probs[members].mean(axis=0)
        best = int(pooled.argmax())
        chosen.append(codes[best])
        chosen_probs.append(float(pooled[best]))
    return chosen, chosen_probs


def language_codes(tokens: SpecialTokens) -> list[str]:
    """Language codes in the order of ``WindowDecoding.language_probs``."""
    return [content[2:-2] for content in tokens.languages]


def _loop_in(generated: list[int], timestamp_begin: int) -> int | None:
    """Index in ``generated`` after which a repetition loop starts, keeping one copy of it.

    Runs after every token of every row, so the common cases return early: too short to loop,
    or (no-timestamp mode) no timestamps to skip over.
    """
    if len(generated) < MIN_LOOP_TOKENS or generated[-1] >= timestamp_begin:
        return None
    if max(generated) < timestamp_begin:
        found = find_repetition_loop(generated)
        return None if found is None else found[0] + found[1]
    text_positions = [i for i, t in enumerate(generated) if t < timestamp_begin]
    found = find_repetition_loop([generated[i] for i in text_positions])
    if found is None:
        return None
    start, period = found
    keep_until = start + period  # keep the first copy of the repeated unit
    return text_positions[keep_until - 1] + 1
