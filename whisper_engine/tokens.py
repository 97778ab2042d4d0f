"""Ids of Whisper's special tokens. They differ between multilingual and English-only models."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from whisper_engine.errors import ModelError

TIME_PRECISION_S = 0.02


@dataclass(frozen=True)
class SpecialTokens:
    eot: int
    sot: int
    translate: int
    transcribe: int
    sot_lm: int
    sot_prev: int
    no_speech: int
    no_timestamps: int
    # "<|sv|>" -> id; empty for English-only models.
    languages: Mapping[str, int] = field(default_factory=dict)

    @property
    def timestamp_begin(self) -> int:
        return self.no_timestamps + 1

    def language_id(self, code: str) -> int | None:
        return self.languages.get(f"<|{code}|>")

    def language_code(self, token_id: int) -> str:
        for content, ident in self.languages.items():
            if ident == token_id:
                return content[2:-2]
        raise ModelError(f"token {token_id} is not a language token")

    @classmethod
    def from_lookup(
        cls, lookup: Callable[[str], int | None], languages: Mapping[str, int]
    ) -> SpecialTokens:
        def need(content: str) -> int:
            found = lookup(content)
            if found is None:
                raise ModelError(f"the tokenizer has no {content} token")
            return found

        return cls(
            eot=need("<|endoftext|>"),
            sot=need("<|startoftranscript|>"),
            translate=need("<|translate|>"),
            transcribe=need("<|transcribe|>"),
            sot_lm=need("<|startoflm|>"),
            sot_prev=need("<|startofprev|>"),
            no_speech=need("<|nocaptions|>"),
            no_timestamps=need("<|notimestamps|>"),
            languages=dict(languages),
        )
