"""Engines reached over TLS and over ssh, with real handshakes and a real pipe.

TLS: certificates made with ``openssl`` for a small HTTPS stand-in engine on
loopback that demands a client certificate, reached through a Docker context
holding the TLS material. ssh: a stand-in ``ssh`` on PATH that records its
arguments and speaks HTTP on its stdin/stdout, as ``docker system dial-stdio`` does.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from envd.engine.docker.client import DockerEngine
from envd.spec.engine_host import resolve
from envd.values.errors import EngineUnavailable

VERSION = {"Version": "20.10.24", "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64"}


def _http(body: object) -> bytes:
    data = json.dumps(body).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(data),
        data,
    )


def _answer(path: bytes) -> bytes:
    if path.startswith(b"/_ping"):
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"
    if path.startswith(b"/version"):
        return _http(VERSION)
    return _http([])  # every list is empty


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as ``docker`` makes them."""
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=envd-test-ca",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn, ext in (
        ("server", "127.0.0.1", ["-extfile", "san.cnf"]),
        ("client", "client", []),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}-key.pem",
                 "-out", f"{name}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-days", "1", "-out", f"{name}.pem", *ext, cwd=d)  # fmt: skip
    return d


@pytest.fixture
def tls_engine(certs: Path) -> Iterator[int]:
    """An HTTPS stand-in engine on a loopback port that demands a client certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs / "ca.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(str(certs / "server.pem"), str(certs / "server-key.pem"))
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                raw, _ = server.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(raw, server_side=True) as conn:
                    rfile = conn.makefile("rb")
                    while True:
                        line = rfile.readline()
                        if not line:
                            break
                        while rfile.readline() not in (b"\r\n", b""):
                            pass
                        conn.sendall(_answer(line.split()[1]))
            except (OSError, ssl.SSLError):
                continue

    threading.Thread(target=serve, daemon=True).start()
    yield port
    server.close()


def _context(config: Path, name: str, host: str, certs: Path | None) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    doc = {"Name": name, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}
    (meta / "meta.json").write_text(json.dumps(doc))
    if certs is not None:
        tls = config / "contexts" / "tls" / digest / "docker"
        tls.mkdir(parents=True)
        for src, dst in (
            ("ca.pem", "ca.pem"),
            ("client.pem", "cert.pem"),
            ("client-key.pem", "key.pem"),
        ):
            (tls / dst).write_bytes((certs / src).read_bytes())


def test_a_tls_context_reaches_the_engine_with_its_certificates(
    certs: Path, tls_engine: int, tmp_path: Path
) -> None:
    """A context with ca/cert/key connects over verified TLS with a client certificate."""
    _context(tmp_path, "secure", f"tcp://127.0.0.1:{tls_engine}", certs)
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "secure"}))
    eng = DockerEngine(resolve({"DOCKER_CONFIG": str(tmp_path)}))
    eng.ping()
    assert eng.list_containers("p") == []
    desc = eng.describe()
    assert (desc["context"], desc["name"], desc["api_version"]) == ("secure", "Docker", "1.41")


def test_tls_without_the_client_certificate_or_the_ca_is_unreachable(
    certs: Path, tls_engine: int, tmp_path: Path
) -> None:
    """Without the context's certificates the handshake fails: EngineUnavailable, not a crash."""
    _context(tmp_path, "bare", f"tcp://127.0.0.1:{tls_engine}", None)
    env = {"DOCKER_HOST": f"tcp://127.0.0.1:{tls_engine}", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(tmp_path)}  # fmt: skip
    with pytest.raises(EngineUnavailable, match="not reachable"):
        DockerEngine(resolve(env), timeout=5).ping()


def test_an_ssh_host_speaks_http_over_dial_stdio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh:// runs `ssh … -- host docker system dial-stdio` and talks HTTP over its pipes."""
    args_file = tmp_path / "args"
    fake = tmp_path / "bin" / "ssh"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(args_file)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"VERSION = {json.dumps(VERSION)!r}.encode()\n"
        "inp, out = sys.stdin.buffer, sys.stdout.buffer\n"
        "while True:\n"
        "    line = inp.readline()\n"
        "    if not line:\n"
        "        break\n"
        "    while inp.readline() not in (b'\\r\\n', b''):\n"
        "        pass\n"
        "    path = line.split()[1]\n"
        "    body = VERSION if path.startswith(b'/version') else (b'OK' if path.startswith(b'/_ping') else b'[]')\n"
        "    out.write(b'HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body) + body)\n"
        "    out.flush()\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    eng = DockerEngine(resolve({"DOCKER_HOST": "ssh://deploy@build.example:2222"}), timeout=10)
    eng.ping()
    assert eng.list_volumes("p") == []
    assert eng.describe()["endpoint"] == "ssh://deploy@build.example:2222"
    eng.close()
    calls = [json.loads(line) for line in args_file.read_text().splitlines()]
    assert calls[0][-6:] == ["2222", "--", "build.example", "docker", "system", "dial-stdio"]
    assert calls[0][calls[0].index("-l") : calls[0].index("-l") + 2] == ["-l", "deploy"]
