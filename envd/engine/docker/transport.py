"""The HTTP/1.1 client envd talks to the Docker engine with, and its stream framings.

``DockerEngine`` makes its JSON API calls through this client rather than the
Docker SDK or ``http.client``: importing those costs more than a no-op
``envd up`` may take in total, and the engine's answers are simple enough
(a length, chunks, or a body that runs until the engine closes the
connection). It knows HTTP and sockets only; what the calls mean, and which
error of ``envd.values.errors`` a failure becomes, is ``envd.engine.docker.client``'s business.

The framings: log and exec output arrives raw (TTY) or multiplexed in
8-byte-header frames, and event streams as newline-delimited JSON.
"""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from envd.spec import engine_host
from envd.spec.engine_host import EngineHost

if TYPE_CHECKING:
    import subprocess

Json = Any  # a decoded JSON value from the engine


class ProtocolError(Exception):
    """The engine's answer is not HTTP as we know it."""


class StaleConnection(Exception):
    """A kept-alive connection the engine had closed; safe to retry once."""


class Response:
    """Status and body of a finished request."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}

    def json(self) -> Json:
        return json.loads(self.body) if self.body else None


class Connection:
    """A minimal HTTP/1.1 client connection with keep-alive.

    ``http.client`` would do, but importing it (with ``email`` and ``ssl``)
    costs about 17 ms, a tenth of a no-op ``envd up``. The engine's answers
    are simple: a length, chunks, or a body that runs until the engine
    closes the connection (hijacked exec streams).
    """

    def __init__(self, open_socket: Callable[[float | None], socket.socket]) -> None:
        self._open = open_socket
        self.pid = os.getpid()
        self.sock: socket.socket | None = None
        self._rfile: io.BufferedReader | None = None

    def close(self) -> None:
        if self._rfile is not None:
            self._rfile.close()
            self._rfile = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _readline(self) -> bytes:
        assert self._rfile is not None
        return self._rfile.readline(65537)

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
    ) -> tuple[int, dict[str, str]]:
        """Send a request, read the status line and headers of the answer."""
        reused = self.sock is not None
        if self.sock is None:
            self.sock = self._open(timeout)
            self._rfile = self.sock.makefile("rb")
        else:
            self.sock.settimeout(timeout)
        lines = [f"{method} {url} HTTP/1.1", "Host: docker"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if body and len(body) < 65536:
                self.sock.sendall(head + body)
            else:
                self.sock.sendall(head)
                if body:
                    self.sock.sendall(body)
            status_line = self._readline()
        except (BrokenPipeError, ConnectionResetError) as exc:
            if reused:
                raise StaleConnection from exc
            raise
        if not status_line:
            if reused:
                raise StaleConnection
            raise ProtocolError("it closed the connection without answering")
        while True:
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                raise ProtocolError(f"it gave an unexpected answer {status_line[:60]!r}")
            status = int(parts[1])
            hdrs: dict[str, str] = {}
            while True:
                line = self._readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                key, _, value = line.decode("latin-1").partition(":")
                hdrs[key.strip().lower()] = value.strip()
            if not 100 <= status < 200 or status == 101:
                return status, hdrs
            status_line = self._readline()  # skip an interim 1xx answer

    def body_chunks(self, method: str, status: int, headers: dict[str, str]) -> Iterator[bytes]:
        """The body, piece by piece as it arrives; closes the connection if it must."""
        rfile = self._rfile
        assert rfile is not None
        keep = headers.get("connection", "").lower() != "close"
        try:
            if method == "HEAD" or status in (204, 304):
                pass
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                while True:
                    size_line = self._readline()
                    if not size_line:
                        raise ProtocolError("it closed the connection mid-answer")
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self._readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    data = rfile.read(size)
                    if len(data) < size:
                        raise ProtocolError("it closed the connection mid-answer")
                    self._readline()
                    yield data
            elif "content-length" in headers:
                remaining = int(headers["content-length"])
                while remaining > 0:
                    data = rfile.read1(min(remaining, 65536))
                    if not data:
                        raise ProtocolError("it closed the connection mid-answer")
                    remaining -= len(data)
                    yield data
            else:  # the body runs until the engine closes the connection
                keep = False
                while True:
                    data = rfile.read1(65536)
                    if not data:
                        break
                    yield data
        except BaseException:
            keep = False
            raise
        finally:
            if not keep:
                self.close()


def get_once(
    open_socket: Callable[[float | None], socket.socket], url: str, timeout: float | None
) -> int:
    """The status of one GET on a connection of its own, closed after it.

    An engine shutting down closes only its listener and still answers on
    kept-alive connections until it exits: a fresh connection tells the truth.
    """
    conn = Connection(open_socket)
    try:
        status, headers = conn.request("GET", url, {}, None, timeout)
        b"".join(conn.body_chunks("GET", status, headers))
        return status
    finally:
        conn.close()


class _CommandSocket(socket.socket):
    """One end of a socket pair whose other end is a helper command's stdin and stdout.

    ``ssh://`` engines: the Docker CLI runs ``ssh … docker system dial-stdio``
    and speaks HTTP over its pipes; a socket pair gives the connection code a
    real socket either way. Closing it ends (and reaps) the command.
    """

    proc: subprocess.Popen[bytes] | None = None

    def close(self) -> None:
        super().close()
        proc, self.proc = self.proc, None
        if proc is not None:
            import subprocess

            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def command_socket(argv: list[str]) -> socket.socket:
    """A socket speaking to ``argv``'s stdin/stdout (raises OSError if it cannot start)."""
    import subprocess  # lazy: only ssh:// engines need it

    ours, theirs = socket.socketpair()
    try:
        fd = theirs.fileno()
        proc = subprocess.Popen(argv, stdin=fd, stdout=fd, start_new_session=True)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    sock = _CommandSocket(ours.family, ours.type, fileno=ours.detach())
    sock.proc = proc
    return sock


class Endpoint:
    """Where the engine listens, from an ``EngineHost``, and how to connect there.

    ``unix://`` (or a bare path), ``tcp://``, ``http://``, ``https://`` and
    ``ssh://`` (through ``docker system dial-stdio`` on the remote host).
    """

    def __init__(self, host: str | EngineHost) -> None:
        self.target = host if isinstance(host, EngineHost) else engine_host.explicit(host)
        url = urlsplit(self.target.host)
        self._scheme = url.scheme
        self._unix_path = self.target.unix_path
        self._netloc = url.netloc if url.scheme in ("tcp", "http", "https") else ""
        self._tls = self.target.tls

    def connect(self, timeout: float | None) -> socket.socket:
        """A connected socket to the engine.

        Raises OSError, or ValueError for a scheme it cannot reach; callers
        report either as an unreachable engine.
        """
        if self._unix_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(self._unix_path)
            except BaseException:
                sock.close()
                raise
            return sock
        if self._scheme == "ssh":
            sock = command_socket(engine_host.ssh_command(self.target.host))
            sock.settimeout(timeout)
            return sock
        if not self._netloc:
            raise ValueError(f"the scheme {self._scheme!r} is not supported")
        hostname, _, port = self._netloc.rpartition(":")
        if not hostname:
            hostname, port = port, "2376" if self._tls else "2375"
        sock = socket.create_connection((hostname.strip("[]"), int(port)), timeout=timeout)
        if self._tls:
            try:
                sock = self._wrap_tls(sock, hostname.strip("[]"))
            except BaseException:
                sock.close()
                raise
        return sock

    def _wrap_tls(self, sock: socket.socket, hostname: str) -> socket.socket:
        import ssl  # lazy: only TLS hosts need it

        t = self.target
        ctx = ssl.create_default_context(cafile=t.ca_cert or None)
        if not t.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if t.client_cert and t.client_key:
            ctx.load_cert_chain(t.client_cert, t.client_key)
        return ctx.wrap_socket(sock, server_hostname=hostname)


def failure_reason(exc: BaseException) -> str:
    """Why a request failed, to end a sentence such as "not reachable at …: <reason>"."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    if isinstance(exc, socket.timeout | TimeoutError):
        return "it did not answer in time"
    return str(exc) or type(exc).__name__


def demux(data: bytes) -> bytes:
    """Join the payloads of a multiplexed (non-TTY) stream, stdout and stderr."""
    out = bytearray()
    pos, size = 0, len(data)
    while pos + 8 <= size:
        length = int.from_bytes(data[pos + 4 : pos + 8], "big")
        out += data[pos + 8 : pos + 8 + length]
        pos += 8 + length
    return bytes(out)


def is_multiplexed(data: bytes) -> bool:
    """Whether ``data`` parses, end to end, as frames of the 8-byte-header stream."""
    pos, size = 0, len(data)
    if size == 0:
        return True
    while pos < size:
        if pos + 8 > size or data[pos] not in (0, 1, 2) or data[pos + 1 : pos + 4] != b"\0\0\0":
            return False
        pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "big")
    return pos == size


def stream_lines(chunks: Iterator[bytes], tty: bool) -> Iterator[str]:
    """Lines of a log stream, raw (TTY) or multiplexed, as they complete."""
    pending: dict[int, bytes] = {}
    buf = b""
    try:
        for chunk in chunks:
            if tty:
                frames = [(1, chunk)]
            else:
                buf += chunk
                frames = []
                while len(buf) >= 8:
                    length = int.from_bytes(buf[4:8], "big")
                    if len(buf) < 8 + length:
                        break
                    frames.append((buf[0], buf[8 : 8 + length]))
                    buf = buf[8 + length :]
            for stream, data in frames:
                *complete, pending[stream] = (pending.get(stream, b"") + data).split(b"\n")
                for line in complete:
                    yield line.rstrip(b"\r").decode("utf-8", "replace")
    except (OSError, ProtocolError, ValueError):
        pass
    for rest in pending.values():
        if rest:
            yield rest.decode("utf-8", "replace")


def json_objects(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """Newline-delimited JSON objects from a chunked stream; ends if the stream drops."""
    buf = b""
    try:
        for chunk in chunks:
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(obj, dict):
                        yield obj
    except (OSError, ProtocolError, ValueError):
        return
