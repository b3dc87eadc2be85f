"""What only the real engine adapter does: its HTTP transport, DOCKER_HOST, SDK paths.

The transport tests talk to a stub HTTP server on a unix socket (no Docker
needed); the rest are marked ``docker`` and use the real engine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from envd.engine.docker.client import DockerEngine
from envd.values.errors import EngineError, EngineUnavailable, NotFound
from envd.values.types import BuildRequest, ContainerCreate, SecretFile
from tests.helpers import no_engine, wait_for

TEST_IMAGE = os.environ.get("ENVD_TEST_IMAGE", "envd-local/busybox:latest")

# --- a stub engine: scripted answers on a unix socket --------------------------

Answer = Callable[[bytes], bytes]  # request head → raw HTTP answer


class StubEngine:
    """Serves one scripted answer per request; may close the connection after it."""

    def __init__(self, path: str, answers: list[tuple[Answer, bool]]) -> None:
        self.path = path
        self.answers = answers
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                rfile = conn.makefile("rb")
                while self.answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = rfile.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    body = rfile.read(length) if length else b""
                    self.requests.append(head + body)
                    answer, close = self.answers.pop(0)
                    conn.sendall(answer(head))
                    if close:
                        break
                # The reader holds the socket open too: shut it down for real.
                conn.shutdown(socket.SHUT_RDWR)
                rfile.close()

    def close(self) -> None:
        self.sock.close()


def json_answer(doc: object, status: str = "200 OK") -> Answer:
    body = json.dumps(doc).encode()
    return lambda _: (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def chunked_answer(doc: object) -> Answer:
    body = json.dumps(doc).encode()
    half = len(body) // 2
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:])
    )
    return lambda _: (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )


# The /version answer a DockerEngine reads before its first versioned call.
VERSION: tuple[Answer, bool] = (
    json_answer({"Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12"}),
    False,
)


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[Callable[[list[tuple[Answer, bool]]], StubEngine]]:
    made: list[StubEngine] = []
    # A short path: unix socket paths are limited to about 100 bytes.
    sock_dir = tempfile.mkdtemp(prefix="envd-stub-")

    def make(answers: list[tuple[Answer, bool]]) -> StubEngine:
        s = StubEngine(os.path.join(sock_dir, f"{len(made)}.sock"), answers)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
    shutil.rmtree(sock_dir, ignore_errors=True)


CONTAINER = {
    "Id": "c1",
    "Names": ["/p-web-1"],
    "Labels": {"dev.envd.project": "p"},
    "State": "running",
    "Status": "Up 3 seconds (health: starting)",
    "ImageID": "sha256:i",
    "Ports": [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 49153, "Type": "tcp"}],
}


def test_keep_alive_connection_is_reused(stub: Callable[..., StubEngine]) -> None:
    """Consecutive calls on one thread share one connection to the engine."""
    s = stub([VERSION, (json_answer([]), False), (json_answer([CONTAINER]), False)])
    eng = DockerEngine(host=f"unix://{s.path}")
    assert eng.list_containers("p") == []
    [c] = eng.list_containers("p")
    assert (c.name, c.health, c.ports[0].host_port) == ("p-web-1", "starting", 49153)
    assert s.connections == 1
    assert s.requests[0].startswith(b"GET /version ")
    assert b"/v1.41/containers/json?all=1&filters=" in s.requests[1]


def test_connection_closed_by_the_engine_is_reopened(stub: Callable[..., StubEngine]) -> None:
    """A keep-alive connection the engine closed while idle is reopened transparently."""
    s = stub([VERSION, (json_answer([]), True), (json_answer([CONTAINER]), False)])
    eng = DockerEngine(host=f"unix://{s.path}")
    assert eng.list_containers("p") == []
    assert [c.id for c in eng.list_containers("p")] == ["c1"]
    assert s.connections == 2


def test_chunked_and_until_close_bodies(stub: Callable[..., StubEngine]) -> None:
    """Chunked answers and answers that end when the engine closes are read whole."""
    raw = b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    s = stub(
        [
            VERSION,
            (json_answer({"Id": "e1"}, "201 Created"), False),
            (lambda _: b"HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\n" + raw, True),
            (chunked_answer({"ExitCode": 7}), False),
        ]
    )
    eng = DockerEngine(host=f"unix://{s.path}")
    assert eng.exec_run("c1", ["x"]) == (7, b"hello\nerr\n")


def test_http_errors_map_to_the_error_tree(stub: Callable[..., StubEngine]) -> None:
    """404 → NotFound, 409 → Conflict, others → EngineError with the engine's message."""
    from envd.values.errors import Conflict

    s = stub(
        [
            VERSION,
            (json_answer({"message": "No such container: x"}, "404 Not Found"), False),
            (json_answer({"message": "name in use"}, "409 Conflict"), False),
            (json_answer({"message": "port is already allocated"}, "500 Error"), False),
            (lambda _: b"HTTP/1.1 304 Not Modified\r\n\r\n", False),
        ]
    )
    eng = DockerEngine(host=f"unix://{s.path}")
    with pytest.raises(NotFound, match="No such container: x"):
        eng.start_container("x")
    with pytest.raises(Conflict, match="name in use"):
        eng.rename_container("x", "y")
    with pytest.raises(EngineError, match="port is already allocated") as info:
        eng.start_container("x")
    assert info.value.status == 500
    eng.stop_container("x", 1)  # 304: already stopped is not an error


def test_docker_host_is_honoured_and_unreachable_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DOCKER_HOST picks the socket; a missing one raises EngineUnavailable naming it."""
    missing = f"unix://{tmp_path}/nothing-here.sock"
    monkeypatch.setenv("DOCKER_HOST", missing)
    eng = DockerEngine()
    with pytest.raises(EngineUnavailable) as info:
        eng.ping()
    assert str(info.value) == (
        f"the Docker engine is not reachable at {missing}: no such file or directory"
    )
    assert info.value.exit_code == 3


def test_refused_connection_is_engine_unavailable(tmp_path: Path) -> None:
    """A socket file nobody listens on raises EngineUnavailable (connection refused)."""
    path = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    with pytest.raises(EngineUnavailable, match="connection refused"):
        DockerEngine(host=f"unix://{path}").list_volumes("p")


# --- the real engine ----------------------------------------------------------


@pytest.fixture
def engine() -> DockerEngine:
    eng = DockerEngine()
    try:
        eng.ping()
    except EngineUnavailable as exc:
        no_engine(str(exc))
    if eng.inspect_image(TEST_IMAGE) is None:
        no_engine(f"{TEST_IMAGE} is not built (the contract suite builds it)")
    return eng


@pytest.fixture
def project(engine: DockerEngine) -> Iterator[str]:
    name = f"it-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        for c in engine.list_containers(name):
            engine.remove_container(c.id, volumes=True)


def exited(engine: DockerEngine, cid: str) -> Callable[[], bool]:
    return lambda: engine.container_state(cid).status == "exited"


@pytest.mark.docker
@pytest.mark.parametrize("read_only", [False, True], ids=["rw", "read-only"])
def test_secret_value_never_in_inspect(engine: DockerEngine, project: str, read_only: bool) -> None:
    """A secret's value appears nowhere in the container's inspect output."""
    value = f"s3cr3t-{uuid.uuid4().hex}"
    cid = engine.create_container(
        ContainerCreate(
            name=f"{project}-sec",
            image=TEST_IMAGE,
            labels={"dev.envd.project": project},
            command=("sleep", "3600"),
            read_only=read_only,
            secrets=(SecretFile("/run/secrets/token", value=value.encode()),),
        )
    )
    inspect = subprocess.run(
        ["docker", "container", "inspect", cid], capture_output=True, text=True, check=True
    )
    assert value not in inspect.stdout
    engine.start_container(cid)
    assert engine.exec_run(cid, ["cat", "/run/secrets/token"]) == (0, value.encode())


@pytest.mark.docker
def test_stop_waits_longer_than_the_read_timeout(engine: DockerEngine, project: str) -> None:
    """stop_container outlasts the grace period even when it exceeds the HTTP timeout."""
    slow = DockerEngine(timeout=0.5)
    cid = slow.create_container(
        ContainerCreate(
            name=f"{project}-stubborn",
            image=TEST_IMAGE,
            labels={"dev.envd.project": project},
            command=("sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"),
            init=False,
        )
    )
    slow.start_container(cid)
    started = time.monotonic()
    slow.stop_container(cid, timeout=2)
    assert time.monotonic() - started >= 1.5
    assert slow.container_state(cid).exit_code == 137


@pytest.mark.docker
def test_parallel_calls_use_one_connection_per_thread(engine: DockerEngine, project: str) -> None:
    """Calls from eight threads at once all succeed (apply's thread pool)."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                engine.list_containers(project)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.docker
def test_build_honours_dockerignore_and_reports_errors(engine: DockerEngine) -> None:
    """build_image leaves .dockerignore'd files out; a failing step raises EngineError."""
    tag = f"envd-test/it-{uuid.uuid4().hex[:10]}:latest"
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "kept.txt").write_text("kept")
        Path(ctx, "secret.env").write_text("nope")
        Path(ctx, ".dockerignore").write_text("secret.env\n")
        Path(ctx, "Dockerfile").write_text(f"FROM {TEST_IMAGE}\nCOPY . /ctx\n")
        lines: list[str] = []
        try:
            img = engine.build_image(BuildRequest(context=ctx, tag=tag), progress=lines.append)
            assert any("COPY" in line for line in lines)
            listing = subprocess.run(
                ["docker", "run", "--rm", img.id, "ls", "/ctx"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            assert "kept.txt" in listing and "secret.env" not in listing
        finally:
            subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)
        Path(ctx, "Dockerfile").write_text(f"FROM {TEST_IMAGE}\nRUN exit 9\n")
        before = _containers_running_exit_9()
        with pytest.raises(EngineError, match=r"exit 9|returned a non-zero code: 9"):
            engine.build_image(BuildRequest(context=ctx, tag=tag))
        # The failed step's container is removed, not left behind.
        assert _containers_running_exit_9() == before


def _containers_running_exit_9() -> set[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc", "--filter", "status=exited"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = set()
    for cid in out:
        cmd = subprocess.run(
            ["docker", "inspect", "--format", "{{json .Config.Cmd}}", cid],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if "exit 9" in cmd:
            found.add(cid)
    return found


@pytest.mark.docker
def test_pull_failure_carries_the_registry_message(engine: DockerEngine) -> None:
    """A pull from an unreachable registry raises EngineError with the engine's reason."""
    with pytest.raises(EngineError) as info:
        engine.pull_image("127.0.0.1:1/envd/nothing:latest")
    assert "127.0.0.1:1" in str(info.value)
    assert not isinstance(info.value, EngineUnavailable)


@pytest.mark.docker
def test_every_create_field_reaches_the_engine(engine: DockerEngine, project: str) -> None:
    """Each ContainerCreate field is translated into the engine's config as intended."""
    from envd.values.types import Healthcheck, Mount, NetworkAttachment, PortBinding

    net_a, net_b, vol = f"{project}-a", f"{project}-b", f"{project}-v"
    labels = {"dev.envd.project": project}
    engine.create_network(net_a, labels)
    engine.create_network(net_b, labels)
    engine.create_volume(vol, labels)
    try:
        cid = engine.create_container(
            ContainerCreate(
                name=f"{project}-all",
                image=TEST_IMAGE,
                labels={**labels, "dev.envd.service": "all"},
                command=("-c", "sleep 3600"),
                entrypoint=("sh",),
                working_dir="/bin",
                user="1000:1000",
                hostname="allhost",
                env=(("A", "1"), ("B", "x=y")),
                ports=(
                    PortBinding(80, host_ip="127.0.0.1"),
                    PortBinding(53, "udp", "127.0.0.1", None),
                ),
                mounts=(
                    Mount("volume", "/data", vol, read_only=True),
                    Mount("bind", "/host", "/etc", read_only=True),
                ),
                tmpfs=(("/scratch", "size=1m"),),
                networks=(
                    NetworkAttachment(net_a, ("alpha",)),
                    NetworkAttachment(net_b, ("beta",)),
                ),
                healthcheck=Healthcheck(("CMD", "true"), 1.5, 2.0, 4, 0.25),
                restart="on-failure",
                init=True,
                stop_signal="SIGINT",
                stop_timeout=7,
                read_only=True,
                cap_add=("NET_ADMIN",),
                cap_drop=("MKNOD",),
                tty=True,
                stdin_open=True,
            )
        )
        out = subprocess.run(
            ["docker", "container", "inspect", cid], capture_output=True, text=True, check=True
        ).stdout
        doc = json.loads(out)[0]
        cfg, host = doc["Config"], doc["HostConfig"]
        assert (cfg["Entrypoint"], cfg["Cmd"]) == (["sh"], ["-c", "sleep 3600"])
        assert (cfg["WorkingDir"], cfg["User"], cfg["Hostname"]) == ("/bin", "1000:1000", "allhost")
        assert {"A=1", "B=x=y"} <= set(cfg["Env"])
        assert cfg["Labels"]["dev.envd.service"] == "all"
        assert set(cfg["ExposedPorts"]) == {"80/tcp", "53/udp"}
        # Podman's inspect (docs/compatibility.md, Podman) shows the port it chose, has no
        # HostConfig.Mounts (the top-level Mounts has them), adds its own tmpfs on /run, /tmp
        # and /var/tmp of a read-only container, gives the stop signal as a number and
        # NetworkMode "bridge" for a user network.
        podman = engine.engine_info().is_podman
        [binding] = host["PortBindings"]["80/tcp"]
        assert binding["HostIp"] == "127.0.0.1"
        assert binding["HostPort"].isdigit() if podman else binding["HostPort"] == ""
        if podman:
            mounts = {m["Destination"]: m for m in doc["Mounts"]}
            assert mounts["/data"]["Name"] == vol and mounts["/data"]["RW"] is False
            assert mounts["/host"]["Type"] == "bind" and mounts["/host"]["Source"] == "/etc"
            assert mounts["/host"]["RW"] is False
            assert host["Tmpfs"]["/scratch"].split(",")[0] == "size=1m"
            assert set(host["Tmpfs"]) == {"/scratch", "/run", "/tmp", "/var/tmp"}
        else:
            mounts = {m["Target"]: m for m in host["Mounts"]}
            assert mounts["/data"]["Source"] == vol and mounts["/data"]["ReadOnly"] is True
            assert mounts["/host"]["Type"] == "bind" and mounts["/host"]["Source"] == "/etc"
            assert host["Tmpfs"] == {"/scratch": "size=1m"}
        hc = cfg["Healthcheck"]
        assert hc == {
            "Test": ["CMD", "true"],
            "Interval": 1_500_000_000,
            "Timeout": 2_000_000_000,
            "StartPeriod": 250_000_000,
            "Retries": 4,
        }
        assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 0}
        assert host["Init"] is True and host["ReadonlyRootfs"] is True
        assert (cfg["StopSignal"], cfg["StopTimeout"]) == ("2" if podman else "SIGINT", 7)
        assert (host["CapAdd"], host["CapDrop"]) == (["NET_ADMIN"], ["MKNOD"])
        assert (cfg["Tty"], cfg["OpenStdin"]) == (True, True)
        assert host["NetworkMode"] == ("bridge" if podman else net_a)
        nets = doc["NetworkSettings"]["Networks"]
        assert set(nets) == {net_a, net_b}
        assert "alpha" in nets[net_a]["Aliases"] and "beta" in nets[net_b]["Aliases"]
        engine.start_container(cid)
        wait_for(
            lambda: engine.container_state(cid).status == "running", timeout=20.0, message="running"
        )
        # A TTY container's logs are raw, not multiplexed.
        assert engine.exec_run(cid, ["id", "-u"]) == (0, b"1000\n")
    finally:
        for c in engine.list_containers(project):
            engine.remove_container(c.id, volumes=True)
        engine.remove_network(net_a)
        engine.remove_network(net_b)
        engine.remove_volume(vol)


@pytest.mark.docker
def test_tty_logs_are_read_raw(engine: DockerEngine, project: str) -> None:
    """Logs of a TTY container (not multiplexed) come back as lines, listed and streamed."""
    cid = engine.create_container(
        ContainerCreate(
            name=f"{project}-tty",
            image=TEST_IMAGE,
            labels={"dev.envd.project": project},
            command=("sh", "-c", "echo one; echo two"),
            tty=True,
        )
    )
    engine.start_container(cid)
    wait_for(exited(engine, cid), timeout=20.0, message="exit")
    assert engine.container_logs(cid) == ["one", "two"]
    assert list(engine.stream_logs(cid, follow=True)) == ["one", "two"]


@pytest.mark.docker
def test_empty_entrypoint_clears_the_images(engine: DockerEngine, project: str) -> None:
    """entrypoint=() clears the image's entrypoint; None keeps the image default."""
    tag = f"envd-test/{project}:ep"
    with tempfile.TemporaryDirectory() as ctx:
        Path(ctx, "Dockerfile").write_text(
            f'FROM {TEST_IMAGE}\nENTRYPOINT ["echo", "from-image"]\nCMD ["default"]\n'
        )
        engine.build_image(BuildRequest(context=ctx, tag=tag))
    try:
        outputs = []
        for i, (entrypoint, command) in enumerate(
            [(None, None), ((), ("echo", "cleared")), (None, ("given",))]
        ):
            cid = engine.create_container(
                ContainerCreate(
                    name=f"{project}-ep{i}",
                    image=tag,
                    labels={"dev.envd.project": project},
                    entrypoint=entrypoint,
                    command=command,
                )
            )
            engine.start_container(cid)
            wait_for(exited(engine, cid), timeout=20.0, message="exit")
            outputs.append(engine.container_logs(cid))
        assert outputs == [["from-image default"], ["cleared"], ["from-image given"]]
    finally:
        for c in engine.list_containers(project):
            engine.remove_container(c.id)
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)
