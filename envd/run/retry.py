"""Retry an engine call that fails for a moment after a related change.

The engine releases a removed container's network endpoints a moment late
(moby#42119), and a swarm keeps a secret or network in use until its old tasks
are gone: removing such an object right after its users fails briefly.
"""

from __future__ import annotations

from collections.abc import Callable

from envd.values.errors import Conflict, EngineError, EngineUnavailable
from envd.values.events import Clock


def retry(
    fn: Callable[[], None],
    clock: Clock,
    deadline: float,
    *,
    interval: float = 0.25,
    on: tuple[type[EngineError], ...] = (Conflict,),
) -> EngineError | None:
    """Call ``fn`` until it stops raising one of ``on`` or ``deadline`` passes.

    None once it succeeded, the last error when the deadline passed first;
    other errors propagate (a removal that counts "gone" as done says so in ``fn``), and
    so does an unreachable engine: waiting for it is the caller's decision, not a retry's.
    """
    while True:
        try:
            fn()
            return None
        except EngineUnavailable:
            raise
        except on as exc:
            if clock.monotonic() >= deadline:
                return exc
            clock.sleep(interval)
