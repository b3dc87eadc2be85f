"""The control API over a real unix socket in tmp_path, driving a reconciler on the fake engine."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from envd.daemon.client import DaemonClient, DaemonUnavailable, Reload
from envd.daemon.hub import EventHub
from envd.values.errors import EnvdError
from tests.helpers import DAEMON_SPEC as SPEC
from tests.helpers import DaemonWorld as World
from tests.helpers import FakeReconciler, serving, wait_for


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_reload_over_the_socket_hands_the_environment_to_the_reconciler(
    tmp_path: Path, world: World
) -> None:
    """The client sends its environment with the reload; the daemon acknowledges it, keeps
    it for its plan endpoint too, and refuses an environment that is not strings."""
    world.write(SPEC.replace('"{web_color}"', '"${{UNITD_COLOR}}"').format(worker_color="red"))
    sock = tmp_path / "d.sock"
    with serving(sock, world.reconciler, world.hub, on_stop=lambda: None):
        client = DaemonClient(sock)
        reply = client.reload(wait_timeout=5.0, environ={"UNITD_COLOR": "teal"})
        assert reply.environ_applied and reply.generation == world.reconciler.state.generation
        assert world.reconciler.environ == {"UNITD_COLOR": "teal"}
        assert client.reload().environ_applied  # none sent: the last one stays
        assert world.reconciler.environ == {"UNITD_COLOR": "teal"}
        world.run_next()
        web = world.containers()["unitd-web-1"]
        assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "teal"
        assert client.plan()["changes"] == 0  # the plan endpoint reads with it too
        with pytest.raises(EnvdError, match="environ must be an object of strings"):
            client._request("POST", "/v1/reload", {"environ": {"X": 1}})
        assert world.reconciler.environ == {"UNITD_COLOR": "teal"}


# --------------------------------------------------------------------------- the API over a fake reconciler


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Path, FakeReconciler, EventHub, list[str]]]:
    """The control API on a real unix socket, over a fake reconciler; yields what stop() did."""
    sock = tmp_path / "d.sock"
    reconciler = FakeReconciler()
    hub = EventHub()
    stops: list[str] = []
    with serving(sock, reconciler, hub, on_stop=lambda: stops.append("stop")):
        yield sock, reconciler, hub, stops


def test_ping_and_status_answer(api: tuple[Path, FakeReconciler, EventHub, list[str]]) -> None:
    """ping says the daemon is alive; status is the reconciler's report, as JSON."""
    sock, reconciler, _, _ = api
    client = DaemonClient(sock)
    assert client.alive()
    reconciler.report = {"daemon": {"last_result": "invalid-spec"}, "services": []}
    assert client.status() == reconciler.report


def test_socket_is_private_and_replaces_a_stale_one(tmp_path: Path) -> None:
    """The socket is born 0600, and a file left at its path by a dead daemon is replaced."""
    sock = tmp_path / "d.sock"
    sock.write_text("stale")
    with serving(sock, FakeReconciler()):
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert sock.stat().st_mode & 0o777 == 0o600
        assert DaemonClient(sock).alive()


def test_reload_hands_the_request_to_the_reconciler(
    api: tuple[Path, FakeReconciler, EventHub, list[str]],
) -> None:
    """A reload triggers a pass with the caller's reason, wait timeout, restart flag and environment."""
    sock, reconciler, hub, _ = api
    hub.publish({"kind": "x"})
    reply = DaemonClient(sock).reload(wait_timeout=7.5, restart_exited=False, environ={"A": "1"})
    assert reply == Reload(generation=1, seq=1, environ_applied=True)
    assert reconciler.triggers == [
        {"reason": "envd up", "wait_timeout": 7.5, "restart_exited": False, "environ": {"A": "1"}}
    ]


def test_a_bare_reload_uses_the_defaults(
    api: tuple[Path, FakeReconciler, EventHub, list[str]],
) -> None:
    """A reload without a body is a pass that restarts what exited, with a generic reason."""
    sock, reconciler, _, _ = api
    assert DaemonClient(sock)._request("POST", "/v1/reload")["generation"] == 1
    assert reconciler.triggers == [
        {
            "reason": "reload requested",
            "wait_timeout": None,
            "restart_exited": True,
            "environ": None,
        }
    ]


def test_stop_answers_then_stops(api: tuple[Path, FakeReconciler, EventHub, list[str]]) -> None:
    """POST /v1/stop answers first, then calls the daemon's stop."""
    sock, _, _, stops = api
    DaemonClient(sock).stop()
    wait_for(lambda: stops == ["stop"], timeout=10)


def test_unknown_endpoints_are_refused(
    api: tuple[Path, FakeReconciler, EventHub, list[str]],
) -> None:
    """An unknown path is a 404, which the client raises with the daemon's message."""
    sock, _, _, _ = api
    client = DaemonClient(sock)
    with pytest.raises(EnvdError, match="the daemon refused: no endpoint /v1/nope"):
        client._request("GET", "/v1/nope")
    with pytest.raises(EnvdError, match="no endpoint /v1/nope"):
        client._request("POST", "/v1/nope")


def test_events_replay_since_a_sequence_number_then_follow(
    api: tuple[Path, FakeReconciler, EventHub, list[str]],
) -> None:
    """The event stream replays what came after ``since`` and then follows new events."""
    sock, _, hub, _ = api
    for kind in ("a", "b", "c"):
        hub.publish({"kind": kind})
    stream = DaemonClient(sock).events(since=1)
    assert [next(stream)["kind"], next(stream)["kind"]] == ["b", "c"]
    hub.publish({"kind": "d"})
    assert next(stream) == {"seq": 4, "kind": "d"}
    stream.close()


def test_no_daemon_is_daemon_unavailable(tmp_path: Path) -> None:
    """A client whose socket has nobody behind it says so, and alive() is False."""
    client = DaemonClient(tmp_path / "none.sock", timeout=2.0)
    assert not client.alive()
    with pytest.raises(DaemonUnavailable):
        client.status()


# --------------------------------------------------------------------------- request bodies


def _raw(sock: Path, request: bytes) -> bytes:
    """Send ``request`` as is and return the response head; the write side stays open,
    as a slow or hostile client would leave it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5.0)
        s.connect(str(sock))
        s.sendall(request)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
        return data


def _post(length: str, body: bytes = b"") -> bytes:
    head = f"POST /v1/reload HTTP/1.1\r\nHost: envd\r\nContent-Length: {length}\r\n\r\n"
    return head.encode() + body


@pytest.mark.parametrize(
    ("length", "status"),
    [("-1", b"400"), ("abc", b"400"), ("1e3", b"400"), ("\u00b2", b"400"), (str(10**12), b"413")],
)
def test_a_bad_content_length_is_refused_at_once(
    api: tuple[Path, FakeReconciler, EventHub, list[str]], length: str, status: bytes
) -> None:
    """A negative or unreadable Content-Length is a 400 and a huge one a 413, answered
    without reading the body (a negative one used to hang the thread, a huge one to try
    to read it all into memory)."""
    sock, reconciler, _, _ = api
    head = _raw(sock, _post(length))
    assert head.startswith(b"HTTP/1.1 " + status), head
    assert reconciler.triggers == []


def test_a_body_within_the_limit_is_read(
    api: tuple[Path, FakeReconciler, EventHub, list[str]],
) -> None:
    """A normal body with a correct Content-Length still reaches the reconciler."""
    sock, reconciler, _, _ = api
    body = b'{"reason": "raw"}'
    head = _raw(sock, _post(str(len(body)), body))
    assert head.startswith(b"HTTP/1.1 200"), head
    assert reconciler.triggers[0]["reason"] == "raw"


def _closed_within(s: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``s`` within ``seconds`` (reads until EOF)."""
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


@pytest.mark.parametrize(
    "partial",
    [b"GET /v1/stat", b"POST /v1/reload HTTP/1.1\r\nHost: envd\r\nContent-Length: 50\r\n\r\n{"],
)
def test_a_client_that_trickles_its_request_is_cut_off(
    api: tuple[Path, FakeReconciler, EventHub, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    partial: bytes,
) -> None:
    """A request whose head or body never completes is closed after the deadline (the
    stdlib server held such a connection, and a thread, for ever), and the API still answers."""
    from envd.daemon import server

    monkeypatch.setattr(server, "REQUEST_DEADLINE", 0.5)
    sock, reconciler, _, _ = api
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock))
        s.sendall(partial)
        assert _closed_within(s, 10.0)
    assert reconciler.triggers == []
    assert DaemonClient(sock).alive()


def test_a_long_event_stream_is_not_cut_off(
    api: tuple[Path, FakeReconciler, EventHub, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The request deadline covers the request only: an event stream outlives it."""
    from envd.daemon import server

    monkeypatch.setattr(server, "REQUEST_DEADLINE", 0.2)
    sock, _, hub, _ = api
    events = DaemonClient(sock).events(since=0)
    hub.publish({"kind": "first"})
    assert next(events)["kind"] == "first"
    # Well past the deadline, the same stream still delivers.
    wait_for(lambda: hub.publish({"kind": "tick"}) > 10, timeout=5.0, interval=0.1)
    kinds = {next(events)["kind"] for _ in range(3)}
    assert kinds == {"tick"}
    events.close()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"wait_timeout": "soon"}, "wait_timeout must be a number"),
        ({"wait_timeout": -1}, "wait_timeout must be a number"),
        ({"wait_timeout": True}, "wait_timeout must be a number"),
        ({"restart_exited": "yes"}, "restart_exited must be true or false"),
        ({"reason": ["x"]}, "reason must be a string"),
        ({"commands": {"t": {"command": "id", "value": ""}}}, "commands must map"),
        ({"commands": {"t": {"command": ["id"], "value": "***"}}}, "commands must map"),
        ({"commands": ["t"]}, "commands must map"),
    ],
)
def test_reload_fields_are_type_checked(
    api: tuple[Path, FakeReconciler, EventHub, list[str]], body: dict[str, object], message: str
) -> None:
    """Each field of a reload has its type checked: a wrong one is a 400 naming it, and
    nothing is triggered (a string wait_timeout used to crash the handler thread)."""
    sock, reconciler, _, _ = api
    with pytest.raises(EnvdError, match=message):
        DaemonClient(sock)._request("POST", "/v1/reload", body)
    assert reconciler.triggers == []


def test_a_body_that_is_not_a_json_object_is_refused(
    api: tuple[Path, FakeReconciler, EventHub, list[str]],
) -> None:
    """A reload body that is not JSON, or not an object, is a 400, not an empty request."""
    sock, reconciler, _, _ = api
    for body in (b"{nope", b"[1, 2]"):
        head = _raw(sock, _post(str(len(body)), body))
        assert head.startswith(b"HTTP/1.1 400"), head
    assert reconciler.triggers == []


def test_command_values_reach_the_reconciler(
    api: tuple[Path, FakeReconciler, EventHub, list[str]],
) -> None:
    """What `envd up`'s command secrets printed crosses the socket byte for byte, with the
    command that printed it (the daemon keys the value on it)."""
    from envd.inputs.secrets import CommandValue

    sock, reconciler, _, _ = api
    value = bytes(range(256))
    DaemonClient(sock).reload(commands={"token": CommandValue(("pass", "show", "x"), value)})
    assert reconciler.triggers[0]["commands"] == {
        "token": CommandValue(("pass", "show", "x"), value)
    }
