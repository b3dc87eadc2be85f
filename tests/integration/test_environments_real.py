"""Two environments of one project on one engine: ``--env`` / ``ENVD_ENV``, names, labels, plans."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.conftest import ProjectDir
from tests.helpers import BUSYBOX, describe, free_tcp_port, project_cleanup

pytestmark = pytest.mark.docker

Cli = Callable[..., CompletedProcess[str]]


@pytest.fixture(autouse=True)
def _no_environment_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment comes from each test's own --env, never from ENVD_ENV."""
    monkeypatch.delenv("ENVD_ENV", raising=False)


@pytest.fixture
def ci_project(project_name: str, docker_client: Any) -> Iterator[str]:
    """``<project>-ci``, the engine-side project of environment ci, removed afterwards."""
    with project_cleanup(f"{project_name}-ci", lambda: docker_client):
        yield f"{project_name}-ci"


def _containers(client: Any, project: str) -> dict[str, Any]:
    flt = {"label": f"dev.envd.project={project}"}
    return {c.name: c for c in client.containers.list(all=True, filters=flt)}


def test_two_environments_run_side_by_side(
    project_dir: ProjectDir,
    project_name: str,
    ci_project: str,
    envd_cli: Cli,
    docker_client: Any,
    busybox_image: str,
) -> None:
    """The base and ci environments run at once, with distinct names, networks and dev.envd.environment labels."""
    port = free_tcp_port()
    project_dir.write(
        f"""
        [services.web]
        image = "{BUSYBOX}"
        command = ["httpd", "-f", "-p", "80"]
        ports = ["127.0.0.1:{port}:80"]
        env = {{ MODE = "dev" }}

        [services.worker]
        image = "{BUSYBOX}"
        command = ["sleep", "3600"]

        [environments.ci]
        services.web.ports = []
        services.web.env = {{ MODE = "ci" }}
        """
    )
    # The plan of one environment, before anything runs.
    plan = envd_cli("plan", "--env", "ci", "--json")
    assert plan.returncode == 0, describe(plan)
    doc = json.loads(plan.stdout)
    assert doc["project"] == ci_project
    creates = sorted(a["resource"] for a in doc["actions"] if a["action"] == "create")
    assert creates == [f"container {ci_project}-web-1", f"container {ci_project}-worker-1"]
    text = envd_cli("plan", "--env", "ci")
    assert text.stdout.splitlines()[0] == f"Project {ci_project} (environment ci)"

    envd_cli("up", "--once", check=True, timeout=180)
    envd_cli("up", "--once", env={"ENVD_ENV": "ci"}, check=True, timeout=180)

    base = _containers(docker_client, project_name)
    ci = _containers(docker_client, ci_project)
    assert sorted(base) == [f"{project_name}-web-1", f"{project_name}-worker-1"]
    assert sorted(ci) == [f"{ci_project}-web-1", f"{ci_project}-worker-1"]
    for c in base.values():
        assert "dev.envd.environment" not in c.labels and c.status == "running"
    for c in ci.values():
        assert c.labels["dev.envd.environment"] == "ci" and c.status == "running"
    assert "MODE=dev" in base[f"{project_name}-web-1"].attrs["Config"]["Env"]
    assert "MODE=ci" in ci[f"{ci_project}-web-1"].attrs["Config"]["Env"]
    assert ci[f"{ci_project}-web-1"].attrs["HostConfig"]["PortBindings"] == {}
    nets = {n.name: n for n in docker_client.networks.list(filters={"label": "dev.envd.project"})}
    assert nets[f"{ci_project}_default"].attrs["Labels"]["dev.envd.environment"] == "ci"
    assert f"{project_name}_default" in nets

    # Each environment plans only its own objects: both are up to date.
    for args in (("plan", "--json"), ("plan", "--env", "ci", "--json")):
        doc = json.loads(envd_cli(*args, check=True).stdout)
        assert doc["changes"] == 0, doc

    # Taking one down leaves the other running.
    envd_cli("down", "--env", "ci", check=True)
    assert _containers(docker_client, ci_project) == {}
    assert {c.status for c in _containers(docker_client, project_name).values()} == {"running"}
