"""A broadcast hub of events with sequence numbers, for the control API."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Mapping

# An event as the API streams it: JSON-ready fields, "seq" added by the hub.
HubEvent = dict[str, object]


class EventHub:
    def __init__(self, keep: int = 2000) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._ring: deque[tuple[int, HubEvent]] = deque(maxlen=keep)
        # Each subscriber's queue, and what to call after putting into it.
        self._subscribers: dict[queue.Queue[HubEvent], Callable[[], None] | None] = {}

    def publish(self, event: Mapping[str, object]) -> int:
        with self._lock:
            self._seq += 1
            item: HubEvent = {"seq": self._seq, **event}
            self._ring.append((self._seq, item))
            for q, wake in self._subscribers.items():
                q.put(item)
                if wake is not None:
                    wake()
            return self._seq

    def recent(self, limit: int = 500) -> list[HubEvent]:
        """The last ``limit`` events kept, oldest first."""
        with self._lock:
            items = list(self._ring)[-limit:]
        return [item for _, item in items]

    @property
    def seq(self) -> int:
        return self._seq

    def subscribe(
        self, since: int | None = None, wake: Callable[[], None] | None = None
    ) -> queue.Queue[HubEvent]:
        """A queue of the events after ``since`` and every later one; ``wake``
        is called after each put (an event loop cannot block on the queue)."""
        q: queue.Queue[HubEvent] = queue.Queue()
        with self._lock:
            if since is not None:
                for seq, item in self._ring:
                    if seq > since:
                        q.put(item)
            self._subscribers[q] = wake
        return q

    def unsubscribe(self, q: queue.Queue[HubEvent]) -> None:
        with self._lock:
            self._subscribers.pop(q, None)
