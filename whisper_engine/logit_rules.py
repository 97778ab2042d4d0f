"""Which token may come next: OpenAI's logit filters as whole-batch tensor operations.

The filters (suppressed tokens, blank suppression at the first step, and in timestamp-token
mode the timestamp rules: pairing, monotonicity, the first-timestamp limit and "timestamps
first when they are more likely than any text") are the reference decoder's, so the greedy
choice is the same token for token. Instead of a Python loop over rows and their histories,
each row's state is three small tensors (last token, the one before, the last timestamp), the
rules become boolean masks over the vocabulary, and a step needs one log-softmax: the forced
rows' renormalisation over timestamps is a subtraction of the timestamps' log-sum-exp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from whisper_engine.tokens import SpecialTokens

if TYPE_CHECKING:
    import torch


class LogitRules:
    """Per-batch filter state; ``pick`` chooses each row's next token greedily."""

    def __init__(
        self,
        *,
        vocab: int,
        batch: int,
        device: torch.device,
        tokens: SpecialTokens,
        suppress_tokens: Sequence[int],
        begin_suppress_tokens: Sequence[int],
        timestamp_tokens: bool,
        suppress_blank: bool,
        max_initial_timestamp: int,
    ) -> None:
        import torch

        self.begin = tokens.timestamp_begin
        self.eot = tokens.eot
        self.timestamp_tokens = timestamp_tokens
        self.max_initial = max_initial_timestamp
        always = [*suppress_tokens, tokens.sot, tokens.sot_prev, tokens.sot_lm, tokens.no_speech]
        always += [tokens.translate, tokens.transcribe]
        if timestamp_tokens:
            always.append(tokens.no_timestamps)
        bias = torch.zeros(vocab, dtype=torch.float32, device=device)
        bias[[t for t in always if 0 <= t < vocab]] = float("-inf")
        if not timestamp_tokens:
            bias[self.begin :] = float("-inf")
        first = bias.clone()
        if suppress_blank:
            first[[t for t in begin_suppress_tokens if 0 <= t < vocab]] = float("-inf")
        columns = torch.arange(vocab, device=device)
        if timestamp_tokens:
            # The first token is a timestamp no later than max_initial_timestamp.
            first[: self.begin] = float("-inf")
            first[self.begin + max_initial_timestamp + 1 :] = float("-inf")
        self._bias = bias
        self._first_bias = first
        self._columns = columns
        self._is_stamp = columns >= self.begin
        self._is_text = columns < self.eot
        # Timestamp-mode history per row; -1 = none yet.
        self._last = torch.full((batch,), -1, dtype=torch.long, device=device)
        self._before = torch.full((batch,), -1, dtype=torch.long, device=device)
        self._last_stamp = torch.full((batch,), -1, dtype=torch.long, device=device)
        self._count = 0

    def keep(self, rows: torch.Tensor) -> None:
        """Follow the decoder when it drops rows."""
        self._last = self._last[rows]
        self._before = self._before[rows]
        self._last_stamp = self._last_stamp[rows]

    def pick(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(next token, its log probability) per row, from float32 logits (rows, vocab)."""
        import torch

        first = self._count == 0
        logits = logits + (self._first_bias if first else self._bias)
        if not self.timestamp_tokens:
            logprobs = logits.log_softmax(dim=-1)
            chosen = logits.argmax(dim=-1)
            return chosen, logprobs.gather(1, chosen[:, None]).squeeze(1)
        if not first:
            logits = logits.masked_fill(self._timestamp_mask(), float("-inf"))
        logprobs = logits.log_softmax(dim=-1)
        stamp_logprob = torch.logsumexp(logprobs[:, self.begin :], dim=-1)
        best_text = logprobs[:, : self.begin].max(dim=-1).values
        force = stamp_logprob > best_text
        forced = logits.masked_fill(force[:, None] & ~self._is_stamp, float("-inf"))
        chosen = forced.argmax(dim=-1)
        picked = logprobs.gather(1, chosen[:, None]).squeeze(1)
        # A forced row's distribution is renormalised over the timestamps (as OpenAI's decoder
        # does by taking the log-softmax after masking the text).
        picked = picked - torch.where(force, stamp_logprob, torch.zeros_like(stamp_logprob))
        return chosen, picked

    def advance(self, chosen: torch.Tensor) -> None:
        """Record the tokens fed next (finished rows feed end-of-text; it does not matter)."""
        import torch

        self._count += 1
        if not self.timestamp_tokens:
            return
        self._before = self._last
        self._last = chosen
        self._last_stamp = torch.where(chosen >= self.begin, chosen, self._last_stamp)

    def _timestamp_mask(self) -> torch.Tensor:
        last_stamp = self._last >= self.begin
        # With fewer than two tokens the "penultimate" counts as a timestamp (OpenAI).
        before_stamp = (self._before >= self.begin) | (self._before < 0)
        closed_pair = last_stamp & before_stamp  # a pair just closed: text must follow
        open_pair = last_stamp & ~before_stamp  # must close the pair or end
        mask = closed_pair[:, None] & self._is_stamp
        mask |= open_pair[:, None] & self._is_text
        # Timestamps never go backwards; an open pair may close on the same time.
        floor = self._last_stamp + (~open_pair).long()
        seen = self._last_stamp >= 0
        mask |= (seen[:, None] & self._is_stamp) & (self._columns < floor[:, None])
        return mask
