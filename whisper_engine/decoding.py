"""Batched greedy Whisper decoding over fixed 30 s windows.

A hand-written loop instead of ``generate()``: the first decoder step yields the no-speech
probability and the language distribution (OpenAI's method) for free, every step's log
probability is at hand for the confidence checks, and a row that starts repeating itself stops
right away instead of running to the token limit. The logit rules (suppressed tokens, blank
suppression at the start, timestamp pairing and monotonicity) follow OpenAI's reference
decoder, so output matches faster-whisper's greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from whisper_engine.safeguards import find_repetition_loop
from whisper_engine.tokens import TIME_PRECISION_S, SpecialTokens

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DecodeOptions:
    max_new_tokens: int = 224
    timestamps: bool = True
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


def decode_windows(
    model: Any,
    features: torch.Tensor,
    *,
    tokens: SpecialTokens,
    multilingual: bool,
    languages: Sequence[str | None],
    groups: Sequence[int],
    suppress_tokens: Sequence[int],
    begin_suppress_tokens: Sequence[int],
    options: DecodeOptions,
) -> list[WindowDecoding]:
    """Greedy-decode a batch of log-mel windows (B, mels, 3000).

    ``languages[i]`` forces window i's language; None detects it, pooled over all windows that
    share ``groups[i]`` (the windows of one audio get one language).
    """
    import torch

    batch = features.shape[0]
    device = features.device
    encoder = model.get_encoder()
    decoder = model.model.decoder
    encoded = encoder(input_features=features).last_hidden_state

    sot = torch.full((batch, 1), tokens.sot, dtype=torch.long, device=device)
    step = decoder(input_ids=sot, encoder_hidden_states=encoded, use_cache=True)
    cache = step.past_key_values
    first_logits = model.proj_out(step.last_hidden_state[:, -1]).float()
    first_probs = first_logits.softmax(dim=-1)
    no_speech = first_probs[:, tokens.no_speech].tolist()

    chosen, chosen_probs = _choose_languages(first_logits, tokens, multilingual, languages, groups)

    prompt_rest: list[list[int]] = []
    for language in chosen:
        rest: list[int] = []
        if multilingual:
            language_id = tokens.language_id(language)
            if language_id is None:
                raise ValueError(f"language {language!r} is not supported by this model")
            rest += [language_id, tokens.transcribe]
        if not options.timestamps:
            rest.append(tokens.no_timestamps)
        prompt_rest.append(rest)

    if prompt_rest[0]:
        rest_ids = torch.tensor(prompt_rest, dtype=torch.long, device=device)
        step = decoder(
            input_ids=rest_ids, encoder_hidden_states=encoded, past_key_values=cache, use_cache=True
        )
        cache = step.past_key_values
        logits = model.proj_out(step.last_hidden_state[:, -1]).float()
    else:
        logits = first_logits

    vocab = logits.shape[-1]
    suppress = torch.zeros(vocab, dtype=torch.bool, device=device)
    always = [*suppress_tokens, tokens.sot, tokens.sot_prev, tokens.sot_lm, tokens.no_speech]
    always += [tokens.translate, tokens.transcribe]
    suppress[[t for t in always if 0 <= t < vocab]] = True
    begin_suppress = [t for t in begin_suppress_tokens if 0 <= t < vocab]
    max_initial = round(options.max_initial_timestamp_s / TIME_PRECISION_S)

    generated: list[list[int]] = [[] for _ in range(batch)]
    logprob_sums = [0.0] * batch
    finished = [False] * batch
    loop_cut: list[int | None] = [None] * batch
    for index in range(options.max_new_tokens):
        logits = logits.masked_fill(suppress, float("-inf"))
        if index == 0 and options.suppress_blank:
            logits[:, begin_suppress] = float("-inf")
        if options.timestamps:
            _apply_timestamp_rules(
                logits, generated, tokens, at_begin=index == 0, max_initial=max_initial
            )
        else:
            logits[:, tokens.timestamp_begin :] = float("-inf")
        logprobs = logits.log_softmax(dim=-1)
        next_tokens = logits.argmax(dim=-1)
        picked = logprobs.gather(1, next_tokens[:, None]).squeeze(1).tolist()
        next_list = next_tokens.tolist()
        for row in range(batch):
            if finished[row]:
                next_list[row] = tokens.eot
                continue
            token = next_list[row]
            logprob_sums[row] += picked[row]
            if token == tokens.eot:
                finished[row] = True
                continue
            generated[row].append(token)
            loop = _loop_in(generated[row], tokens.timestamp_begin)
            if loop is not None:
                loop_cut[row] = loop
                finished[row] = True
                next_list[row] = tokens.eot
        if all(finished):
            break
        step_ids = torch.tensor(next_list, dtype=torch.long, device=device)[:, None]
        step = decoder(
            input_ids=step_ids, encoder_hidden_states=encoded, past_key_values=cache, use_cache=True
        )
        cache = step.past_key_values
        logits = model.proj_out(step.last_hidden_state[:, -1]).float()

    return [
        WindowDecoding(
            tokens=generated[row] if loop_cut[row] is None else generated[row][: loop_cut[row]],
            language=chosen[row],
            language_prob=chosen_probs[row],
            no_speech_prob=no_speech[row],
            avg_logprob=logprob_sums[row] / (len(generated[row]) + 1),
            finished=finished[row] and loop_cut[row] is None,
            loop_cut=loop_cut[row],
        )
        for row in range(batch)
    ]


def _choose_languages(
    first_logits: torch.Tensor,
    tokens: SpecialTokens,
    multilingual: bool,
    languages: Sequence[str | None],
    groups: Sequence[int],
) -> tuple[list[str], list[float]]:
    if not multilingual:
        return ["en"] * len(languages), [1.0] * len(languages)
    import torch

    codes = [content[2:-2] for content in tokens.languages]
    ids = torch.tensor(list(tokens.languages.values()), device=first_logits.device)
    probs = first_logits[:, ids].softmax(dim=-1)
    chosen: list[str] = []
    chosen_probs: list[float] = []
    for row, forced in enumerate(languages):
        if forced is not None:
            chosen.append(forced)
            chosen_probs.append(1.0)
            continue
        members = [i for i, g in enumerate(groups) if g == groups[row] and languages[i] is None]
        pooled = probs[members].mean(dim=0)
        best = int(pooled.argmax())
        chosen.append(codes[best])
        chosen_probs.append(float(pooled[best]))
    return chosen, chosen_probs


def _loop_in(generated: list[int], timestamp_begin: int) -> int | None:
    """Index in ``generated`` after which a repetition loop starts, keeping one copy of it."""
    text_positions = [i for i, t in enumerate(generated) if t < timestamp_begin]
    if not text_positions or text_positions[-1] != len(generated) - 1:
        return None
    text = [generated[i] for i in text_positions]
    found = find_repetition_loop(text)
    if found is None:
        return None
    start, period = found
    keep_until = start + period  # keep the first copy of the repeated unit
    return text_positions[keep_until - 1] + 1


def _apply_timestamp_rules(
    logits: torch.Tensor,
    generated: list[list[int]],
    tokens: SpecialTokens,
    *,
    at_begin: bool,
    max_initial: int,
) -> None:
    """OpenAI's ApplyTimestampRules, in place."""
    import torch

    begin = tokens.timestamp_begin
    logits[:, tokens.no_timestamps] = float("-inf")
    for row, seq in enumerate(generated):
        last_was_ts = len(seq) >= 1 and seq[-1] >= begin
        penultimate_was_ts = len(seq) < 2 or seq[-2] >= begin
        if last_was_ts:
            if penultimate_was_ts:
                logits[row, begin:] = float("-inf")  # a pair just closed: text must follow
            else:
                logits[row, : tokens.eot] = float("-inf")  # must close the pair or end
        stamps = [t for t in seq if t >= begin]
        if stamps:
            floor = stamps[-1] if last_was_ts and not penultimate_was_ts else stamps[-1] + 1
            logits[row, begin:floor] = float("-inf")  # timestamps never go backwards
    if at_begin:
        logits[:, :begin] = float("-inf")
        logits[:, begin + max_initial + 1 :] = float("-inf")
    logprobs = logits.log_softmax(dim=-1)
    timestamp_logprob = torch.logsumexp(logprobs[:, begin:], dim=-1)
    max_text_logprob = logprobs[:, :begin].max(dim=-1).values
    force = timestamp_logprob > max_text_logprob
    if bool(force.any()):
        logits[force, :begin] = float("-inf")
