"""The byte budget of decoded audio in flight (MAX_DECODED_AUDIO_MB) and its reservations.

Reserved on the event loop (admission, before decoding), resized after decoding and released by
the inference thread once the model is done with the audio, hence the lock.
"""

from __future__ import annotations

import threading

from server.settings import decoded_bytes

# Below this much free budget not even one second of audio could be admitted: /health says busy.
_MIN_ADMISSIBLE = decoded_bytes(1.0)


class AudioBudget:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("the decoded-audio budget must be positive")
        self.capacity = capacity
        self._used = 0
        self._peak = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    @property
    def peak(self) -> int:
        """The most ever reserved at once (never above capacity)."""
        return self._peak

    @property
    def exhausted(self) -> bool:
        return self.capacity - self._used < _MIN_ADMISSIBLE

    def _take(self, amount: int) -> bool:
        with self._lock:
            if self._used + amount > self.capacity:
                return False
            self._used += amount
            self._peak = max(self._peak, self._used)
            return True

    def _give(self, amount: int) -> None:
        with self._lock:
            self._used -= amount

    def reserve(self, amount: int) -> Ticket | None:
        """A ticket holding ``amount`` bytes, or None when the budget can't spare them now."""
        if amount < 0:
            raise ValueError("a reservation can't be negative")
        return Ticket(self, amount) if self._take(amount) else None


class Ticket:
    """Bytes one request holds; resized as its audio turns out, released exactly once."""

    def __init__(self, budget: AudioBudget, amount: int) -> None:
        self._budget = budget
        self._held = amount
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._held

    def resize(self, amount: int) -> bool:
        """Hold ``amount`` bytes instead; False (holding what it held) when growth doesn't fit."""
        with self._lock:
            delta = amount - self._held
            if delta > 0 and not self._budget._take(delta):
                return False
            if delta < 0:
                self._budget._give(-delta)
            self._held = amount
            return True

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, 0
        if held:
            self._budget._give(held)
