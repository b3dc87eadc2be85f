"""The dashboard's routes, behind the ``Guard``: the page, its assets, its
state, its live streams and its actions.

- ``GET /`` the page (the CSRF token in a meta tag); ``GET /assets/NAME``
  its script and style, shipped inside the package (nothing from the internet);
- ``GET /api/state`` the page's document (``view.page_state``);
- ``GET /api/plan`` what ``envd up`` would change now, and why;
- ``GET /api/stream`` server-sent events: every daemon event as it happens,
  which the page answers by fetching the state again;
- ``GET /api/logs?service=NAME&tail=N`` server-sent log lines, following
  (every service when ``service`` is absent);
- ``POST /api/action`` ``{"action", "service"}``: restart, recreate, rebuild,
  stop, start a service; ``reconcile``, ``pause-watch``, ``resume-watch``.

No GET changes anything. Actions go through the reconciler's queue, so they
run inside the project's converge lock and are reported as events.
"""

from __future__ import annotations

import asyncio
import html
import json
import queue
import threading
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from envd.daemon.actions import ACTIONS
from envd.daemon.hub import EventHub
from envd.daemon.reconciler import Reconciler
from envd.daemon.ui.guard import CSRF_HEADER, Guard, Keys
from envd.daemon.ui.view import page_state
from envd.values.errors import EnvdError

ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
MAX_LOG_STREAMS = 16  # each holds a thread and an engine connection while it follows
_PROJECT_ACTIONS = ("reconcile", "pause-watch", "resume-watch")


def _asset(name: str) -> bytes:
    return resources.files("envd.daemon.ui").joinpath("assets").joinpath(name).read_bytes()


def make_ui(reconciler: Reconciler, hub: EventHub, keys: Keys, watching: threading.Event) -> Guard:
    log_streams = threading.BoundedSemaphore(MAX_LOG_STREAMS)

    def state() -> dict[str, Any]:
        return page_state(
            reconciler.status(), reconciler.desired, hub.recent(300), watching.is_set()
        )

    async def page(request: Request) -> Response:
        text = _asset("index.html").decode()
        text = text.replace("{{CSRF}}", html.escape(keys.csrf)).replace(
            "{{CSRF_HEADER}}", CSRF_HEADER
        )
        text = text.replace("{{PROJECT}}", html.escape(keys.project))
        return Response(text, media_type="text/html; charset=utf-8")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return Response(_asset(name), media_type=ASSETS[name])

    async def api_state(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(state))

    def plan_now() -> dict[str, Any]:
        try:
            return {"plan": reconciler.plan()}
        except EnvdError as exc:
            return {"error": str(exc)}

    async def api_plan(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(plan_now))

    async def stream(request: Request) -> Response:
        return StreamingResponse(_events(), media_type="text/event-stream")

    async def _events() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(ready.set)
            except RuntimeError:
                pass

        q = hub.subscribe(None, wake=wake)
        try:
            yield b"retry: 1000\n\n"
            while not reconciler.stopping:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    ready.clear()
                    if q.empty():
                        try:
                            await asyncio.wait_for(ready.wait(), 15.0)
                        except TimeoutError:
                            yield b": keep-alive\n\n"
                    continue
                yield f"data: {json.dumps(item)}\n\n".encode()
        finally:
            hub.unsubscribe(q)

    async def logs(request: Request) -> Response:
        service = request.query_params.get("service") or None
        tail_raw = request.query_params.get("tail", "200")
        tail = min(int(tail_raw), 5000) if tail_raw.isascii() and tail_raw.isdigit() else 200
        desired = reconciler.desired
        if desired is None or (service is not None and service not in desired.services):
            return JSONResponse({"error": f"no service {service!r}"}, status_code=404)
        if not log_streams.acquire(blocking=False):
            return JSONResponse({"error": "too many log streams open"}, status_code=429)
        return StreamingResponse(
            _follow_logs(desired.project, service, tail), media_type="text/event-stream"
        )

    async def _follow_logs(project: str, service: str | None, tail: int) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(maxsize=10000)
        done = threading.Event()

        def put(item: tuple[str, str] | None) -> None:
            try:
                loop.call_soon_threadsafe(lines.put_nowait, item)
            except (RuntimeError, asyncio.QueueFull):
                pass

        def follow(container_id: str, name: str) -> None:
            # The engine's stream blocks between lines; this thread ends at the
            # next line after the page left, or when the container stops.
            try:
                for line in reconciler.engine.stream_logs(container_id, tail=tail, follow=True):
                    if done.is_set():
                        return
                    put((name, line))
            except EnvdError as exc:
                put((name, f"[envd: log stream ended: {exc}]"))

        def start() -> int:
            containers = [
                c
                for c in reconciler.engine.list_containers(project)
                if service is None or c.service == service
            ]
            for c in containers:
                threading.Thread(
                    target=follow, args=(c.id, c.service or c.name), daemon=True
                ).start()
            return len(containers)

        try:
            count = await run_in_threadpool(start)
            if not count:
                yield b'data: {"service": "", "line": "[envd: no container]"}\n\n'
            while not reconciler.stopping:
                try:
                    item = await asyncio.wait_for(lines.get(), 15.0)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    break
                name, line = item
                yield f"data: {json.dumps({'service': name, 'line': line})}\n\n".encode()
        finally:
            done.set()
            log_streams.release()

    async def action(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        kind, service = body.get("action"), body.get("service")
        if kind in _PROJECT_ACTIONS:
            return JSONResponse(await run_in_threadpool(_project_action, str(kind)))
        if kind not in ACTIONS or not isinstance(service, str):
            return JSONResponse(
                {"error": f"action must be one of {', '.join(ACTIONS + _PROJECT_ACTIONS)}"},
                status_code=400,
            )
        desired = reconciler.desired
        if desired is None or service not in desired.services:
            return JSONResponse({"error": f"no service {service!r}"}, status_code=404)
        generation = await run_in_threadpool(reconciler.request_action, kind, service)
        return JSONResponse({"generation": generation})

    def _project_action(kind: str) -> dict[str, Any]:
        if kind == "pause-watch":
            watching.clear()
            reconciler.publish("watch", "project", "file watching paused", "done")
        elif kind == "resume-watch":
            watching.set()
            reconciler.publish("watch", "project", "file watching resumed", "done")
            return {"generation": reconciler.trigger("file watching resumed")}
        else:
            return {"generation": reconciler.trigger("reconcile requested")}
        return {"watching": watching.is_set()}

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/assets/{name}", asset),
            Route("/api/state", api_state),
            Route("/api/plan", api_plan),
            Route("/api/stream", stream),
            Route("/api/logs", logs),
            Route("/api/action", action, methods=["POST"]),
        ]
    )
    return Guard(app, keys)
