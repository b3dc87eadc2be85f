"""A broadcast hub of events with sequence numbers, for the control API."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Mapping

# An event as the API streams it: JSON-ready fields, "seq" added by the hub.
HubEvent = dict[str, object]


class EventHub:
    def __init__(self, keep: int = 2000) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._ring: deque[tuple[int, HubEvent]] = deque(maxlen=keep)
        self._subscribers: set[queue.Queue[HubEvent]] = set()

    def publish(self, event: Mapping[str, object]) -> int:
        with self._lock:
            self._seq += 1
            item: HubEvent = {"seq": self._seq, **event}
            self._ring.append((self._seq, item))
            for q in self._subscribers:
                q.put(item)
            return self._seq

    @property
    def seq(self) -> int:
        return self._seq

    def subscribe(self, since: int | None = None) -> queue.Queue[HubEvent]:
        q: queue.Queue[HubEvent] = queue.Queue()
        with self._lock:
            if since is not None:
                for seq, item in self._ring:
                    if seq > since:
                        q.put(item)
            self._subscribers.add(q)
        return q

    def unsubscribe(self, q: queue.Queue[HubEvent]) -> None:
        with self._lock:
            self._subscribers.discard(q)
