"""The daemon as a supervisor, on the real engine: heal, flap, dependents, one-shots.

Each test gets its own project; daemons are stopped by the ``project_dir``
fixture and the project's objects removed by label. Every wait polls with a
deadline; nothing sleeps for a fixed time.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import describe, envd_env, run_envd, wait_for

pytestmark = [pytest.mark.docker]

BUSYBOX = "envd-local/busybox:latest"


def envd(project_dir: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return run_envd(args, cwd=project_dir, timeout=timeout)


def up(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = envd(project_dir, "up", *args)
    assert proc.returncode == 0, describe(proc)
    return proc


def status(project_dir: Path) -> dict[str, dict[str, Any]]:
    proc = envd(project_dir, "status", "--json", timeout=30)
    assert proc.returncode == 0, describe(proc)
    return {s["name"]: s for s in json.loads(proc.stdout)["services"]}


def state(client: Any, name: str) -> dict[str, Any]:
    c = client.containers.get(name)
    return {"id": c.id, **c.attrs["State"]}


class Events:
    """`envd events --json --since 0`, followed in the background."""

    def __init__(self, project_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "envd", "events", "--json", "--since", "0"],
            cwd=project_dir,
            env=envd_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.seen: list[dict[str, Any]] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def wait(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            while True:
                try:
                    self.seen.append(json.loads(self._lines.get_nowait()))
                except queue.Empty:
                    break
            return next((e for e in self.seen if match(e)), None)

        return wait_for(found, timeout=timeout, interval=0.1, message=lambda: repr(self.seen[-15:]))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def events(project_dir: Path) -> Iterator[Callable[[], Events]]:
    opened: list[Events] = []

    def open_events() -> Events:
        opened.append(Events(project_dir))
        return opened[-1]

    yield open_events
    for ev in opened:
        ev.close()


def kind(name: str, phase: str | None = None, service: str | None = None) -> Callable[..., bool]:
    def match(e: dict[str, Any]) -> bool:
        return (
            e.get("kind") == name
            and (phase is None or e.get("phase") == phase)
            and (service is None or e.get("service") == service)
        )

    return match


def daemon_log(project_dir: Path) -> list[dict[str, Any]]:
    lines = (project_dir / ".envd" / "daemon.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def stop_daemon(project_dir: Path) -> None:
    pid = int((project_dir / ".envd" / "daemon.pid").read_text().split()[0])
    os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        return text.rsplit(")", 1)[-1].split()[0] == "Z"

    wait_for(gone, timeout=30, message="the daemon to exit after SIGTERM")


# The healthcheck passes while /tmp/ok exists; each start creates it again.
HEALABLE = """
[services.db]
image = "{image}"
command = ["sh", "-c", "touch /tmp/ok; echo serving; exec sleep 3600"]
healthcheck = {{ test = ["CMD-SHELL", "test -f /tmp/ok"], interval = "500ms", timeout = "2s", retries = 1 }}
stop_grace_period = "1s"
"""


def test_unhealthy_container_is_restarted_and_healthy_again(
    project_dir: Any, project_name: str, docker_client: Any, events: Callable[[], Events]
) -> None:
    """A container made unhealthy by the test is restarted by the daemon and healthy again;
    the heal is an event, a daemon log line and a count in `status`."""
    project_dir.write(HEALABLE.format(image=BUSYBOX))
    up(project_dir)
    name = f"{project_name}-db-1"
    before = state(docker_client, name)
    ev = events()
    docker_client.containers.get(name).exec_run(["rm", "/tmp/ok"])
    healed = ev.wait(kind("healed", "done", "db"), timeout=60)
    after = state(docker_client, name)
    assert after["id"] == before["id"] and after["StartedAt"] > before["StartedAt"]
    assert after["Health"]["Status"] == "healthy"
    assert healed["seconds"] > 0
    assert any(e["message"].startswith("unhealthy: restarting it") for e in ev.seen)
    db = status(project_dir)["db"]
    assert db["heal"]["heals"] == 1 and not db["heal"]["flapping"]
    assert db["state"] == "healthy"
    text = envd(project_dir, "status").stdout
    assert "healthy (1 heal)" in text
    logged = [e for e in daemon_log(project_dir) if e.get("event") == "supervisor"]
    assert {"heal", "healed"} <= {e["kind"] for e in logged}


# The healthcheck reads a file of the project directory: the test keeps it unhealthy.
FLAPPY = """
[services.db]
image = "{image}"
command = ["sh", "-c", "echo serving; exec sleep 3600"]
volumes = ["./ctl:/ctl"]
healthcheck = {{ test = ["CMD-SHELL", "test -f /ctl/ok"], interval = "500ms", timeout = "2s", retries = 1 }}
stop_grace_period = "1s"
heal = {{ max = 2, window = "5m", backoff = "200ms" }}
"""


def _flapping(project_dir: Path, project_name: str, events: Callable[[], Events]) -> Events:
    (project_dir / "ctl").mkdir()
    (project_dir / "ctl" / "ok").write_text("")
    project_dir.write(FLAPPY.format(image=BUSYBOX))  # type: ignore[attr-defined]
    up(project_dir)
    ev = events()
    (project_dir / "ctl" / "ok").unlink()
    ev.wait(kind("flapping", "error", "db"), timeout=60)
    return ev


def test_service_unhealthy_past_the_threshold_flaps_and_is_left_alone(
    project_dir: Any, project_name: str, docker_client: Any, events: Callable[[], Events]
) -> None:
    """More heals than heal.max in the window mark the service flapping: status and events
    say so with its last log lines, and envd stops restarting it."""
    ev = _flapping(project_dir, project_name, events)
    flap = next(e for e in ev.seen if kind("flapping")(e))
    assert "serving" in flap["logs"] and "heal.max = 2" in flap["message"]
    heals = [e for e in ev.seen if kind("heal", "done", "db")(e)]
    assert len(heals) == 2
    db = status(project_dir)["db"]
    assert db["state"] == "flapping" and db["heal"]["flapping"] and db["heal"]["heals"] == 2
    assert "serving" in db["last_logs"]
    text = envd(project_dir, "status").stdout
    assert "flapping (2 heals)" in text and "envd stopped healing it" in text
    started = state(docker_client, f"{project_name}-db-1")["StartedAt"]
    # Two more of its healthchecks fail: still not restarted.
    failing = state(docker_client, f"{project_name}-db-1")["Health"]["FailingStreak"]
    wait_for(
        lambda: (
            state(docker_client, f"{project_name}-db-1")["Health"]["FailingStreak"] >= failing + 2
        ),
        timeout=30,
    )
    assert state(docker_client, f"{project_name}-db-1")["StartedAt"] == started


def test_heal_counts_and_flapping_survive_a_daemon_restart(
    project_dir: Any, project_name: str, docker_client: Any, events: Callable[[], Events]
) -> None:
    """The flap mark and heal count live in .envd/heal.json (0600): a new daemon keeps them
    and does not heal the flapping service; `envd up --rerun` clears the mark."""
    _flapping(project_dir, project_name, events)
    stop_daemon(project_dir)
    store = project_dir / ".envd" / "heal.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    started = state(docker_client, f"{project_name}-db-1")["StartedAt"]
    proc = envd(project_dir, "up", "--no-wait")  # starts a new daemon; db is still unhealthy
    assert proc.returncode == 1 and "is unhealthy" in proc.stderr, describe(proc)
    ev = events()
    restored = ev.wait(kind("supervise"), timeout=30)
    assert "db flapping" in restored["message"]
    db = status(project_dir)["db"]
    assert db["heal"]["flapping"] and db["heal"]["heals"] == 2
    assert state(docker_client, f"{project_name}-db-1")["StartedAt"] == started
    (project_dir / "ctl" / "ok").write_text("")
    up(project_dir, "--rerun", "db")
    db = status(project_dir)["db"]
    assert not db["heal"]["flapping"] and db["state"] == "healthy"


DEPENDENTS = """
[services.db]
image = "{image}"
command = ["sh", "-c", "touch /tmp/ok; exec sleep 3600"]
healthcheck = {{ test = ["CMD-SHELL", "test -f /tmp/ok"], interval = "500ms", timeout = "2s", retries = 1 }}
stop_grace_period = "1s"

[services.api]
image = "{image}"
command = ["sleep", "3600"]
stop_grace_period = "1s"
depends_on = {{ db = {{ condition = "healthy", restart = true }} }}

[services.other]
image = "{image}"
command = ["sleep", "3600"]
stop_grace_period = "1s"
depends_on = {{ db = "healthy" }}
"""


def test_dependency_restarted_by_hand_restarts_its_dependents(
    project_dir: Any, project_name: str, docker_client: Any, events: Callable[[], Events]
) -> None:
    """`docker restart` of a dependency restarts the depends_on.restart dependents once it
    is healthy again; a dependent without restart = true is left alone."""
    project_dir.write(DEPENDENTS.format(image=BUSYBOX))
    up(project_dir)
    api_before = state(docker_client, f"{project_name}-api-1")
    other_before = state(docker_client, f"{project_name}-other-1")
    ev = events()
    docker_client.containers.get(f"{project_name}-db-1").restart(timeout=1)
    done = ev.wait(kind("restart-dependent", "done", "api"), timeout=60)
    assert done["dependencies"] == ["db"]
    db = state(docker_client, f"{project_name}-db-1")
    api = state(docker_client, f"{project_name}-api-1")
    assert api["id"] == api_before["id"] and api["StartedAt"] > db["StartedAt"]
    healthy_at = next(
        p["End"] for p in db["Health"]["Log"] if p["ExitCode"] == 0 and p["End"] > db["StartedAt"]
    )
    assert api["StartedAt"] > healthy_at  # after the dependency met its condition
    assert state(docker_client, f"{project_name}-other-1")["StartedAt"] == other_before["StartedAt"]
    assert status(project_dir)["api"]["state"] == "running"


ONESHOT = """
[services.job]
image = "{image}"
command = ["sh", "-c", "echo migrated"]
env = {{ VERSION = "{version}" }}

[services.web]
image = "{image}"
command = ["sleep", "3600"]
stop_grace_period = "1s"
depends_on = {{ job = "completed" }}
"""


def test_completed_oneshot_is_left_alone_until_inputs_change_or_rerun(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """A completed one-shot keeps its container and exit time across `up`s (status shows
    completed (exit 0) at T); a changed input or `up --rerun` runs it again."""
    project_dir.write(ONESHOT.format(image=BUSYBOX, version="1"))
    up(project_dir)
    name = f"{project_name}-job-1"
    first = state(docker_client, name)
    assert first["Status"] == "exited" and first["ExitCode"] == 0
    for _ in range(2):
        proc = up(project_dir)
        assert "one-shot completed (exit 0) and its inputs are unchanged" in proc.stderr
        again = state(docker_client, name)
        assert (again["id"], again["FinishedAt"]) == (first["id"], first["FinishedAt"])
    job = status(project_dir)["job"]
    assert job["state"] == "completed" and job["oneshot"] and job["exit_code"] == 0
    assert job["completed_at"] is not None
    assert "completed (exit 0) at " in envd(project_dir, "status").stdout
    up(project_dir, "--rerun", "job")
    rerun = state(docker_client, name)
    assert rerun["id"] != first["id"] and rerun["ExitCode"] == 0
    project_dir.write(ONESHOT.format(image=BUSYBOX, version="2"))
    up(project_dir)
    changed = state(docker_client, name)
    assert changed["id"] != rerun["id"] and changed["ExitCode"] == 0


FAILING = """
[services.bad]
image = "{image}"
command = ["sh", "-c", "echo boom; exit 3"]
oneshot = true
"""


def test_failed_oneshot_is_reported_and_not_retried(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """A one-shot that failed is reported with its exit code and logs, and runs again only
    on `up --rerun` (not on `up`, not on the daemon's drift repair)."""
    project_dir.write(FAILING.format(image=BUSYBOX))
    proc = envd(project_dir, "up")
    assert proc.returncode == 1, describe(proc)
    assert "exited with code 3" in proc.stderr and "boom" in proc.stderr
    name = f"{project_name}-bad-1"
    first = state(docker_client, name)
    proc = envd(project_dir, "up")
    assert proc.returncode == 1 and "not retried until its inputs change" in proc.stderr
    pid = int((project_dir / ".envd" / "daemon.pid").read_text().split()[0])
    before = status_generation(project_dir)
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: status_generation(project_dir) > before, timeout=30)
    again = state(docker_client, name)
    assert (again["id"], again["FinishedAt"]) == (first["id"], first["FinishedAt"])
    bad = status(project_dir)["bad"]
    assert bad["state"] == "failed" and bad["exit_code"] == 3 and bad["last_logs"] == ["boom"]
    proc = envd(project_dir, "up", "--rerun", "bad")
    assert proc.returncode == 1, describe(proc)
    assert state(docker_client, name)["id"] != first["id"]


def status_generation(project_dir: Path) -> int:
    proc = envd(project_dir, "status", "--json", timeout=30)
    return int(json.loads(proc.stdout)["daemon"]["completed"])


def test_up_once_never_heals(project_dir: Any, project_name: str, docker_client: Any) -> None:
    """Without a daemon (`up --once`) an unhealthy container stays unhealthy and is reported."""
    project_dir.write(HEALABLE.format(image=BUSYBOX))
    up(project_dir, "--once")
    name = f"{project_name}-db-1"
    started = state(docker_client, name)["StartedAt"]
    docker_client.containers.get(name).exec_run(["rm", "/tmp/ok"])
    wait_for(lambda: state(docker_client, name)["Health"]["Status"] == "unhealthy", timeout=30)
    deadline_streak = state(docker_client, name)["Health"]["FailingStreak"] + 2
    wait_for(
        lambda: state(docker_client, name)["Health"]["FailingStreak"] >= deadline_streak,
        timeout=30,
    )
    assert state(docker_client, name)["StartedAt"] == started
    assert status(project_dir)["db"]["state"] == "unhealthy"
