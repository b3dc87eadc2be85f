"""The Docker engine going away and coming back, on a private engine (tests/private_engine.py).

The shared engine is never stopped: each test starts its own dockerd, points
envd at it through DOCKER_HOST, and stops and starts that one.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.helpers import describe, run_envd, wait_for
from tests.private_engine import PrivateEngine, private_engine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

__all__ = ["private_engine"]  # the fixture, imported for the tests below

SERVICE = """
[services.{name}]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
stop_grace_period = "1s"
"""


def spec(count: int) -> str:
    return "".join(SERVICE.format(name=f"s{i}") for i in range(count))


def envd(project_dir: Any, engine: PrivateEngine, *args: str, timeout: float = 120.0) -> Any:
    return run_envd(args, cwd=project_dir, env={"DOCKER_HOST": engine.host}, timeout=timeout)


def test_daemon_waits_for_the_engine_and_converges_on_its_return(
    private_engine: PrivateEngine, project_dir: Any, project_name: str
) -> None:
    """With dockerd stopped under the daemon, status exits 3; on its return the daemon restarts the stopped containers within 10 s, once each, and follows events again."""
    project_dir.write(spec(2))
    proc = envd(project_dir, private_engine, "up")
    assert proc.returncode == 0, describe(proc)
    names = private_engine.running_names(project_name)
    assert len(names) == 2, names

    private_engine.stop()
    status = envd(project_dir, private_engine, "status", timeout=60)
    assert status.returncode == 3, describe(status)
    assert "engine" in status.stderr and "not reachable" in status.stderr, describe(status)
    assert "Traceback" not in status.stderr

    private_engine.start()
    back = time.monotonic()
    wait_for(
        lambda: private_engine.running_names(project_name) == names,
        timeout=10,
        interval=0.2,
        message="the daemon restarting the containers the engine stopped",
    )
    assert time.monotonic() - back <= 10.5
    assert private_engine.container_names(project_name) == names  # no duplicates

    # The event stream follows the engine again: a removed container comes
    # back long before the periodic resync (60 s) would notice.
    removed = names[0]
    private_engine.remove_by_hand(removed)
    wait_for(
        lambda: removed in private_engine.running_names(project_name),
        timeout=15,
        interval=0.2,
        message="the daemon recreating a container removed after the engine's return",
    )
    assert private_engine.container_names(project_name) == names


def test_engine_vanishing_mid_up_once_exits_3_and_a_rerun_converges(
    private_engine: PrivateEngine, project_dir: Any, project_name: str
) -> None:
    """The engine stopping while `up --once` creates containers ends it with exit 3 and one sentence; a re-run converges with one container per service."""
    count = 20
    project_dir.write(spec(count))
    up = run_envd_async(project_dir, private_engine)
    try:
        wait_for(
            lambda: up.poll() is not None or private_engine.container_names(project_name),
            timeout=60,
            interval=0.05,
            message="the first container",
        )
        assert up.poll() is None, "up --once ended before the engine was stopped"
        private_engine.stop()
        out, err = up.communicate(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
    assert up.returncode == 3, f"exit {up.returncode}\n{out}\n{err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("envd:")]
    assert len(lines) == 1 and "not reachable" in lines[0], err

    private_engine.start()
    proc = envd(project_dir, private_engine, "up", "--once")
    assert proc.returncode == 0, describe(proc)
    names = private_engine.container_names(project_name)
    assert len(names) == count, names
    assert sorted({n.rsplit("-", 1)[0] for n in names}) == sorted(
        f"{project_name}-s{i}" for i in range(count)
    )
    assert private_engine.running_names(project_name) == names


def run_envd_async(project_dir: Any, engine: PrivateEngine) -> Any:
    """``envd up --once`` on ``engine`` as a running subprocess."""
    import subprocess
    import sys

    from tests.helpers import envd_env

    return subprocess.Popen(
        [sys.executable, "-m", "envd", "up", "--once"],
        cwd=project_dir,
        env=envd_env({"DOCKER_HOST": engine.host}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
