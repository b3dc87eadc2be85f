"""`envd status` answered by a running daemon on the real engine (issue 15): every
answer observes the engine afresh, so what was changed behind envd's back shows in
the next answer, not only after the daemon's next pass."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import describe, run_envd, wait_for

pytestmark = [pytest.mark.docker]

# A one-shot that has completed holds no endpoint, so its network can be removed.
SPEC = """
[services.job]
image = "envd-local/busybox:latest"
command = ["true"]
restart = "no"
stop_grace_period = "1s"
"""


def envd(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_envd(args, cwd=project_dir, timeout=120)
    assert proc.returncode == 0, describe(proc)
    return proc


def status(project_dir: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(envd(project_dir, "status", "--json").stdout)
    assert "daemon" in report, "answered by the daemon"
    return report


def test_a_network_removed_behind_envds_back_shows_in_the_next_status(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """The project's network removed with `docker network rm` while the daemon runs is
    named as drift by the next `envd status --json`, the project out of sync."""
    import docker

    project_dir.write(SPEC)
    envd(project_dir, "up")
    done = wait_for(
        lambda: (
            (r := status(project_dir))["services"][0]["state"] == "completed"
            and r["daemon"]["completed"] == r["daemon"]["generation"]
            and r
        ),
        timeout=30,
        interval=0.2,
        message="the one-shot completed and the daemon idle",
    )
    assert (done["drift"], done["in_sync"]) == ([], True)
    network = f"{project_name}_default"

    def bracketed() -> dict[str, Any] | None:
        """A status answered while the network was gone before and after it (a daemon
        pass may create it again at any time: then try again)."""
        try:
            docker_client.networks.get(network).remove()
        except docker.errors.NotFound:
            pass
        report = status(project_dir)
        try:
            docker_client.networks.get(network)
        except docker.errors.NotFound:
            return report
        return None

    report = wait_for(bracketed, timeout=60, interval=0.5, message="a status with the network gone")
    assert report["drift"] == [f"create-network network {network}: does not exist"]
    assert report["in_sync"] is False
    assert report["services"][0]["state"] == "completed"
