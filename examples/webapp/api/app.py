"""A tiny API for the envd webapp example (Python standard library only).

GET /healthz  200 "ok" (the healthcheck)
GET /         JSON: the greeting, a hit counter kept in Redis, and whether
              PostgreSQL accepts connections
"""

from __future__ import annotations

import json
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GREETING = os.environ.get("GREETING", "hello")
DB = (os.environ.get("DB_HOST", "db"), 5432)
REDIS = (os.environ.get("REDIS_HOST", "cache"), 6379)


def redis_incr(key: str) -> int:
    """INCR over the Redis protocol (RESP), without a client library."""
    with socket.create_connection(REDIS, timeout=2) as s:
        s.sendall(f"*2\r\n$4\r\nINCR\r\n${len(key)}\r\n{key}\r\n".encode())
        reply = s.makefile("rb").readline()
    if not reply.startswith(b":"):
        raise RuntimeError(f"unexpected reply from Redis: {reply!r}")
    return int(reply[1:])


def db_reachable() -> bool:
    try:
        with socket.create_connection(DB, timeout=2):
            return True
    except OSError:
        return False


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
            return
        if self.path != "/":
            self._send(404, b"not found\n", "text/plain")
            return
        try:
            hits: int | None = redis_incr("hits")
        except (OSError, RuntimeError):
            hits = None
        doc = {"greeting": GREETING, "hits": hits, "db": db_reachable()}
        self._send(200, json.dumps(doc).encode() + b"\n", "application/json")

    def log_message(self, format: str, *args: object) -> None:
        if self.path != "/healthz":  # keep the logs readable
            print(f"{self.address_string()} {format % args}", flush=True)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    print(f"api listening on :8000 ({GREETING!r})", flush=True)
    server.serve_forever()
