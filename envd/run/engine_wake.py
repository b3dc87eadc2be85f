"""Readiness by the engine's events: wake the apply loop when a container of the
project starts, dies or reports its health, instead of polling on a timer.

``envd up --once`` waits for healthchecks: polling the container list every
0.1 s adds half an interval on average after a container turned healthy. A
follower thread reads the engine's event stream (``since`` the moment it was
asked for, so nothing between the request and the connection is missed;
``until`` a bound, so the connection ends on its own) and sets a flag the loop
waits on. Should the stream fail or end early, ``alive`` turns false and the
loop polls as before: events only ever make it wake sooner.
"""

from __future__ import annotations

import threading
import time

from envd.engine.base import Engine
from envd.values.events import Clock

# Health reports ("health_status: healthy"), starts and exits: what readiness reads.
WAKE_ACTIONS = ("start", "die", "health_status")


class EventWake:
    def __init__(self, engine: Engine, project: str, since: float, until: float) -> None:
        """Follow ``project``'s events from the Unix time ``since`` until ``until``."""
        self._engine = engine
        self._project = project
        self._since = since
        self._until = until
        self._flag = threading.Event()
        self._closed = threading.Event()
        self.alive = True
        self.woken = 0  # events that woke the loop (tests)
        self._thread = threading.Thread(target=self._follow, name="envd-events", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._engine.stream_events(self._project, self._since, self._until):
                if self._closed.is_set():
                    return
                action = str(event.get("Action") or event.get("status") or "")
                if action.startswith(WAKE_ACTIONS):
                    self.woken += 1
                    self._flag.set()
        except Exception:  # any failure: the loop polls instead
            pass
        self.alive = False
        self._flag.set()

    def wait(self, timeout: float) -> bool:
        """Block until an event (True) or ``timeout`` seconds (False)."""
        woke = self._flag.wait(timeout)
        self._flag.clear()
        return woke

    def close(self) -> None:
        """Stop listening (the connection itself ends at ``until``)."""
        self._closed.set()


class Waits:
    """The apply loop's pause between two looks at the containers."""

    def __init__(
        self, engine: Engine, project: str, clock: Clock, poll_interval: float, events: bool
    ) -> None:
        self._engine = engine
        self._project = project
        self._clock = clock
        self._poll = poll_interval
        self._events = events
        self._since = 0.0
        self.wake: EventWake | None = None

    def starting(self) -> None:
        """A first container is about to start: its events count from here."""
        if not self._since:
            self._since = time.time()

    def sleep(self, deadline: float | None) -> None:
        """Until an engine event (or a second, should one be missed), or a poll
        interval when not following events. The follower starts at the first
        wait, replaying from the first start: most ``up``s never wait."""
        if self._events and self._since and self.wake is None:
            left = 300.0 if deadline is None else deadline - self._clock.monotonic()
            # A second of margin each side: the engine's clock stamps the events.
            self.wake = EventWake(
                self._engine, self._project, self._since - 1.0, time.time() + left + 1.0
            )
        if self.wake is None or not self.wake.alive:
            self._clock.sleep(self._poll)
            return
        left = 1.0 if deadline is None else max(0.0, deadline - self._clock.monotonic())
        self.wake.wait(min(1.0, left))

    def close(self) -> None:
        if self.wake is not None:
            self.wake.close()
