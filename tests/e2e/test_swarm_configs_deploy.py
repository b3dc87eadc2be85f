"""Configs through `envd deploy --target swarm` on a real one-node swarm: each task's
file has the content, owner and mode; new content rolls the service onto a new
config version and the old one goes; `down` leaves no config behind."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe, wait_for
from tests.integration.test_swarm import _remove_swarm_objects, swarm

pytestmark = [pytest.mark.docker, pytest.mark.needs_swarm]

__all__ = ["swarm"]  # the fixture, used by name

Cli = Callable[..., CompletedProcess[str]]

SPEC = f"""
[services.web]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
restart = "always"
read_only = true  # refused with configs by `up`; a swarm mounts the files itself
configs = ["app.conf", {{ source = "motd", target = "/etc/app/motd", uid = "1000", gid = "1001", mode = 0o440 }}]

[configs."app.conf"]
file = "app.conf"

[configs.motd]
content = "hello swarm"
"""


@pytest.fixture
def swarm_project(swarm: Any, project_dir: Any, project_name: str) -> Iterator[Any]:
    """A project whose swarm objects (configs too) are removed afterwards, even on failure."""
    try:
        yield project_dir
    finally:
        _remove_swarm_objects(swarm, project_name)


def _deploy(envd_cli: Cli) -> dict[str, Any]:
    proc = envd_cli("deploy", "--target", "swarm", "--json", "--timeout", "150", timeout=200)
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _task_reads(client: Any, project: str, path: str) -> str | None:
    """``<mode> <uid> <gid> <content>`` of ``path`` in the service's one running task, or None."""
    containers = client.containers.list(
        filters={"label": f"com.docker.swarm.service.name={project}_web", "status": "running"}
    )
    if len(containers) != 1:
        return None  # none yet, or the old and the new task during a rolling update
    cmd = f"stat -c '%a %u %g' {path} | tr '\\n' ' ' && cat {path}"
    proc = subprocess.run(
        ["docker", "exec", containers[0].id, "sh", "-c", cmd],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def _config_names(client: Any, project: str) -> set[str]:
    return {c.name for c in client.configs.list(filters={"label": f"dev.envd.project={project}"})}


def test_deploy_mounts_file_and_inline_configs_and_new_content_replaces_the_version(
    swarm_project: Any, envd_cli: Cli, project_name: str, swarm: Any
) -> None:
    """A file and an inline config reach the (read-only) task with their mode; status shows no drift;
    an edit rolls onto a new version; down removes them."""
    swarm_project.write(SPEC)
    swarm_project.write("listen 80;\n", "app.conf")
    _deploy(envd_cli)
    assert wait_for(
        lambda: _task_reads(swarm, project_name, "/app.conf") == "444 0 0 listen 80;\n",
        timeout=60,
        interval=0.3,
    )
    assert _task_reads(swarm, project_name, "/etc/app/motd") == "440 1000 1001 hello swarm"
    first = _config_names(swarm, project_name)
    assert len(first) == 2 and all(n.startswith(f"{project_name}_") for n in first)

    proc = envd_cli("status", "--target", "swarm", "--json", timeout=60)
    assert proc.returncode == 0, describe(proc)
    assert [s["drift"] for s in json.loads(proc.stdout)["services"]] == [""], proc.stdout
    configs = json.loads(proc.stdout)["configs"]
    assert sorted(r["name"] for r in configs) == ["app.conf", "motd"], proc.stdout
    assert {r["swarm_name"] for r in configs} == first
    assert {r["state"] for r in configs} == {"current"}
    text = envd_cli("status", "--target", "swarm", timeout=60)
    assert text.returncode == 0, describe(text)
    listed = text.stdout.split("\nconfigs:\n", 1)[1].splitlines()
    assert listed[0].split() == ["NAME", "VERSION", "STATE", "SERVICES"], text.stdout
    assert sorted(line.split()[1:] for line in listed[1:]) == sorted(
        [n, "current", "web"] for n in first
    ), text.stdout

    again = _deploy(envd_cli)
    assert again["changes"] == [], again

    swarm_project.write("listen 81;\n", "app.conf")
    result = _deploy(envd_cli)
    kinds = sorted(a["kind"] for a in result["changes"])
    assert kinds == ["create-config", "remove-config", "update-service"], result
    assert wait_for(
        lambda: _task_reads(swarm, project_name, "/app.conf") == "444 0 0 listen 81;\n",
        timeout=60,
        interval=0.3,
    )
    second = _config_names(swarm, project_name)
    assert len(second) == 2 and len(second & first) == 1  # motd kept, app.conf replaced

    proc = envd_cli("down", "--target", "swarm", "--json", timeout=120)
    assert proc.returncode == 0, describe(proc)
    assert sorted(json.loads(proc.stdout.strip().splitlines()[-1])["configs"]) == sorted(second)
    assert _config_names(swarm, project_name) == set()
