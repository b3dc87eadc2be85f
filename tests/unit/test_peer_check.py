"""The daemon client sends nothing to a socket another user serves."""

from __future__ import annotations

import os
import select
import socket
import time
from pathlib import Path

import pytest

from envd.daemon.client import DaemonClient, ForeignDaemon

NOBODY = 65534


def _serve_as_nobody(path: Path, report: int, connections: int) -> None:
    """In a forked child: listen on ``path`` as uid nobody, take ``connections``
    connections, write how many bytes arrived on them."""
    received = 0
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        sock.listen(connections)  # the peer credentials are those at listen()
        os.write(report, b"R")
        sock.settimeout(10)
        # Listening until every expected client has come: a socket closed after
        # the first would refuse the second, which is not what is under test.
        for _ in range(connections):
            conn, _ = sock.accept()
            conn.settimeout(10)
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
            conn.close()
    finally:
        os.write(report, f"{received}\n".encode())
        os._exit(0)


def test_the_client_refuses_another_users_daemon(tmp_path: Path) -> None:
    """A fake daemon running as another user gets no byte of the request; the client says why."""
    if os.geteuid() != 0:
        pytest.skip("needs root to serve a socket as another user")
    path = tmp_path / "daemon.sock"
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        _serve_as_nobody(path, write_end, connections=2)
    os.close(write_end)
    try:
        assert os.read(read_end, 1) == b"R"
        client = DaemonClient(path, timeout=3.0)
        with pytest.raises(ForeignDaemon, match=f"uid {NOBODY}") as err:
            client.reload(environ={"AWS_SECRET_ACCESS_KEY": "s3cr3t"})
        assert err.value.exit_code == 2
        with pytest.raises(ForeignDaemon):
            client.alive()
        report = b""
        deadline = time.monotonic() + 10
        while not report.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([read_end], [], [], deadline - time.monotonic())
            if ready:
                report += os.read(read_end, 64)
        assert report == b"0\n"
    finally:
        os.close(read_end)
        os.waitpid(child, 0)


def test_the_client_talks_to_its_own_user(tmp_path: Path) -> None:
    """A socket served by this very user passes the check."""
    path = tmp_path / "daemon.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        client_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client_sock.connect(str(path))
        from envd.daemon.client import _check_peer

        _check_peer(client_sock, str(path))
        client_sock.close()
    finally:
        server.close()
