"""The per-project daemon on the real Docker engine, driven as a user drives it.

Each test gets its own project (``project_name`` / ``project_dir`` fixtures);
the ``daemon`` fixture stops every daemon the test started (``envd down``,
then SIGTERM/SIGKILL by pid) even when the test fails, and the project's
Docker objects are removed by label afterwards. Nothing sleeps for a fixed
time: every wait polls with a deadline.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, describe, envd_env, remove_by_hand, run_envd, wait_for

pytestmark = [pytest.mark.docker]

# The subprocess must import this checkout's envd whatever its working directory.
ENV = {"PYTHONPATH": str(REPO)}

SPEC = """\
[services.web]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = {{ COLOR = "{web}" }}
stop_grace_period = "1s"
watch = [{{ path = "src", action = "sync", target = "/app/src", ignore = ["*.log", "build/"] }}]

[services.worker]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = {{ COLOR = "{worker}" }}
stop_grace_period = "1s"
"""

# A restart = "no" service that exits with code 3 on its own once /quit exists,
# and one that runs until someone stops it.
ONESHOT = """
[services.job]
image = "envd-local/busybox:latest"
command = ["sh", "-c", "while [ ! -f /quit ]; do sleep 0.1; done; exit 3"]
restart = "no"
stop_grace_period = "1s"

[services.batch]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
restart = "no"
stop_grace_period = "1s"
"""


# --------------------------------------------------------------------------- helpers


def spec(web: str = "red", worker: str = "red", extra: str = "") -> str:
    return SPEC.format(web=web, worker=worker) + extra


def write(project_dir: Any, text: str) -> None:
    """Write the spec, creating the synced directory it names."""
    (project_dir / "src").mkdir(exist_ok=True)
    project_dir.write(text)


def envd(
    project_dir: Path, *args: str, timeout: float = 120.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_envd(args, cwd=project_dir, env={**ENV, **(env or {})}, timeout=timeout)


def envd_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "envd", *args]


def pid_alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text.rsplit(")", 1)[-1].split()[0] != "Z"


def daemon_processes(project_dir: Path) -> list[int]:
    """Pids of running ``envd … daemon`` processes for this project directory (from ps)."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    pids = []
    for line in out.splitlines():
        pid, state, args = line.strip().split(None, 2)
        words = args.split()
        if (
            "envd" in args
            and words[-1] == "daemon"
            and str(project_dir) in args
            and not state.startswith("Z")
        ):
            pids.append(int(pid))
    return pids


def terminate(pid: int, timeout: float = 15.0) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)


class Daemons:
    """What a test started, so teardown can stop it all even when the test fails."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self.procs: list[subprocess.Popen[Any]] = []

    def popen(self, *args: str, **kw: Any) -> subprocess.Popen[Any]:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(
            envd_argv(*args), cwd=self.project_dir, env=envd_env(ENV), text=True, **kw
        )
        self.procs.append(proc)
        return proc

    def pid(self) -> int:
        return int((self.project_dir / ".envd" / "daemon.pid").read_text().split()[0])

    def teardown(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                terminate(proc.pid)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        if (self.project_dir / "envd.toml").exists():
            try:
                envd(self.project_dir, "down", timeout=60)
            except AssertionError:
                pass
        for pid in daemon_processes(self.project_dir):
            terminate(pid)


@pytest.fixture
def daemon(project_dir: Path) -> Iterator[Daemons]:
    guard = Daemons(project_dir)
    try:
        yield guard
    finally:
        guard.teardown()


def containers(client: Any, project: str) -> dict[str, Any]:
    """Containers of the project by name (all states)."""
    flt = {"label": f"dev.envd.project={project}"}
    # ignore_removed: a container removed between the list and its inspect is gone, not an error.
    return {c.name: c for c in client.containers.list(all=True, filters=flt, ignore_removed=True)}


def running_id(client: Any, name: str) -> str | None:
    """The id of the container ``name`` if it is running, else None."""
    import docker

    try:
        c = client.containers.get(name)
    except docker.errors.NotFound:
        return None
    return c.id if c.status == "running" else None


def env_of(client: Any, name: str) -> dict[str, str]:
    c = client.containers.get(name)
    return dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])


def status_json(project_dir: Path) -> dict[str, Any]:
    proc = envd(project_dir, "status", "--json", timeout=30)
    assert proc.returncode == 0, describe(proc)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def daemon_status(project_dir: Path) -> dict[str, Any]:
    """The daemon's own status report, straight from its control socket."""
    from envd.daemon.client import DaemonClient

    result: dict[str, Any] = DaemonClient(project_dir / ".envd" / "daemon.sock").status()
    return result


def up(
    project_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = envd(project_dir, "up", *args, timeout=120, env=env)
    assert proc.returncode == 0, describe(proc)
    return proc


def cat_in(client: Any, name: str, path: str) -> str | None:
    """The file's text inside the container, or None when it does not exist."""
    code, out = client.containers.get(name).exec_run(["cat", path])
    return out.decode() if code == 0 else None


def wait_pass_after(project_dir: Path, daemons: Daemons, timeout: float = 15.0) -> None:
    """SIGHUP the daemon and wait until a pass that started after it has finished."""
    before = status_json(project_dir)["daemon"]["generation"]
    os.kill(daemons.pid(), signal.SIGHUP)

    def covered() -> bool:
        d = status_json(project_dir)["daemon"]
        return bool(d["generation"] > before and d["completed"] >= before + 1)

    wait_for(covered, timeout=timeout, interval=0.1, message="a reconcile pass after SIGHUP")


# --------------------------------------------------------------------------- tests


def test_up_starts_one_daemon_with_services_ready(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """`envd up` returns 0 with every service running and exactly one daemon left behind."""
    write(project_dir, spec())
    proc = up(project_dir)
    assert "daemon" in proc.stderr
    cs = containers(docker_client, project_name)
    assert sorted(cs) == [f"{project_name}-web-1", f"{project_name}-worker-1"]
    assert all(c.status == "running" for c in cs.values())
    pid = daemon.pid()
    assert pid_alive(pid)
    assert daemon_processes(project_dir) == [pid]
    st = status_json(project_dir)
    assert st["daemon"]["pid"] == pid
    assert st["daemon"]["last_result"] == "ok"
    assert st["in_sync"] is True

    # A second `up` reuses the daemon instead of starting another one.
    up(project_dir)
    assert daemon.pid() == pid
    assert daemon_processes(project_dir) == [pid]


def test_control_socket_is_private(project_dir: Any, daemon: Daemons) -> None:
    """The control socket is mode 0600 inside a 0700 `.envd` directory."""
    write(project_dir, spec())
    up(project_dir)
    state = project_dir / ".envd"
    sock = state / "daemon.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_concurrent_up_starts_exactly_one_daemon(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """Two `envd up` racing in one project both succeed and leave a single daemon."""
    write(project_dir, spec())
    procs = [daemon.popen("up") for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append((p.returncode, out, err))
    assert [r[0] for r in results] == [0, 0], results
    pid = daemon.pid()
    assert daemon_processes(project_dir) == [pid]
    cs = containers(docker_client, project_name)
    assert sorted(cs) == [f"{project_name}-web-1", f"{project_name}-worker-1"]
    assert all(c.status == "running" for c in cs.values())


def test_spec_edit_recreates_only_the_changed_service(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """Changing one service's env in the spec recreates that container only."""
    write(project_dir, spec())
    up(project_dir)
    web, worker = f"{project_name}-web-1", f"{project_name}-worker-1"
    before = {n: c.id for n, c in containers(docker_client, project_name).items()}
    write(project_dir, spec(web="blue"))

    def web_recreated() -> bool:
        cid = running_id(docker_client, web)
        return bool(cid and cid != before[web] and env_of(docker_client, web)["COLOR"] == "blue")

    wait_for(web_recreated, timeout=15, interval=0.1, message="web recreated with COLOR=blue")
    wait_for(lambda: status_json(project_dir)["in_sync"], timeout=15, interval=0.2)
    assert running_id(docker_client, worker) == before[worker]
    assert env_of(docker_client, worker)["COLOR"] == "red"


def test_removed_container_is_recreated(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """A managed container removed by hand (`docker rm -f`) is recreated within 10 s."""
    write(project_dir, spec())
    up(project_dir)
    name = f"{project_name}-worker-1"
    old = running_id(docker_client, name)
    remove_by_hand(docker_client, name)
    new = wait_for(
        lambda: (cid := running_id(docker_client, name)) and cid != old and cid,
        timeout=10,
        interval=0.1,
        message=f"{name} recreated",
    )
    assert new != old
    assert len([n for n in containers(docker_client, project_name) if "worker" in n]) == 1


def test_restart_no_service_that_exits_is_left_exited(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """The daemon does not fight `restart = "no"`: an exited service stays exited and is reported."""
    write(project_dir, spec(extra=ONESHOT))
    up(project_dir)
    job, batch = f"{project_name}-job-1", f"{project_name}-batch-1"
    job_id, batch_id = running_id(docker_client, job), running_id(docker_client, batch)
    assert job_id and batch_id

    # job exits on its own with code 3; batch is stopped by hand.
    docker_client.containers.get(job).exec_run(["touch", "/quit"])
    docker_client.containers.get(batch).stop(timeout=1)
    wait_for(
        lambda: all(docker_client.containers.get(n).status == "exited" for n in (job, batch)),
        timeout=15,
        interval=0.1,
        message="job and batch to exit",
    )
    # At least one whole pass runs after both exits; neither may be started again.
    wait_pass_after(project_dir, daemon)
    for name, cid in ((job, job_id), (batch, batch_id)):
        c = docker_client.containers.get(name)
        assert c.id == cid and c.status == "exited", f"{name} was restarted or replaced"
    services = {s["name"]: s for s in status_json(project_dir)["services"]}
    assert services["job"]["running"] == 0
    assert "exited (3)" in services["job"]["actual"]
    assert services["job"]["containers"][0]["exit_code"] == 3
    assert services["batch"]["running"] == 0
    assert "exited" in services["batch"]["actual"]
    assert running_id(docker_client, f"{project_name}-web-1")


def test_service_removed_from_spec_is_removed(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """A container whose service is no longer in the spec (an orphan) is removed."""
    write(project_dir, spec(extra=ONESHOT))
    up(project_dir)
    web = running_id(docker_client, f"{project_name}-web-1")
    write(project_dir, spec())
    wait_for(
        lambda: (
            sorted(containers(docker_client, project_name))
            == [f"{project_name}-web-1", f"{project_name}-worker-1"]
        ),
        timeout=15,
        interval=0.1,
        message="job and batch containers removed",
    )
    assert running_id(docker_client, f"{project_name}-web-1") == web
    wait_for(lambda: status_json(project_dir)["orphans"] == [], timeout=10, interval=0.2)


BAD_TAIL = '\n[services.broken]\nimagee = "x"\n'


def test_invalid_spec_leaves_environment_running_and_fix_converges(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """A broken spec while running touches nothing, is recorded as invalid-spec with file:line, and a fix converges."""
    write(project_dir, spec())
    up(project_dir)
    before = {n: c.id for n, c in containers(docker_client, project_name).items()}
    bad = spec(web="changed") + BAD_TAIL
    project_dir.write(bad)
    bad_line = bad.splitlines().index('imagee = "x"') + 1

    st = wait_for(
        lambda: (s := daemon_status(project_dir))["daemon"]["last_result"] == "invalid-spec" and s,
        timeout=15,
        interval=0.1,
        message="the daemon to report invalid-spec",
    )
    error = st["daemon"]["last_error"]
    assert f"envd.toml:{bad_line}:" in error, error
    assert "imagee" in error
    now = {n: c.id for n, c in containers(docker_client, project_name).items()}
    assert now == before
    assert all(running_id(docker_client, n) for n in now)
    # The daemon still reports the last good environment's services.
    assert [s["name"] for s in st["services"]] == ["web", "worker"]

    write(project_dir, spec(web="fixed"))
    web = f"{project_name}-web-1"
    wait_for(
        lambda: (
            (cid := running_id(docker_client, web))
            and cid != before[web]
            and env_of(docker_client, web)["COLOR"] == "fixed"
        ),
        timeout=15,
        interval=0.1,
        message="web recreated from the fixed spec",
    )
    st = wait_for(
        lambda: (s := daemon_status(project_dir))["daemon"]["last_result"] == "ok" and s,
        timeout=15,
        interval=0.2,
    )
    assert st["daemon"]["last_error"] is None
    worker = f"{project_name}-worker-1"
    assert running_id(docker_client, worker) == before[worker]


def test_status_json_shows_invalid_spec_while_running(project_dir: Any, daemon: Daemons) -> None:
    """`envd status --json` keeps answering while the spec is broken: last_result invalid-spec with file:line."""
    write(project_dir, spec())
    up(project_dir)
    bad = spec() + BAD_TAIL
    project_dir.write(bad)
    bad_line = bad.splitlines().index('imagee = "x"') + 1
    wait_for(
        lambda: daemon_status(project_dir)["daemon"]["last_result"] == "invalid-spec",
        timeout=15,
        interval=0.1,
    )
    st = status_json(project_dir)
    assert st["daemon"]["last_result"] == "invalid-spec"
    assert f"envd.toml:{bad_line}:" in st["daemon"]["last_error"]
    assert [s["name"] for s in st["services"]] == ["web", "worker"]


def test_sync_rule_copies_edits_creates_and_deletes(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """Files edited, created and deleted under a `sync` path show up in the container, minus ignored and .dockerignored ones."""
    src = project_dir / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "main.txt").write_text("v1\n")
    write(project_dir, spec())
    up(project_dir)
    web = f"{project_name}-web-1"
    web_id = running_id(docker_client, web)

    def visible(path: str, text: str | None) -> None:
        wait_for(
            lambda: cat_in(docker_client, web, path) == text,
            timeout=10,
            interval=0.05,
            message=f"{path} to read {text!r} in {web}",
        )

    # create
    (src / "main.txt").write_text("v2\n")
    visible("/app/src/main.txt", "v2\n")
    (src / "pkg" / "mod.txt").write_text("nested\n")
    visible("/app/src/pkg/mod.txt", "nested\n")
    # edit
    (src / "pkg" / "mod.txt").write_text("nested, edited\n")
    visible("/app/src/pkg/mod.txt", "nested, edited\n")
    # delete
    (src / "main.txt").unlink()
    visible("/app/src/main.txt", None)

    # Ignored: the rule's patterns, editor droppings and .git/ never reach the container.
    (src / "build").mkdir()
    (src / "build" / "out.txt").write_text("ignored\n")
    (src / "debug.log").write_text("ignored\n")
    (src / "notes.txt.swp").write_text("ignored\n")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ignored\n")
    (project_dir / ".dockerignore").write_text("# what never enters an image\nsrc/*.env\n")
    (src / "local.env").write_text("ignored\n")
    (src / "marker.txt").write_text("after the ignored ones\n")
    visible("/app/src/marker.txt", "after the ignored ones\n")
    for path in ("build/out.txt", "debug.log", "notes.txt.swp", ".git/HEAD", "local.env"):
        assert cat_in(docker_client, web, f"/app/src/{path}") is None, path

    # `envd exec` sees the same files.
    proc = envd(project_dir, "exec", "web", "--", "cat", "/app/src/pkg/mod.txt")
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == "nested, edited\n"
    # Syncing never recreates the container.
    assert running_id(docker_client, web) == web_id


def test_restart_rules_restart_the_same_container(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """`restart` restarts the service's container in place on a change under its path;
    `sync+restart` copies the file in first; neither recreates the container."""
    (project_dir / "conf").mkdir()
    (project_dir / "conf" / "app.conf").write_text("v1\n")
    (project_dir / "src").mkdir()
    (project_dir / "src" / "main.txt").write_text("v1\n")
    project_dir.write(
        """\
[services.api]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
init = true
watch = [{ path = "conf", action = "restart" }]

[services.app]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
init = true
watch = [{ path = "src", action = "sync+restart", target = "/app/src" }]
"""
    )
    up(project_dir)

    def started(name: str) -> tuple[str, str]:
        c = docker_client.containers.get(name)
        return c.id, c.attrs["State"]["StartedAt"]

    api, app = f"{project_name}-api-1", f"{project_name}-app-1"
    api_before, app_before = started(api), started(app)

    (project_dir / "conf" / "app.conf").write_text("v2\n")
    wait_for(
        lambda: started(api)[1] != api_before[1],
        timeout=15,
        interval=0.1,
        message=f"{api} to restart after conf/app.conf changed",
    )
    assert started(api)[0] == api_before[0], "restart must not recreate the container"
    assert docker_client.containers.get(api).status == "running"
    assert started(app) == app_before, "a change under another service's path restarted app"

    (project_dir / "src" / "main.txt").write_text("v2\n")
    wait_for(
        lambda: started(app)[1] != app_before[1],
        timeout=15,
        interval=0.1,
        message=f"{app} to restart after src/main.txt changed",
    )
    assert started(app)[0] == app_before[0]
    wait_for(
        lambda: cat_in(docker_client, app, "/app/src/main.txt") == "v2\n",
        timeout=10,
        interval=0.1,
        message="the synced file in app",
    )


def test_sigterm_exits_zero_and_leaves_containers_running(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """SIGTERM stops the foreground daemon with exit 0 within seconds; the environment keeps running."""
    write(project_dir, spec())
    proc = daemon.popen("daemon", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    names = [f"{project_name}-web-1", f"{project_name}-worker-1"]
    wait_for(
        lambda: all(running_id(docker_client, n) for n in names),
        timeout=30,
        interval=0.1,
        message="the daemon to start both services",
    )
    wait_for(lambda: (project_dir / ".envd" / "daemon.sock").exists(), timeout=10)
    ids = {n: running_id(docker_client, n) for n in names}
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=10)
    took = time.monotonic() - started
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    assert took < 5, f"the daemon took {took:.1f}s to exit"
    assert {n: running_id(docker_client, n) for n in names} == ids
    assert not (project_dir / ".envd" / "daemon.sock").exists()
    assert not (project_dir / ".envd" / "daemon.pid").exists()


def test_sigterm_mid_apply_exits_zero_and_leaves_a_recoverable_state(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """SIGTERM while a recreate is under way still exits 0 promptly, and `up --once` then converges."""
    write(project_dir, spec())
    proc = daemon.popen("daemon", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    web = f"{project_name}-web-1"
    old = wait_for(lambda: running_id(docker_client, web), timeout=30, interval=0.1)
    wait_for(lambda: daemon_status(project_dir)["daemon"]["last_result"] == "ok", timeout=30)
    write(project_dir, spec(web="blue"))
    # The apply has begun once the old container is no longer the running one.
    wait_for(lambda: running_id(docker_client, web) != old, timeout=15, interval=0.01)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, proc.stderr.read() if proc.stderr else ""
    rec = envd(project_dir, "up", "--once", "--timeout", "60")
    assert rec.returncode == 0, describe(rec)
    plan = json.loads(envd(project_dir, "plan", "--json").stdout)
    assert plan["changes"] == 0, plan
    assert sorted(containers(docker_client, project_name)) == [web, f"{project_name}-worker-1"]
    assert env_of(docker_client, web)["COLOR"] == "blue"


def test_sigterm_to_background_daemon(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """The daemon `envd up` leaves behind also exits promptly on SIGTERM, leaving containers up."""
    write(project_dir, spec())
    up(project_dir)
    pid = daemon.pid()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), timeout=5, interval=0.05, message="the daemon to exit")
    assert daemon_processes(project_dir) == []
    assert running_id(docker_client, f"{project_name}-web-1")
    assert running_id(docker_client, f"{project_name}-worker-1")
    # Without a daemon, status falls back to observing the engine.
    st = status_json(project_dir)
    assert "daemon" not in st
    assert [s["running"] for s in st["services"]] == [1, 1]


def test_events_json_streams_json_lines(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """`envd events --json` replays and then streams one JSON object per line as the daemon works."""
    write(project_dir, spec())
    up(project_dir)
    proc = daemon.popen("events", "--json", "--since", "0")
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[dict[str, Any]] = []

    def next_event(deadline: float) -> dict[str, Any] | None:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None
        ev: dict[str, Any] = json.loads(line)  # every line is one JSON object
        seen.append(ev)
        return ev

    # The replay of what `up` did arrives first: the stream is connected.
    first = next_event(time.monotonic() + 30)
    assert first is not None and first["seq"] == 1, seen
    replayed = len(seen)
    remove_by_hand(docker_client, f"{project_name}-worker-1")

    repaired = False
    deadline = time.monotonic() + 15
    while (ev := next_event(deadline)) is not None:
        if (
            ev["kind"] in ("create", "recreate", "start")
            and ev.get("service") == "worker"
            and ev["phase"] == "done"
            and ev["seq"] > replayed
        ):
            repaired = True
        if repaired and ev["kind"] == "pass-done":
            break
    assert repaired and seen[-1]["kind"] == "pass-done", seen
    for ev in seen:
        assert {"seq", "kind", "resource", "message", "phase", "time"} <= set(ev), ev
    seqs = [e["seq"] for e in seen]
    assert seqs == list(range(1, len(seqs) + 1)), "events were lost or repeated"
    assert all(e.get("reconcile_id") for e in seen if e["kind"] in ("reconcile", "pass-done"))


def test_status_via_daemon_shows_last_reconcile_time(project_dir: Any, daemon: Daemons) -> None:
    """`envd status` answered by the daemon says when it last reconciled and with what result."""
    write(project_dir, spec())
    before = time.time()
    up(project_dir)
    st = status_json(project_dir)
    when = st["daemon"]["last_reconcile"]
    assert before <= when <= time.time()
    assert st["daemon"]["last_result"] == "ok"
    proc = envd(project_dir, "status")
    assert proc.returncode == 0, describe(proc)
    assert f"daemon pid {daemon.pid()}: last reconcile at " in proc.stdout
    assert "(ok)" in proc.stdout
    assert "web" in proc.stdout and "worker" in proc.stdout


def test_each_up_hands_the_daemon_its_shell_environment(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """`envd up` with a changed variable and a rotated `env` secret, against the running
    daemon, recreates the service with the new values; later passes keep them; the
    values never reach the daemon's files."""
    import secrets

    project_dir.write(
        """
        [services.app]
        image = "envd-local/busybox:latest"
        command = ["sleep", "3600"]
        env = { VAR = "${ENVD_T_VAR}" }
        secrets = ["pw"]
        stop_grace_period = "1s"

        [secrets.pw]
        env = "ENVD_T_PW"
        """
    )
    name = f"{project_name}-app-1"
    pw_a, pw_b = f"pw-{secrets.token_hex(8)}", f"pw-{secrets.token_hex(8)}"

    up(project_dir, env={"ENVD_T_VAR": "a", "ENVD_T_PW": pw_a})
    pid = daemon.pid()
    first = running_id(docker_client, name)
    assert first and env_of(docker_client, name)["VAR"] == "a"
    assert cat_in(docker_client, name, "/run/secrets/pw") == pw_a

    proc = up(project_dir, env={"ENVD_T_VAR": "b", "ENVD_T_PW": pw_b})
    assert "reused" in proc.stderr and "warning" not in proc.stderr
    assert daemon.pid() == pid and daemon_processes(project_dir) == [pid]
    second = running_id(docker_client, name)
    assert second and second != first
    assert env_of(docker_client, name)["VAR"] == "b"
    assert cat_in(docker_client, name, "/run/secrets/pw") == pw_b

    # A pass nobody sent an environment with (SIGHUP) keeps b, not the daemon's own a.
    wait_pass_after(project_dir, daemon)
    assert status_json(project_dir)["daemon"]["last_result"] == "ok"
    assert running_id(docker_client, name) == second
    assert env_of(docker_client, name)["VAR"] == "b"

    log = project_dir / ".envd" / "daemon.log"
    assert "reconcile.done" in log.read_text()
    for path in (project_dir / ".envd").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert pw_a.encode() not in data and pw_b.encode() not in data, path
    assert pw_b not in json.dumps(status_json(project_dir))


def test_up_runs_a_command_secret_once_and_the_daemon_never(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any, tmp_path: Path
) -> None:
    """`envd up` runs an approved command secret once, with a tool only its own shell's
    PATH finds; the daemon gets the value over the socket and runs nothing, on later
    passes or spec reloads (before, it ran the command again at every reload)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    counter = tmp_path / "ran"
    tool = tools / "vault-get"
    tool.write_text(f"#!/bin/sh\necho x >> {counter}\nprintf 'tok-%s' \"$(wc -l < {counter})\"\n")
    tool.chmod(0o755)
    spec = """
        [services.app]
        image = "envd-local/busybox:latest"
        command = ["sleep", "{sleep}"]
        secrets = ["token"]
        stop_grace_period = "1s"

        [secrets.token]
        command = ["vault-get"]
        """
    project_dir.write(spec.format(sleep=3600))
    name = f"{project_name}-app-1"
    shell = {"PATH": f"{tools}:{os.environ['PATH']}", "ENVD_ALLOW": "1"}

    up(project_dir, env=shell)
    first = running_id(docker_client, name)
    assert first and cat_in(docker_client, name, "/run/secrets/token") == "tok-1"
    assert counter.read_text() == "x\n"

    wait_pass_after(project_dir, daemon)
    project_dir.write(spec.format(sleep=3601))
    wait_for(
        lambda: running_id(docker_client, name) not in (None, first),
        timeout=30,
        message="the app recreated after the spec changed",
    )
    assert cat_in(docker_client, name, "/run/secrets/token") == "tok-1"
    assert counter.read_text() == "x\n", "the daemon ran the command"

    up(project_dir, env=shell)
    assert cat_in(docker_client, name, "/run/secrets/token") == "tok-2"
    assert counter.read_text() == "x\nx\n"


def test_stop_start_restart_through_the_daemon(
    project_dir: Any, project_name: str, daemon: Daemons, docker_client: Any
) -> None:
    """`envd stop web` stops it and the daemon keeps it stopped through a pass; `envd
    start web` runs it again; `envd restart worker` keeps the container; a service that is
    not active is exit 2."""
    (project_dir / "src").mkdir()
    project_dir.write(SPEC.format(web="red", worker="red"))
    up(project_dir)
    web, worker = f"{project_name}-web-1", f"{project_name}-worker-1"
    worker_id = running_id(docker_client, worker)

    proc = envd(project_dir, "stop", "web")
    assert proc.returncode == 0, describe(proc)
    assert "stop: web: done" in proc.stderr
    assert running_id(docker_client, web) is None
    wait_pass_after(project_dir, daemon)
    assert running_id(docker_client, web) is None, "drift repair started a stopped service"
    st = {s["name"]: s for s in status_json(project_dir)["services"]}
    assert st["web"]["stopped_on_purpose"] and not st["worker"]["stopped_on_purpose"]

    proc = envd(project_dir, "start", "web")
    assert proc.returncode == 0, describe(proc)
    wait_for(lambda: running_id(docker_client, web), timeout=15, message="web running again")

    proc = envd(project_dir, "restart", "worker")
    assert proc.returncode == 0, describe(proc)
    assert running_id(docker_client, worker) == worker_id
    proc = envd(project_dir, "stop", "nope")
    assert proc.returncode == 2 and "no active service 'nope'" in proc.stderr, describe(proc)
