"""Events: what envd sees and does, for progress output, logs and ``envd events``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, field
from typing import Literal, Protocol

from envd.values.record import value

Phase = Literal["working", "done", "error", "waiting", "info"]


@value
class Event:
    kind: str  # e.g. "pull", "create", "recreate", "healthy", "failed", "reconcile"
    resource: str
    message: str = ""
    phase: Phase = "info"
    service: str = ""
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v != ""}


Emit = Callable[[Event], None]


def discard(_: Event) -> None:
    return None


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock tests advance by hand; ``sleep`` advances it instantly."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
