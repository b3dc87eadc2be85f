"""The HTTP/1.1 client under ``DockerEngine`` and its stream framings, without an engine.

Answers are fed through a socket pair (the test writes the engine's side), or
come from a tiny unix-socket server started in the test; connection failures
must surface as ``EngineUnavailable`` naming the host.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from envd.engine.docker.client import DockerEngine
from envd.engine.docker.transport import (
    Connection,
    Endpoint,
    ProtocolError,
    StaleConnection,
    demux,
    failure_reason,
    is_multiplexed,
    json_objects,
    stream_lines,
)
from envd.values.errors import Conflict, EngineError, EngineUnavailable, NotFound


class Peer:
    """A connection whose engine side the test writes to (and reads what was sent)."""

    def __init__(self) -> None:
        self.client, self.engine = socket.socketpair()
        self.opened = 0
        self.conn = Connection(self._open)

    def _open(self, timeout: float | None) -> socket.socket:
        self.opened += 1
        self.client.settimeout(5)
        return self.client

    def answer(self, raw: bytes) -> None:
        self.engine.sendall(raw)

    def sent(self) -> bytes:
        self.engine.settimeout(1)
        return self.engine.recv(65536)

    def fetch(self, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
        status, headers = self.conn.request(method, "/v1.41/x", {}, body, 5)
        return status, b"".join(self.conn.body_chunks(method, status, headers))

    def close(self) -> None:
        self.conn.close()
        self.engine.close()


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    yield p
    p.close()


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", b""),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
            b"hello world",
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            b"ok",
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)
def test_bodies_by_length_chunks_and_none_keep_the_connection(
    peer: Peer, raw: bytes, body: bytes
) -> None:
    """A body framed by length or chunks (or absent) is read whole and the connection kept."""
    peer.answer(raw)
    status, got = peer.fetch()
    assert got == body and status in (200, 201, 204)
    assert peer.conn.sock is not None


def test_a_body_without_length_runs_until_the_engine_closes(peer: Peer) -> None:
    """Without a length or chunks the body is everything until EOF, and the connection closes."""
    peer.answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstream of bytes")
    peer.engine.shutdown(socket.SHUT_WR)
    assert peer.fetch() == (200, b"stream of bytes")
    assert peer.conn.sock is None


def test_the_request_carries_host_and_length(peer: Peer) -> None:
    """A POST names the host and its body length, and sends the body after the head."""
    peer.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    peer.fetch("POST", b'{"a":1}')
    head, _, body = peer.sent().partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1.41/x HTTP/1.1"
    assert b"Host: docker" in lines and b"Content-Length: 7" in lines
    assert body == b'{"a":1}'


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_an_answer_cut_short_is_a_protocol_error(peer: Peer, raw: bytes) -> None:
    """A body that ends before its length or last chunk raises ProtocolError and closes."""
    peer.answer(raw)
    peer.engine.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError, match="mid-answer"):
        peer.fetch()
    assert peer.conn.sock is None


@pytest.mark.parametrize("raw", [b"SSH-2.0-OpenSSH\r\n", b"HTTP/1.1 OK\r\n\r\n"])
def test_an_answer_that_is_not_http_is_a_protocol_error(peer: Peer, raw: bytes) -> None:
    """A status line that is not HTTP raises ProtocolError quoting it."""
    peer.answer(raw)
    with pytest.raises(ProtocolError, match="unexpected answer"):
        peer.fetch()


def test_no_answer_on_a_fresh_connection_is_a_protocol_error(peer: Peer) -> None:
    """An engine closing a fresh connection without answering is not retried."""
    peer.engine.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError, match="without answering"):
        peer.fetch()


def test_a_kept_connection_the_engine_closed_is_stale(peer: Peer) -> None:
    """A reused connection the engine closed while idle raises StaleConnection (safe to retry)."""
    peer.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert peer.fetch() == (200, b"ok")
    peer.engine.shutdown(socket.SHUT_WR)
    with pytest.raises(StaleConnection):
        peer.fetch()
    assert peer.opened == 1


# --------------------------------------------------------------------------- DockerEngine over a unix socket


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # A unix socket path must stay under ~100 bytes; pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="envd-") as d:
        yield Path(d)


def _serve(path: Path, handle: Callable[[socket.socket], None], connections: int = 1) -> None:
    """Accept ``connections`` connections on ``path`` in a thread, each handled by ``handle``."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def run() -> None:
        with server:
            for _ in range(connections):
                conn, _ = server.accept()
                with conn:
                    handle(conn)

    threading.Thread(target=run, daemon=True).start()


_VERSION_BODY = b'{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"}'
# The /version answer DockerEngine reads once before its first versioned call.
VERSION = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(_VERSION_BODY), _VERSION_BODY)


def _answers(*raws: bytes) -> Callable[[socket.socket], None]:
    """Answer one request per raw answer on the same connection."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        for raw in raws:
            conn.recv(65536)
            conn.sendall(raw)

    return handle


def test_no_socket_is_engine_unavailable_naming_the_host(socket_dir: Path) -> None:
    """Nobody listening at the socket path raises EngineUnavailable (an EngineError, exit 3)."""
    host = f"unix://{socket_dir}/docker.sock"
    with pytest.raises(EngineUnavailable) as info:
        DockerEngine(host=host).ping()
    assert host in str(info.value) and info.value.exit_code == 3
    assert isinstance(info.value, EngineError)


def test_an_engine_hanging_up_without_answering_is_engine_unavailable(socket_dir: Path) -> None:
    """An engine that accepts and closes without an answer is unreachable, not a crash."""
    sock = socket_dir / "docker.sock"
    _serve(sock, lambda conn: conn.recv(65536))
    with pytest.raises(EngineUnavailable, match="without answering"):
        DockerEngine(host=f"unix://{sock}", timeout=5).ping()


def test_one_kept_connection_and_errors_mapped_by_status(socket_dir: Path) -> None:
    """Calls share one keep-alive connection; 404 and 409 become NotFound and Conflict."""
    sock = socket_dir / "docker.sock"

    def error(status: int, message: str) -> bytes:
        body = json.dumps({"message": message}).encode()
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        return head + body

    _serve(
        sock,
        _answers(
            VERSION,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
            error(404, "No such container: abc"),
            error(409, "name in use"),
            error(500, "boom"),
        ),
    )
    eng = DockerEngine(host=f"unix://{sock}", timeout=5)
    assert eng.list_containers("p") == []
    with pytest.raises(NotFound, match="No such container: abc"):
        eng.container_state("abc")
    with pytest.raises(Conflict, match="renaming container abc to b: name in use"):
        eng.rename_container("abc", "b")
    with pytest.raises(EngineError, match="boom") as info:
        eng.start_container("abc")
    assert info.value.status == 500 and not isinstance(info.value, EngineUnavailable)


def test_ping_asks_on_a_fresh_connection(socket_dir: Path) -> None:
    """Ping does not use the kept connection: a dockerd shutting down still answers on that one."""
    sock = socket_dir / "docker.sock"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen(4)
    closed = threading.Event()

    def shutting_down() -> None:
        # Like dockerd on SIGTERM: close the listener, keep serving the open connection.
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            conn.recv(65536)
            conn.sendall(VERSION)
            conn.recv(65536)
            server.close()
            sock.unlink()
            closed.set()
            conn.sendall(ok)
            if conn.recv(65536):
                conn.sendall(ok)

    threading.Thread(target=shutting_down, daemon=True).start()
    eng = DockerEngine(host=f"unix://{sock}", timeout=5)
    assert eng.list_containers("p") == []
    assert closed.wait(5)
    with pytest.raises(EngineUnavailable):
        eng.ping()


def _recording(requests: list[str], *raws: bytes) -> Callable[[socket.socket], None]:
    """Answer one request per raw answer, keeping each request's first line."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        for raw in raws:
            requests.append(conn.recv(65536).split(b"\r\n", 1)[0].decode())
            conn.sendall(raw)

    return handle


@pytest.mark.parametrize(
    ("ping_headers", "asks_version"),
    [("Api-Version: 1.41\r\nServer: Docker/20.10.24 (linux)\r\n", False), ("", True)],
)
def test_a_ping_naming_the_engine_spares_the_version_call(
    socket_dir: Path, ping_headers: str, asks_version: bool
) -> None:
    """A ping whose headers name the engine and its API version is all envd asks before
    its first versioned call; without them it asks /version, as before."""
    sock = socket_dir / "docker.sock"
    ping = f"HTTP/1.1 200 OK\r\n{ping_headers}Content-Length: 2\r\n\r\nOK".encode()
    listed = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"
    pinged: list[str] = []
    kept: list[str] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock))
    server.listen(4)

    def run() -> None:
        with server:
            for handle in (
                _recording(pinged, ping),
                _recording(kept, *([VERSION] if asks_version else []), listed),
            ):
                conn, _ = server.accept()
                with conn:
                    handle(conn)

    threading.Thread(target=run, daemon=True).start()
    eng = DockerEngine(host=f"unix://{sock}", timeout=5)
    eng.ping()
    assert eng.list_containers("p") == []
    assert pinged == ["GET /_ping HTTP/1.1"]
    assert [r.split()[1].split("?")[0] for r in kept] == [
        *(["/version"] if asks_version else []),
        "/v1.41/containers/json",
    ]
    assert eng.describe()["name"] == "Docker" and eng.describe()["api_version"] == "1.41"


def test_an_unsupported_scheme_is_a_value_error() -> None:
    """An npipe:// host is refused when connecting (and reported as unreachable by the engine)."""
    with pytest.raises(ValueError, match="not supported"):
        Endpoint("npipe:////./pipe/docker_engine").connect(1.0)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (FileNotFoundError(2, "No such file or directory"), "no such file or directory"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (TimeoutError(), "it did not answer in time"),
        (
            ProtocolError("it closed the connection mid-answer"),
            "it closed the connection mid-answer",
        ),
    ],
)
def test_failure_reasons_end_a_sentence(exc: BaseException, reason: str) -> None:
    """Why a request failed reads as the end of "not reachable at HOST: ..."."""
    assert failure_reason(exc) == reason


# --------------------------------------------------------------------------- framings


def _frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_multiplexed_output_is_joined_and_recognised() -> None:
    """Frames of stdout and stderr join in order; raw TTY output is not taken for frames."""
    data = _frame(1, b"out\n") + _frame(2, b"err\n")
    assert is_multiplexed(data) and demux(data) == b"out\nerr\n"
    assert is_multiplexed(b"")
    assert not is_multiplexed(b"plain tty output\n")
    assert not is_multiplexed(_frame(1, b"cut")[:-1])


def test_log_lines_complete_across_chunks_per_stream() -> None:
    """A line split over frames and chunks comes out whole; a last partial line too."""
    data = _frame(1, b"hel") + _frame(2, b"oops\n") + _frame(1, b"lo\r\nwor") + _frame(1, b"ld")
    chunks = iter([data[:5], data[5:20], data[20:]])
    assert list(stream_lines(chunks, tty=False)) == ["oops", "hello", "world"]
    assert list(stream_lines(iter([b"a\nb", b"c\n"]), tty=True)) == ["a", "bc"]


def test_event_objects_split_on_newlines_and_skip_junk() -> None:
    """Newline-delimited JSON objects come out one by one; non-objects and bad lines are skipped."""
    chunks = iter([b'{"a": 1}\n{"b"', b': 2}\n[1]\nnot json\n\n{"c": 3}\n'])
    assert list(json_objects(chunks)) == [{"a": 1}, {"b": 2}, {"c": 3}]


def _listed(*containers: tuple[str, str]) -> bytes:
    body = json.dumps(
        [
            {
                "Id": cid,
                "Names": [f"/{name}"],
                "Labels": {"dev.envd.project": "p"},
                "State": "running",
                "Status": "Up 3 minutes",
            }
            for cid, name in containers
        ]
    ).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_a_container_list_is_parsed_again_unless_its_bytes_repeat(socket_dir: Path) -> None:
    """The same answer again reuses the last parse (issue 15: status at 500 services);
    any other answer, or the same bytes for another project, is parsed afresh."""
    sock = socket_dir / "docker.sock"
    both, one = _listed(("a1", "p-a-1"), ("b1", "p-b-1")), _listed(("a1", "p-a-1"))
    _serve(sock, _answers(VERSION, both, both, one, one, one))
    eng = DockerEngine(host=f"unix://{sock}", timeout=5)
    first = eng.list_containers("p")
    first.clear()  # a caller's own list: the next answer does not share it
    again = eng.list_containers("p")
    assert [c.name for c in again] == ["p-a-1", "p-b-1"]
    gone = eng.list_containers("p")
    assert [c.name for c in gone] == ["p-a-1"]
    assert gone[0] is not again[0]
    assert eng.list_containers("p")[0] is gone[0]
    other = eng.list_containers("q")
    assert [c.name for c in other] == ["p-a-1"] and other[0] is not gone[0]
