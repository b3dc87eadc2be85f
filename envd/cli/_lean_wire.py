"""HTTP/1.1 GETs over a unix socket with the standard library alone, for the lean entry.

``envd.cli._lean_up`` and ``envd.cli._lean_status`` answer before click, the
engine adapter or ``http.client`` are imported. They ask a few GETs of the
Docker engine's socket or of the project daemon's, and anything unexpected
(a refused connection, a short or malformed answer, a status other than the
one wanted) raises ``WireError``: the caller then takes the full path, which
words the problem. It speaks through ``_socket`` (``socket`` itself loads
``selectors``, ``enum`` and ``array``, ~2.5 ms of the lean path's budget).
"""

from __future__ import annotations

import _socket

# Far above any answer the lean entry asks for (a list of 500 containers is
# ~1.5 MB): a bigger one is not worth the lean path.
MAX_ANSWER = 64 * 1024 * 1024


class WireError(Exception):
    """The lean entry cannot be sure of this answer: take the full path."""


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def connect(path: str, timeout: float, *, peer_uid: int | None = None) -> _socket.socket:
    """A connected unix socket; ``peer_uid``: refuse a server run by another uid
    (checked before one byte is sent, as ``envd.daemon.client`` does)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        if peer_uid is not None:
            import _struct

            size = _struct.calcsize("3i")
            raw = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, size)
            _pid, uid, _gid = _struct.unpack("3i", raw)
            if uid != peer_uid:
                raise WireError(f"{path} is served by uid {uid}")
    except BaseException:
        sock.close()
        raise
    return sock


def get(path: str, url: str, timeout: float = 10.0, *, peer_uid: int | None = None) -> Answer:
    """``GET url`` on the unix socket at ``path``, the whole answer read."""
    return get_all(path, [url], timeout, peer_uid=peer_uid)[0]


def get_all(
    path: str, urls: list[str], timeout: float = 10.0, *, peer_uid: int | None = None
) -> list[Answer]:
    """``GET`` each of ``urls`` on the unix socket at ``path``, the answers in order."""
    with Asked(path, urls, timeout, peer_uid=peer_uid) as asked:
        return asked.answers()


class Asked:
    """``GET`` requests sent, their answers not read yet (a context manager that
    closes the connections).

    Every request is sent (one connection each) before the first answer is
    read, so the server works on them side by side, and while the caller does
    its own work: the wait is the slowest answer's, not their sum.
    """

    def __init__(
        self, path: str, urls: list[str], timeout: float = 10.0, *, peer_uid: int | None = None
    ) -> None:
        self.socks: list[_socket.socket] = []
        try:
            for url in urls:
                sock = connect(path, timeout, peer_uid=peer_uid)
                self.socks.append(sock)
                request = f"GET {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                sock.sendall(request.encode("ascii"))
        except OSError as exc:
            self.close()
            raise WireError(str(exc)) from None
        except BaseException:
            self.close()
            raise

    def answers(self) -> list[Answer]:
        """Every answer, read to its end, in the order asked."""
        try:
            return [parse(_read(sock)) for sock in self.socks]
        except OSError as exc:
            raise WireError(str(exc)) from None

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks = []

    def __enter__(self) -> Asked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(sock: _socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(262144)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ANSWER:
            raise WireError("answer too large")
    return b"".join(chunks)


def parse(raw: bytes) -> Answer:
    """An HTTP/1.1 answer read to its end (``Connection: close``)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise WireError("no end of headers")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise WireError("not an HTTP answer")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise WireError("malformed header")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    elif "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit() or int(length) != len(body):
            raise WireError("short answer")
    return Answer(int(parts[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise WireError("truncated chunk")
        size_text = data[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise WireError("malformed chunk") from None
        if size == 0:
            return b"".join(out)
        start = end + 2
        if start + size + 2 > len(data) or data[start + size : start + size + 2] != b"\r\n":
            raise WireError("truncated chunk")
        out.append(data[start : start + size])
        pos = start + size + 2
