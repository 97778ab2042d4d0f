"""The invocation's time budget: work is attempted only when it still leaves the reserve for
the fallback queue send (P5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimeBudget:
    """``remaining_ms`` is the Lambda context's ``get_remaining_time_in_millis``."""

    remaining_ms: Callable[[], int]
    reserve_s: float

    def remaining_s(self) -> float:
        return self.remaining_ms() / 1000.0

    def fits(self, seconds: float) -> bool:
        """True when ``seconds`` more work still leaves ``reserve_s`` for the queue send."""
        return self.remaining_s() - seconds >= self.reserve_s
