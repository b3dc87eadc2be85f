"""Consent as a user meets it: a real ``envd`` refuses to start a spec that runs a
host command until this user approves it, and read-only commands never run it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe, run_envd

pytestmark = pytest.mark.usefixtures("busybox_image")

SPEC = f"""
[services.app]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
secrets = ["token"]
stop_signal = "SIGKILL"

[secrets.token]
command = ["sh", "-c", "echo ran >> {{marker}}; echo tok"]
"""


def test_up_refuses_until_allowed_then_runs_the_command_once(
    project_dir: Any, project_name: str, docker_client: Any, tmp_path: Path
) -> None:
    """up --once exits 2 naming the command and `envd allow`, creating nothing; plan and status run nothing; allow --yes + up --once runs it once."""
    marker = tmp_path / "marker"
    project_dir.write(SPEC.format(marker=marker))
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    env_without_allow = {k: v for k, v in os.environ.items() if k != "ENVD_ALLOW"}

    def envd(*args: str) -> Any:
        return run_envd(args, cwd=project_dir, env={**env_without_allow, **env})

    plan = envd("plan")
    assert plan.returncode == 0, describe(plan)
    assert "Not approved" in plan.stdout and "secret 'token' runs a host command" in plan.stdout
    refused = envd("up", "--once", "--timeout", "60")
    assert refused.returncode == 2, describe(refused)
    (line,) = refused.stderr.splitlines()
    assert "secret 'token' runs a host command" in line and "envd allow" in line
    flt = {"label": f"dev.envd.project={project_name}"}
    assert docker_client.containers.list(all=True, filters=flt) == []
    assert not marker.exists()

    allowed = envd("allow", "--yes")
    assert allowed.returncode == 0, describe(allowed)
    up = envd("up", "--once", "--timeout", "60")
    assert up.returncode == 0, describe(up)
    assert marker.read_text() == "ran\n"
    for args in (("status",), ("plan",), ("logs",), ("validate",)):
        proc = envd(*args)
        assert proc.returncode == 0, describe(proc)
    assert marker.read_text() == "ran\n"
    down = envd("down")
    assert down.returncode == 0, describe(down)
    # down runs nothing either
    assert marker.read_text() == "ran\n"
