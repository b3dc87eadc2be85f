"""Two envd commands changing one project at the same moment: the second waits, then converges.

Before the converge lock both `up --once` planned "create" for the same
containers and failed with "a container named '…' already exists and is not
managed by this project" (or a network "not found" that the other removed);
the race is lost most of the time, so the pair runs a few rounds.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe, envd_env, run_envd

pytestmark = pytest.mark.usefixtures("busybox_image")

SERVICES = 8
ROUNDS = 3
SPEC = "".join(
    f"""
[services.s{i}]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
"""
    for i in range(1, SERVICES + 1)
)


def _containers(client: Any, project: str) -> list[str]:
    found = client.api.containers(all=True, filters={"label": f"dev.envd.project={project}"})
    return sorted(c["Names"][0].lstrip("/") for c in found)


def _together(args: list[str], cwd: Any) -> list[subprocess.CompletedProcess[str]]:
    """Run ``envd ARGS`` twice, both started before either is waited for."""
    cmd = [sys.executable, "-m", "envd", *args]
    procs = [
        subprocess.Popen(
            cmd,
            cwd=cwd,
            env=envd_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    return results


def test_two_up_once_at_the_same_moment_both_succeed_with_one_container_per_service(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """Two `up --once` of an 8-service project started together both exit 0, leaving 8 containers."""
    project_dir.write(SPEC)
    expected = [f"{project_name}-s{i}-1" for i in range(1, SERVICES + 1)]
    for _ in range(ROUNDS):
        for result in _together(["up", "--once", "--timeout", "60"], project_dir):
            assert result.returncode == 0, describe(result)
            assert "Traceback" not in result.stderr, describe(result)
        assert _containers(docker_client, project_name) == expected
        down = run_envd(["down"], cwd=project_dir)
        assert down.returncode == 0, describe(down)
        assert _containers(docker_client, project_name) == []
