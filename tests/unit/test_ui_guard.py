"""The dashboard's gate, over a real loopback socket: token → cookie, Host and Origin
checks, CSRF on every change, no action from a GET, and the headers every answer carries."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from envd.daemon.client import DaemonClient
from envd.daemon.server import bind_loopback, make_server
from envd.daemon.ui.app import make_ui
from envd.daemon.ui.guard import CSRF_HEADER, Keys
from tests.helpers import DaemonWorld as World


class Page:
    """A dashboard served over a fake-engine reconciler, and a way to ask it things."""

    def __init__(self, world: World, keys: Keys, sock: Path) -> None:
        self.world, self.keys, self.sock = world, keys, sock

    def ask(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: object = None,
        cookie: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.keys.port, timeout=10)
        sent = {"Host": f"127.0.0.1:{self.keys.port}"}
        if cookie:
            sent["Cookie"] = f"{self.keys.cookie}={self.keys.token}"
        sent.update(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        conn.close()
        return out

    def post_action(self, body: object, **headers: str) -> tuple[int, dict[str, str], bytes]:
        sent = {
            "Origin": f"http://127.0.0.1:{self.keys.port}",
            CSRF_HEADER: self.keys.csrf,
            "Content-Type": "application/json",
        }
        sent.update(headers)
        return self.ask("POST", "/api/action", sent, body)


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    monkeypatch.setenv("ENVD_HASH_KEY", "ab" * 32)
    root = tmp_path / "p"
    root.mkdir()
    world = World(root)
    world.converge()
    tcp = bind_loopback(0)
    keys = Keys("unitd", int(tcp.getsockname()[1]))
    watching = threading.Event()
    watching.set()
    ui = make_ui(world.reconciler, world.hub, keys, watching)
    sock = tmp_path / "d.sock"
    server = make_server(
        sock,
        world.reconciler,
        world.hub,
        lambda: None,
        structlog.wrap_logger(logging.getLogger("test.ui")),
        (tcp, ui, keys.url),
    )
    server.start()
    try:
        yield Page(world, keys, sock)
    finally:
        world.reconciler.stop()
        server.stop(timeout=10)


def test_without_the_token_every_route_is_refused(page: Page) -> None:
    """No cookie and no token: 403 everywhere, the page and its assets included."""
    for path in ("/", "/assets/app.js", "/api/state", "/api/plan", "/api/stream", "/nope"):
        status, _, _ = page.ask("GET", path, cookie=False)
        assert status == 403, path
    status, _, _ = page.ask("GET", "/?token=wrong", cookie=False)
    assert status == 403


def test_the_token_becomes_a_cookie_named_for_project_and_port(page: Page) -> None:
    """The printed URL's token is traded for an HttpOnly, SameSite=Strict cookie whose name
    carries project and port, and the redirect drops the token from the address."""
    status, headers, _ = page.ask("GET", f"/?token={page.keys.token}&x=1", cookie=False)
    assert status == 303
    assert headers["location"] == "/?x=1"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"envd_unitd_{page.keys.port}={page.keys.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, headers, body = page.ask("GET", "/")
    assert status == 200 and page.keys.csrf.encode() in body
    assert page.keys.token.encode() not in body


def test_a_foreign_host_or_origin_is_refused(page: Page) -> None:
    """A DNS-rebound Host, or another page's Origin, is refused even with the cookie."""
    port = page.keys.port
    assert page.ask("GET", "/api/state", {"Host": f"evil.example:{port}"})[0] == 403
    assert page.ask("GET", "/api/state", {"Host": "127.0.0.1:1"})[0] == 403
    assert page.ask("GET", "/api/state", {"Origin": "http://evil.example"})[0] == 403
    assert page.ask("GET", "/api/state", {"Host": f"localhost:{port}"})[0] == 200


def test_a_change_needs_the_pages_origin_and_csrf_token(page: Page) -> None:
    """A POST without Origin, with a wrong CSRF token or none is refused and queues nothing;
    with both it queues the action."""
    before = page.world.reconciler.state.generation
    assert page.post_action({"action": "reconcile"}, **{CSRF_HEADER: "wrong"})[0] == 403
    status, _, _ = page.ask(
        "POST", "/api/action", {CSRF_HEADER: page.keys.csrf}, {"action": "reconcile"}
    )
    assert status == 403  # no Origin
    assert page.world.reconciler.state.generation == before
    status, _, body = page.post_action({"action": "stop", "service": "web"})
    assert status == 200 and json.loads(body)["generation"] > before
    page.world.run_next()
    assert page.world.containers()["unitd-web-1"].status == "exited"


def test_no_action_runs_from_a_get(page: Page) -> None:
    """The action route answers GET with 405 and changes nothing."""
    before = page.world.reconciler.state.generation
    status, _, _ = page.ask("GET", "/api/action?action=stop&service=web")
    assert status == 405
    assert page.world.reconciler.state.generation == before


def test_bad_actions_are_refused_with_a_reason(page: Page) -> None:
    """An unknown action or service is a 400/404 naming it."""
    status, _, body = page.post_action({"action": "explode", "service": "web"})
    assert status == 400 and b"action must be one of" in body
    status, _, body = page.post_action({"action": "stop", "service": "nope"})
    assert status == 404 and b"nope" in body


def test_every_answer_carries_the_security_headers(page: Page) -> None:
    """No caching, no sniffing, no framing, a strict CSP, on pages, assets, API and refusals."""
    for path, cookie in (("/", True), ("/assets/app.js", True), ("/api/state", True), ("/", False)):
        _, headers, _ = page.ask("GET", path, cookie=cookie)
        assert headers["cache-control"] == "no-store", path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_the_state_has_services_graph_and_events(page: Page) -> None:
    """/api/state carries each service with its containers, the graph and recent events."""
    status, _, body = page.ask("GET", "/api/state")
    state = json.loads(body)
    assert status == 200
    assert [s["name"] for s in state["services"]] == ["web", "worker"]
    assert {n["id"] for n in state["graph"]["nodes"]} == {"web", "worker"}
    assert any(e["kind"] == "pass-done" for e in state["events"])
    assert state["watching"] is True and state["spec_error"] is None


def test_the_socket_hands_out_the_url_only_to_its_user(page: Page) -> None:
    """`envd ui` gets the URL, token included, over the peer-checked unix socket."""
    assert DaemonClient(page.sock).ui_url() == page.keys.url


def test_pausing_watching_is_an_event_and_resuming_reconciles(page: Page) -> None:
    """pause-watch flips the watcher off and says so; resume turns it on and asks for a pass."""
    status, _, body = page.post_action({"action": "pause-watch"})
    assert status == 200 and json.loads(body) == {"watching": False}
    assert json.loads(page.ask("GET", "/api/state")[2])["watching"] is False
    before = page.world.reconciler.state.generation
    status, _, body = page.post_action({"action": "resume-watch"})
    assert status == 200 and json.loads(body)["generation"] > before
    messages = [e.get("message") for e in page.world.hub.recent() if e.get("kind") == "watch"]
    assert messages == ["file watching paused", "file watching resumed"]
