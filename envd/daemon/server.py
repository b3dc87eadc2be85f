"""The control API: HTTP + JSON over ``.envd/daemon.sock`` (mode 0600).

Served by uvicorn (an ASGI server) with Starlette's routing, on a socket
envd binds itself (born 0600 under a tight umask: uvicorn's own ``uds``
option would chmod it 0666), in one thread with its own event loop.
Endpoints: ``GET /v1/ping``, ``GET /v1/status``, ``GET /v1/plan``,
``GET /v1/events?since=N`` (JSON lines, streamed), ``POST /v1/reload``,
``POST /v1/stop``. Answers never carry secret values: they are built from
events, plans and status, none of which hold any.

What a client can do to the server is bounded: a request must arrive whole
(head and body) within ``REQUEST_DEADLINE`` seconds or its connection is
closed (a client that trickles bytes holds nothing for long); heads are
capped by h11, bodies by ``MAX_BODY`` (checked on Content-Length and while
reading); every field of a body is type-checked before use (400 otherwise);
at most ``MAX_CONNECTIONS`` connections are served at once (503 beyond).

``POST /v1/reload`` may carry ``environ`` (the variables the spec of the
calling ``envd up`` reads) and ``commands`` (what its approved command
secrets printed when it ran them: the daemon runs no host command). Neither
is logged nor echoed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import os
import queue
import socket
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from envd.daemon.hub import EventHub
from envd.daemon.log import Logger
from envd.daemon.reconciler import Reconciler

if TYPE_CHECKING:
    from envd.inputs.secrets import CommandValue

# A reload carries at most the spec's variables and secret values: far below this.
MAX_BODY = 8 * 1024 * 1024
REQUEST_DEADLINE = 10.0  # seconds for a request's head and body to arrive
MAX_CONNECTIONS = 64
MAX_HEAD = 64 * 1024


class BadRequest(Exception):
    """A request the API refuses; ``status`` and the sentence are the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request does not
    arrive whole in time: uvicorn bounds the idle time between requests, not
    a request that trickles in (a slow-loris client)."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()  # the request is in: answering may take as long as it takes
        else:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(REQUEST_DEADLINE, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.conn.their_state not in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            self.transport.close()


async def _json_body(request: Request) -> dict[str, Any]:
    """The JSON object sent ({} when none), read within the caps."""
    raw = request.headers.get("content-length")
    if raw is not None and int(raw) > MAX_BODY:  # h11 vetted it: digits only
        raise BadRequest(413, f"request body over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise BadRequest(413, f"request body over {MAX_BODY} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest(400, "the client went away") from None
    if not size:
        return {}
    try:
        data = json.loads(b"".join(chunks))
    except ValueError:
        raise BadRequest(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return data


def _environ(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return value
    raise BadRequest(400, "environ must be an object of strings")


def _commands(value: object) -> dict[str, CommandValue] | None:
    from envd.inputs.secrets import CommandValue

    if value is None:
        return None
    bad = BadRequest(
        400, "commands must map each secret to {command: [strings], value: base64 string}"
    )
    if not isinstance(value, dict):
        raise bad
    out: dict[str, CommandValue] = {}
    for name, item in value.items():
        if not (isinstance(name, str) and isinstance(item, dict)):
            raise bad
        command, encoded = item.get("command"), item.get("value")
        if not (
            isinstance(command, list)
            and command
            and all(isinstance(c, str) for c in command)
            and isinstance(encoded, str)
        ):
            raise bad
        try:
            out[name] = CommandValue(tuple(command), base64.b64decode(encoded, validate=True))
        except binascii.Error:
            raise bad from None
    return out


def _wait_timeout(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    ):
        return float(value)
    raise BadRequest(400, "wait_timeout must be a number of seconds ≥ 0, or null")


def make_app(
    reconciler: Reconciler,
    hub: EventHub,
    on_stop: Callable[[], object],
    log: Logger,
    ui_url: str | None = None,
) -> Starlette:
    def ping(request: Request) -> Response:
        return JSONResponse({"ok": True, "pid": os.getpid()})

    def status(request: Request) -> Response:
        return JSONResponse(reconciler.status())

    def plan(request: Request) -> Response:
        from envd.values.errors import EnvdError

        try:
            return JSONResponse(reconciler.plan())
        except EnvdError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)

    async def events(request: Request) -> Response:
        since_raw = request.query_params.get("since", "")
        since = int(since_raw) if since_raw.isascii() and since_raw.isdigit() else None
        return StreamingResponse(_follow(since), media_type="application/x-ndjson")

    async def _follow(since: int | None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake() -> None:  # called by the publishing thread
            try:
                loop.call_soon_threadsafe(ready.set)
            except RuntimeError:  # the loop is closing
                pass

        q = hub.subscribe(since, wake=wake)
        try:
            while not reconciler.stopping:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    ready.clear()
                    if q.empty():  # nothing slipped in between get and clear
                        try:
                            await asyncio.wait_for(ready.wait(), 1.0)
                        except TimeoutError:
                            pass
                    continue
                yield (json.dumps(item) + "\n").encode()
        finally:
            hub.unsubscribe(q)

    async def reload(request: Request) -> Response:
        body = await _json_body(request)
        environ = _environ(body.get("environ"))
        commands = _commands(body.get("commands"))
        timeout = _wait_timeout(body.get("wait_timeout"))
        restart_exited = body.get("restart_exited", True)
        reason = body.get("reason") or "reload requested"
        if not isinstance(restart_exited, bool):
            raise BadRequest(400, "restart_exited must be true or false")
        if not isinstance(reason, str):
            raise BadRequest(400, "reason must be a string")
        rerun = body.get("rerun") or []
        if not (isinstance(rerun, list) and all(isinstance(n, str) for n in rerun)):
            raise BadRequest(400, "rerun must be a list of service names")
        generation = await run_in_threadpool(
            reconciler.trigger,
            reason[:200],
            wait_timeout=timeout,
            restart_exited=restart_exited,
            environ=environ,
            commands=commands,
            rerun=frozenset(rerun),
        )
        return JSONResponse(
            {"generation": generation, "seq": hub.seq, "environ": environ is not None}
        )

    async def stop(request: Request) -> Response:
        await _json_body(request)
        # After the answer is sent: stopping closes this server.
        asyncio.get_running_loop().call_soon(on_stop)
        return JSONResponse({"stopping": True})

    def ui(request: Request) -> Response:
        if ui_url is None:
            return JSONResponse({"error": "this daemon serves no dashboard"}, status_code=404)
        # The socket is this user's only (0600, peer-checked): the token may cross it.
        return JSONResponse({"url": ui_url})

    async def act(request: Request) -> Response:
        from envd.daemon.actions import ACTIONS

        body = await _json_body(request)
        action, service = body.get("action"), body.get("service")
        if action not in ACTIONS or not isinstance(service, str):
            raise BadRequest(400, f"action must be one of {', '.join(ACTIONS)}, with a service")
        desired = reconciler.desired
        if desired is not None and service not in desired.services:
            raise BadRequest(404, f"no active service {service!r}")
        generation = await run_in_threadpool(reconciler.request_action, action, service)
        return JSONResponse({"generation": generation, "seq": hub.seq})

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequest)
        # A body left unread would be taken for the next request: close after answering.
        return JSONResponse(
            {"error": str(exc)}, status_code=exc.status, headers={"Connection": "close"}
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        what = "no endpoint" if status == 404 else f"{request.method} is not allowed on"
        return JSONResponse({"error": f"{what} {request.url.path}"}, status_code=status)

    return Starlette(
        routes=[
            Route("/v1/ping", ping),
            Route("/v1/status", status),
            Route("/v1/plan", plan),
            Route("/v1/events", events),
            Route("/v1/reload", reload, methods=["POST"]),
            Route("/v1/stop", stop, methods=["POST"]),
            Route("/v1/ui", ui),
            Route("/v1/action", act, methods=["POST"]),
        ],
        exception_handlers={BadRequest: refused, 404: not_found, 405: not_found},
    )


class _QuietServer(uvicorn.Server):
    """uvicorn's server without its tick: its main loop wakes ten times a
    second to refresh the Date header and look for a request to exit, which
    is most of an idle daemon's CPU. This one sleeps until ``request_exit``."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        await self.on_tick(0)  # the default headers, once (date_header is off)
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if not self.should_exit:
            await self._wake.wait()

    def request_exit(self) -> None:
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop is already closed
                pass


def _config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=_DeadlineProtocol,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=2,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=MAX_HEAD,
        date_header=False,
    )


class ApiServer:
    """The control API on its unix socket, and the dashboard on its loopback
    port when there is one, served by one event loop in a thread of its own."""

    def __init__(
        self,
        path: Path,
        app: ASGIApp,
        log: Logger,
        on_crash: Callable[[], object],
        ui: tuple[socket.socket, ASGIApp] | None = None,
    ) -> None:
        self.path = path
        self._log = log
        self._on_crash = on_crash
        self._served = [(_QuietServer(_config(app)), _bind(path))]
        if ui is not None:
            self._served.append((_QuietServer(_config(ui[1])), ui[0]))
        self._thread = threading.Thread(target=self._run, name="envd-api", daemon=True)

    async def _serve(self) -> None:
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in self._served))

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # SystemExit too: uvicorn exits on a failed startup
            self._log.error("api.crash", error=f"{type(exc).__name__}: {exc}")
            # A daemon nobody can reach or stop must not linger: stop it.
            self._on_crash()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        for server, _ in self._served:
            server.request_exit()
        self._thread.join(timeout)
        for _, sock in self._served:
            sock.close()


def bind_loopback(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1: ``port``, or a free one when that is
    taken (or 0). Loopback only: the dashboard is never on another interface."""
    for candidate in (port, 0) if port else (0,):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", candidate))
        except OSError:
            sock.close()
            continue
        sock.listen(128)
        return sock
    raise OSError("no free loopback port for the dashboard")


def _bind(path: Path) -> socket.socket:
    if path.exists() or path.is_symlink():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others can connect
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(128)
    return sock


def make_server(
    path: Path,
    reconciler: Reconciler,
    hub: EventHub,
    on_stop: Callable[[], object],
    log: Logger,
    ui: tuple[socket.socket, ASGIApp, str] | None = None,
) -> ApiServer:
    """``ui``: the dashboard's socket, app and URL (``GET /v1/ui`` answers the URL)."""
    api = make_app(reconciler, hub, on_stop, log, ui[2] if ui else None)
    return ApiServer(path, api, log, on_stop, (ui[0], ui[1]) if ui else None)
