"""The control API: HTTP + JSON over ``.envd/daemon.sock`` (mode 0600).

Served by the standard library's ``http.server`` on a unix socket, one thread
per connection. Endpoints: ``GET /v1/ping``, ``GET /v1/status``,
``GET /v1/plan``, ``GET /v1/events?since=N`` (JSON lines, streamed),
``POST /v1/reload``, ``POST /v1/stop``. Answers never carry secret values:
they are built from events, plans and status, none of which hold any.

``POST /v1/reload`` may carry ``environ``, the calling ``envd up``'s process
environment: the reconciler reads the spec with it from then on. It is
neither logged nor echoed (the request log has the request line only).
"""

from __future__ import annotations

import json
import os
import queue
import socketserver
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from envd.daemon.hub import EventHub
from envd.daemon.log import Logger
from envd.daemon.reconciler import Reconciler

# A reload carries at most the caller's environment: far below this.
MAX_BODY = 8 * 1024 * 1024


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(
    path: Path,
    reconciler: Reconciler,
    hub: EventHub,
    on_stop: Callable[[], object],
    log: Logger,
) -> _UnixHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "envd"

        def address_string(self) -> str:
            return "unix"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("api.request", line=format % args)

        def _send(self, status: int, body: object) -> None:
            data = (json.dumps(body) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any] | None:
            """The JSON object sent, {} when none; None when refused (the answer is sent)."""
            raw = (self.headers.get("Content-Length") or "0").strip()
            if not (
                raw.isascii() and raw.isdigit()
            ):  # also "-1": read(-1) would wait for a close that never comes
                self.close_connection = True
                self._send(400, {"error": f"bad Content-Length {raw[:40]!r}"})
                return None
            length = int(raw)
            if length > MAX_BODY:
                # Unread, the body would be taken for the next request: close after answering.
                self.close_connection = True
                self._send(413, {"error": f"request body over {MAX_BODY} bytes"})
                return None
            if not length:
                return {}
            try:
                data = json.loads(self.rfile.read(length))
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/v1/ping":
                self._send(200, {"ok": True, "pid": os.getpid()})
            elif url.path == "/v1/status":
                self._send(200, reconciler.status())
            elif url.path == "/v1/plan":
                self._plan()
            elif url.path == "/v1/events":
                self._events(parse_qs(url.query))
            else:
                self._send(404, {"error": f"no endpoint {url.path}"})

        def _plan(self) -> None:
            from envd.core.status import unchecked_secrets
            from envd.inputs.consent import command_secrets
            from envd.inputs.prepare import prepare
            from envd.run.converge import plan_project
            from envd.values.errors import EnvdError

            try:
                loaded, desired = prepare(reconciler.target, reconciler.environ)  # no commands
                plan, _ = plan_project(reconciler.engine, desired, restart_exited=False)
                plan = unchecked_secrets(plan, command_secrets(loaded))
            except EnvdError as exc:
                self._send(409, {"error": str(exc)})
                return
            self._send(200, plan.to_json())

        def _events(self, query: dict[str, list[str]]) -> None:
            since_raw = (query.get("since") or [""])[0]
            since = int(since_raw) if since_raw and since_raw.isdigit() else None
            q = hub.subscribe(since)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                while not reconciler.stopping:
                    try:
                        item = q.get(timeout=1.0)
                    except queue.Empty:
                        continue
                    self.wfile.write((json.dumps(item) + "\n").encode())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                hub.unsubscribe(q)

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self._body()
            if body is None:
                return
            if url.path == "/v1/reload":
                timeout = body.get("wait_timeout")
                environ = body.get("environ")
                if environ is not None and not (
                    isinstance(environ, dict)
                    and all(isinstance(k, str) and isinstance(v, str) for k, v in environ.items())
                ):
                    self._send(400, {"error": "environ must be an object of strings"})
                    return
                rerun = body.get("rerun") or []
                if not (isinstance(rerun, list) and all(isinstance(n, str) for n in rerun)):
                    self._send(400, {"error": "rerun must be a list of service names"})
                    return
                generation = reconciler.trigger(
                    str(body.get("reason") or "reload requested"),
                    wait_timeout=float(timeout) if timeout is not None else None,
                    restart_exited=bool(body.get("restart_exited", True)),
                    environ=environ,
                    rerun=frozenset(rerun),
                )
                self._send(
                    200,
                    {"generation": generation, "seq": hub.seq, "environ": environ is not None},
                )
            elif url.path == "/v1/stop":
                self._send(200, {"stopping": True})
                on_stop()
            else:
                self._send(404, {"error": f"no endpoint {url.path}"})

    if path.exists() or path.is_symlink():
        path.unlink()
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others can connect
    try:
        server = _UnixHTTPServer(str(path), Handler)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return server
