"""``envd deploy --target swarm`` with tasks that cannot run, on a real one-node swarm.

The swarm is the one tests/integration/test_swarm.py uses (its fixtures);
every service a test makes carries the test's project label and is removed
afterwards, even when the test fails.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe, free_tcp_port, wait_for
from tests.integration.test_swarm import swarm, swarm_project

pytestmark = pytest.mark.docker

__all__ = ["swarm", "swarm_project"]  # fixtures, imported for the tests below

CLI = Callable[..., CompletedProcess[str]]
REPORT_WITHIN = 15.0


def deploy(envd_cli: CLI) -> tuple[CompletedProcess[str], float]:
    """Deploy in host-port mode with a long timeout; return the result and its duration."""
    started = time.monotonic()
    proc = envd_cli(
        "deploy", "--target", "swarm", "--endpoint-mode", "dnsrr", "--timeout", "120", timeout=180
    )
    return proc, time.monotonic() - started


def test_a_task_no_node_can_schedule_is_reported_with_the_engines_reason(
    swarm_project: Any, project_name: str, envd_cli: CLI
) -> None:
    """A task pending on "host-mode port already in use" fails the deploy (exit 1) within 15 s, saying so."""
    port = free_tcp_port()
    label = f"dev.envd.project={project_name}"
    # On an overlay network: this engine may have no default bridge.
    net = subprocess.run(
        ["docker", "network", "create", "-d", "overlay", "--label", label, f"{project_name}-hold"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert net.returncode == 0, net.stderr
    blocker = subprocess.run(
        [
            "docker",
            "service",
            "create",
            "--detach",
            "--name",
            f"{project_name}-blocker",
            "--label",
            label,
            "--network",
            f"{project_name}-hold",
            "--publish",
            f"mode=host,published={port},target=8080",
            BUSYBOX,
            "sleep",
            "3600",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert blocker.returncode == 0, blocker.stderr

    def blocker_runs() -> bool:
        out = subprocess.run(
            ["docker", "service", "ps", f"{project_name}-blocker", "--format", "{{.CurrentState}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        return out.startswith("Running")

    wait_for(blocker_runs, timeout=60, interval=0.2, message="the service holding the port")
    swarm_project.write(
        f"""
        [services.web]
        image = "{BUSYBOX}"
        command = ["sleep", "3600"]
        ports = ["{port}:8080"]
        restart = "always"
        """
    )
    proc, took = deploy(envd_cli)
    assert proc.returncode == 1, describe(proc)
    assert "host-mode port already in use" in proc.stderr, describe(proc)
    assert "Traceback" not in proc.stderr
    assert took < REPORT_WITHIN, f"reported after {took:.1f}s\n{describe(proc)}"


def test_a_task_that_keeps_failing_is_reported_with_its_exit_code(
    swarm_project: Any, envd_cli: CLI
) -> None:
    """A service whose tasks exit 7 again and again fails the deploy (exit 1) within 15 s, naming the code."""
    swarm_project.write(
        f"""
        [services.crash]
        image = "{BUSYBOX}"
        command = ["sh", "-c", "sleep 0.2; exit 7"]
        restart = "always"
        """
    )
    proc, took = deploy(envd_cli)
    assert proc.returncode == 1, describe(proc)
    assert "exit code 7" in proc.stderr, describe(proc)
    assert "Traceback" not in proc.stderr
    assert took < REPORT_WITHIN, f"reported after {took:.1f}s\n{describe(proc)}"
