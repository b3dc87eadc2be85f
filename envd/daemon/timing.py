"""Debounce and back-off, driven by an injected clock so tests never sleep."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Debouncer:
    """Fire once a burst of marks has been quiet for ``quiet`` s, or after ``max_wait`` s.

    A branch switch touches hundreds of files within milliseconds; one pass
    must cover the whole burst, yet a steady trickle must not starve it.
    """

    quiet: float = 0.05
    max_wait: float = 0.5
    first: float | None = None
    last: float | None = None

    def mark(self, now: float) -> None:
        if self.first is None:
            self.first = now
        self.last = now

    @property
    def pending(self) -> bool:
        return self.first is not None

    def remaining(self, now: float) -> float:
        """Seconds until it fires (0: fire now); meaningless when not pending."""
        if self.first is None or self.last is None:
            return float("inf")
        return max(0.0, min(self.last + self.quiet, self.first + self.max_wait) - now)

    def reset(self) -> None:
        self.first = self.last = None


@dataclass
class Backoff:
    """Exponential back-off for transient failures: base, 2×base, … capped."""

    base: float = 0.5
    cap: float = 30.0
    failures: int = 0

    def failed(self) -> float:
        delay = float(min(self.cap, self.base * (2.0**self.failures)))
        self.failures += 1
        return delay

    def succeeded(self) -> None:
        self.failures = 0
