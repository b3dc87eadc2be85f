"""A broadcast hub of events with sequence numbers, for the control API."""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Any


class EventHub:
    def __init__(self, keep: int = 2000) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._ring: deque[dict[str, Any]] = deque(maxlen=keep)
        self._subscribers: set[queue.Queue[dict[str, Any]]] = set()

    def publish(self, event: dict[str, Any]) -> int:
        with self._lock:
            self._seq += 1
            item = {"seq": self._seq, **event}
            self._ring.append(item)
            for q in self._subscribers:
                q.put(item)
            return self._seq

    @property
    def seq(self) -> int:
        return self._seq

    def subscribe(self, since: int | None = None) -> queue.Queue[dict[str, Any]]:
        q: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            if since is not None:
                for item in self._ring:
                    if item["seq"] > since:
                        q.put(item)
            self._subscribers.add(q)
        return q

    def unsubscribe(self, q: queue.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._subscribers.discard(q)
