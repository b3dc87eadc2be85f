"""The envd image (Dockerfile) on the real engine: built offline, run as CI runs it.

``scripts/build-envd-image.sh`` builds ``envd-local/envd:dev`` on the local
Debian test image, with no network inside the build, and does nothing when its
inputs did not change (the image is kept between runs). The project is
mounted at the same path as on the host (``-v DIR:DIR -w DIR``), which is what
docs/container.md recommends, so bind-mount sources in the spec resolve on the
host as well. Every container a test starts carries ``dev.envd.test`` and is
removed afterwards; the project's own objects go with the ``project_name``
fixture (the envd container must not carry ``dev.envd.project``: envd would
remove it as an orphan of the project).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BUSYBOX, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.usefixtures("busybox_image")]

REPO = Path(__file__).resolve().parents[2]
IMAGE = "envd-local/envd:dev"
SOCKET = "/var/run/docker.sock"
LABEL = "dev.envd.test=envd-image"
ENVD_UID = 10001


def docker(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def show(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


@pytest.fixture(scope="module")
def envd_image(debian_image: str) -> str:
    """``envd-local/envd:dev``, (re)built by the script only when its inputs changed."""
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-envd-image.sh"), "--base", debian_image],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": sys.executable},
        check=False,
    )
    assert proc.returncode == 0, show(proc)
    return IMAGE


def run_args(project: Path, *extra: str) -> list[str]:
    """``docker run`` options for envd on ``project``: the socket, the project at its own path."""
    return [
        "--label", LABEL,
        "-v", f"{SOCKET}:{SOCKET}",
        "-v", f"{project}:{project}",
        "-w", str(project),
        *extra,
    ]  # fmt: skip


@pytest.fixture
def envd_container(envd_image: str, project_dir: Path) -> Iterator[Callable[..., str]]:
    """Start ``IMAGE ARGS`` detached on the project; stop it (gracefully) and remove it after."""
    names: list[str] = []

    def start(*args: str, docker_opts: tuple[str, ...] = ()) -> str:
        name = f"envd-image-test-{uuid.uuid4().hex[:10]}"
        names.append(name)
        proc = docker(
            "run", "-d", "--name", name, *run_args(project_dir, *docker_opts), envd_image, *args
        )
        assert proc.returncode == 0, show(proc)
        return name

    yield start
    for name in names:
        docker("stop", "-t", "10", name)
        docker("rm", "-f", name)
    # The daemon's pid in the container's namespace means nothing here.
    (project_dir / ".envd" / "daemon.pid").unlink(missing_ok=True)


def service_containers(client: Any, project: str) -> list[dict[str, Any]]:
    """Inspect documents of the project's containers (one removed meanwhile is left out)."""
    import docker.errors

    out = []
    for c in client.api.containers(all=True, filters={"label": f"dev.envd.project={project}"}):
        try:
            out.append(client.api.inspect_container(c["Id"]))
        except docker.errors.NotFound:
            pass
    return out


def running_services(client: Any, project: str) -> set[str]:
    return {
        c["Config"]["Labels"]["dev.envd.service"]
        for c in service_containers(client, project)
        if c["State"]["Running"]
    }


def processes(name: str) -> list[dict[str, str]]:
    """The container's processes (``ps`` of the image): pid, ppid, uid, stat, args."""
    proc = docker("exec", name, "ps", "-eo", "pid=,ppid=,uid=,stat=,args=")
    assert proc.returncode == 0, show(proc)
    rows = []
    for line in proc.stdout.splitlines():
        pid, ppid, uid, stat, args = line.split(None, 4)
        rows.append({"pid": pid, "ppid": ppid, "uid": uid, "stat": stat, "args": args})
    return rows


def inspect(name: str) -> dict[str, Any]:
    proc = docker("inspect", name)
    assert proc.returncode == 0, show(proc)
    doc: dict[str, Any] = json.loads(proc.stdout)[0]
    return doc


SERVICE = f"""
[services.web]
image = "{BUSYBOX}"
command = ["sh", "-c", "cat /data/hello; exec sleep 100000"]
volumes = ["./data:/data:ro"]
stop_signal = "SIGKILL"
"""


@pytest.fixture
def project(project_dir: Any) -> Path:
    """A one-service project whose service bind-mounts ``./data`` and prints a file from it."""
    project_dir.write(SERVICE)
    (project_dir / "data").mkdir()
    (project_dir / "data" / "hello").write_text("hello from the host\n")
    path: Path = project_dir
    return path


def test_up_once_through_the_image_converges_the_project(
    envd_image: str, project: Path, project_name: str, docker_client: Any
) -> None:
    """`docker run IMAGE up --once` with the socket and the project at its host path exits 0 with the project up and its bind mount resolved on the host."""
    proc = docker(
        "run", "--rm", *run_args(project), envd_image, "up", "--once", "--timeout", "60",
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, show(proc)
    assert f"Project {project_name} is up" in proc.stderr, show(proc)
    assert running_services(docker_client, project_name) == {"web"}
    (web,) = service_containers(docker_client, project_name)
    logs = docker_client.api.logs(web["Id"]).decode()
    assert logs == "hello from the host\n"


def test_up_once_through_the_image_exits_1_when_a_service_fails(
    envd_image: str, project_dir: Any, project_name: str
) -> None:
    """An unhealthy service makes the container exit 1: envd's exit code passes through its init as PID 1."""
    project_dir.write(
        f"""
        [services.broken]
        image = "{BUSYBOX}"
        command = ["sleep", "100000"]
        stop_signal = "SIGKILL"
        healthcheck = {{ test = ["CMD", "false"], interval = "1s", retries = 1 }}
        """
    )
    proc = docker(
        "run", "--rm", *run_args(project_dir), envd_image, "up", "--once", "--timeout", "60",
        timeout=180,
    )  # fmt: skip
    assert proc.returncode == 1, show(proc)
    assert "broken" in proc.stderr and "Traceback" not in proc.stderr, show(proc)


def test_the_daemon_runs_under_the_init_as_a_non_root_user_and_turns_healthy(
    envd_container: Callable[..., str], project: Path, project_name: str, docker_client: Any
) -> None:
    """As PID 1 envd runs its init with the daemon as its child, as uid 10001 with the socket's group, and the HEALTHCHECK turns healthy once the project is up."""
    name = envd_container("daemon", docker_opts=("--health-interval", "1s"))
    wait_for(lambda: running_services(docker_client, project_name) == {"web"}, timeout=90)
    procs = {p["pid"]: p for p in processes(name)}
    init, daemon = procs["1"], next(p for p in procs.values() if p["ppid"] == "1")
    assert init["args"].endswith("envd daemon"), procs
    assert daemon["args"].endswith("-m envd daemon"), procs
    assert init["uid"] == daemon["uid"] == str(ENVD_UID), procs
    socket_gid = os.stat(SOCKET).st_gid
    status = docker("exec", name, "cat", "/proc/1/status").stdout
    groups = next(line for line in status.splitlines() if line.startswith("Groups:"))
    assert groups.split()[1:] == [str(socket_gid)], status
    assert (project / ".envd").stat().st_uid == ENVD_UID
    wait_for(
        lambda: inspect(name)["State"]["Health"]["Status"] == "healthy",
        timeout=60,
        message=lambda: json.dumps(inspect(name)["State"].get("Health"), indent=1),
    )


def test_zombies_never_accumulate_in_the_daemon_container(
    envd_container: Callable[..., str], project: Path, project_name: str, docker_client: Any
) -> None:
    """Orphans spawned in the container are re-parented to PID 1 and reaped as soon as they exit."""
    name = envd_container("daemon")
    wait_for(lambda: running_services(docker_client, project_name) == {"web"}, timeout=90)
    # Each `(sleep 300 &)` leaves its subshell at once: the sleep is orphaned.
    spawn = docker("exec", name, "sh", "-c", "for i in $(seq 25); do (sleep 300 &); done")
    assert spawn.returncode == 0, show(spawn)

    def orphans() -> list[dict[str, str]]:
        return [p for p in processes(name) if p["args"] in ("sleep 300", "[sleep] <defunct>")]

    adopted = orphans()
    assert len(adopted) == 25 and all(p["ppid"] == "1" for p in adopted), adopted
    killed = docker("exec", name, "kill", *(p["pid"] for p in adopted))
    assert killed.returncode == 0, show(killed)
    wait_for(lambda: not orphans(), timeout=15, message=lambda: repr(processes(name)))
    assert [p for p in processes(name) if p["stat"].startswith("Z")] == []


def test_docker_stop_shuts_the_daemon_down_cleanly_and_the_container_exits_0(
    envd_container: Callable[..., str], project: Path, project_name: str, docker_client: Any
) -> None:
    """`docker stop` reaches the daemon through the init: it finishes, removes its socket, leaves the project running, and the container exits 0 long before the stop timeout."""
    name = envd_container("daemon")
    wait_for(lambda: running_services(docker_client, project_name) == {"web"}, timeout=90)
    wait_for(lambda: (project / ".envd" / "daemon.sock").exists(), timeout=30)
    start = time.monotonic()
    proc = docker("stop", "-t", "30", name)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, show(proc)
    state = inspect(name)["State"]
    assert state["ExitCode"] == 0 and not state["OOMKilled"], state
    assert elapsed < 10.0, f"docker stop took {elapsed:.1f}s (timeout 30s)"
    assert not (project / ".envd" / "daemon.sock").exists()
    assert not (project / ".envd" / "daemon.pid").exists()
    assert running_services(docker_client, project_name) == {"web"}
    logs = docker("logs", name)
    assert "Traceback" not in logs.stdout + logs.stderr, show(logs)


def test_envd_runs_as_the_owner_of_the_project(
    envd_container: Callable[..., str], project: Path, project_name: str, docker_client: Any
) -> None:
    """In a project owned by a non-root user envd runs as that user: it reads their 0600 secret file, and what it writes there stays theirs."""
    owner = 4321
    (project / "envd.toml").write_text(
        SERVICE + 'secrets = ["token"]\n\n[secrets.token]\nfile = "./token.txt"\n'
    )
    (project / "token.txt").write_text("s3cret\n")
    (project / "token.txt").chmod(0o600)
    for path in (project, *project.rglob("*")):
        os.chown(path, owner, owner)
    name = envd_container("daemon")
    wait_for(lambda: running_services(docker_client, project_name) == {"web"}, timeout=90)
    envd = [p for p in processes(name) if "1" in (p["pid"], p["ppid"])]
    assert {p["uid"] for p in envd} == {str(owner)}, envd
    state = project / ".envd"
    assert (state.stat().st_uid, (state / "daemon.log").stat().st_uid) == (owner, owner)
    (web,) = service_containers(docker_client, project_name)
    exec_id = docker_client.api.exec_create(web["Id"], ["cat", "/run/secrets/token"])
    assert docker_client.api.exec_start(exec_id).decode() == "s3cret\n"


def test_envd_down_on_the_host_stops_the_daemon_in_the_container(
    envd_container: Callable[..., str], project: Path, project_name: str, docker_client: Any
) -> None:
    """`envd down` on the host finds the container's daemon through .envd/, stops it (the container exits 0) and removes the project without waiting on the daemon's foreign pid."""
    name = envd_container("daemon")
    wait_for(lambda: (project / ".envd" / "daemon.sock").exists(), timeout=90)
    wait_for(lambda: running_services(docker_client, project_name) == {"web"}, timeout=90)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "envd", "down"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, show(proc)
    assert elapsed < 10.0, f"envd down took {elapsed:.1f}s"
    assert service_containers(docker_client, project_name) == []
    wait_for(lambda: not inspect(name)["State"]["Running"], timeout=30)
    assert inspect(name)["State"]["ExitCode"] == 0
