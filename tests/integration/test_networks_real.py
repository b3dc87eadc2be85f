"""Project networks on the real engine: `envd run` creates them as `up` does, `up` repairs drift."""

from __future__ import annotations

import json
from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.conftest import ProjectDir
from tests.helpers import BUSYBOX, describe

pytestmark = pytest.mark.docker

Cli = Callable[..., CompletedProcess[str]]

SPEC = f"""
[services.db]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
networks = ["backend"]
stop_signal = "SIGKILL"

[networks.backend]
internal = true
"""


def _internal(client: Any, name: str) -> bool:
    return bool(client.api.inspect_network(name)["Internal"])


def test_run_before_up_creates_the_internal_network_internal(
    project_dir: ProjectDir,
    project_name: str,
    envd_cli: Cli,
    docker_client: Any,
    busybox_image: str,
) -> None:
    """`envd run` on a fresh project creates an `internal` network internal, and `up` keeps it."""
    project_dir.write(SPEC)
    ran = envd_cli("run", "db", "--", "true", timeout=120)
    assert ran.returncode == 0, describe(ran)
    assert _internal(docker_client, f"{project_name}_backend")
    plan = json.loads(envd_cli("plan", "--json", check=True).stdout)
    assert [a["action"] for a in plan["actions"] if "network" in a["action"]] == []


def test_up_recreates_a_project_network_that_is_not_internal(
    project_dir: ProjectDir,
    project_name: str,
    envd_cli: Cli,
    docker_client: Any,
    busybox_image: str,
) -> None:
    """A project network that lost `internal` (nothing attached) is recreated by `up`."""
    project_dir.write(SPEC)
    name = f"{project_name}_backend"
    # The network as an older `envd run` left it: the spec's labels, not internal.
    envd_cli("up", "--once", "--no-wait", check=True, timeout=180)
    network_labels = docker_client.api.inspect_network(name)["Labels"]
    envd_cli("down", check=True, timeout=120)
    docker_client.api.create_network(name, driver="bridge", internal=False, labels=network_labels)
    plan = json.loads(envd_cli("plan", "--json", check=True).stdout)
    recreate = [a for a in plan["actions"] if a["action"] == "recreate-network"]
    assert [(a["name"], a["reason"]) for a in recreate] == [(name, "changed: internal")]
    envd_cli("up", "--once", check=True, timeout=180)
    assert _internal(docker_client, name)
