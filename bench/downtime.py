"""How long the changed service does not answer during the one-change step.

The changed service serves a file with busybox ``httpd`` on a published port;
a probe outside the engine asks it every ~5 ms (a fresh TCP connection and an
HTTP request each time) while the tool recreates it, and keeps asking after the
tool returns until the new container answers. Downtime = first answer from the
new container - last answer from the old one (the longest gap between two
answers), for every tool alike.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time

INTERVAL = 0.005
# The command the changed service runs in every tool's project (and the engine's).
HTTPD = ("sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www")
CONTAINER_PORT = 8080


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
            s.settimeout(0.5)
            return s.recv(64).startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))
    except OSError:
        return False


class Probe:
    """Asks ``port`` every INTERVAL from ``start()`` until the answers resume after ``done()``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ok_times: list[float] = []
        self._done = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        done_at: float | None = None
        while True:
            now = time.perf_counter()
            if answers(self.port):
                self.ok_times.append(time.perf_counter())
                if done_at is not None:
                    break  # the new container answers
            if self._done.is_set() and done_at is None:
                done_at = now
            if done_at is not None and now - done_at > 30.0:
                break  # it never came back: reported as such
            time.sleep(INTERVAL)
        self._finished.set()

    def finish(self) -> float:
        """The longest silence, in seconds (inf: no answer after the step)."""
        self._done.set()
        self._finished.wait(60.0)
        times = self.ok_times
        if len(times) < 2:
            return float("inf")
        return max(b - a for a, b in itertools.pairwise(times))
