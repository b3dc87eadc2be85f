"""``envd deploy --target swarm`` on a real one-node Docker Swarm.

The swarm is created when absent (``docker swarm init --advertise-addr
127.0.0.1``) and left in place afterwards: other tests' bridge networks and
containers do not mind it. Every service, secret and network a test deploys
is labelled with the test's project and removed afterwards, even when the
test fails.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe, wait_for

pytestmark = pytest.mark.docker

CLI = Callable[..., CompletedProcess[str]]


@pytest.fixture(scope="session")
def swarm(docker_client: Any) -> Any:
    """A Docker engine that manages an active swarm (initialised here if it was not)."""
    state = docker_client.info().get("Swarm", {})
    if state.get("LocalNodeState") != "active":
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    elif not state.get("ControlAvailable"):
        pytest.skip("this engine is a swarm worker, not a manager")
    return docker_client


def _remove_swarm_objects(client: Any, project: str) -> None:
    """Remove the project's services, then its secrets and configs, then its networks."""
    import docker

    flt = {"label": f"dev.envd.project={project}"}
    errors = (docker.errors.NotFound, docker.errors.APIError)
    for svc in client.services.list(filters=flt):
        with contextlib.suppress(*errors):
            svc.remove()

    def secrets_gone() -> bool:
        for sec in client.secrets.list(filters=flt):
            with contextlib.suppress(*errors):
                sec.remove()
        return not client.secrets.list(filters=flt)

    wait_for(secrets_gone, timeout=60, interval=0.2, message=f"secrets of {project} to go")

    def configs_gone() -> bool:
        for cfg in client.configs.list(filters=flt):
            with contextlib.suppress(*errors):
                cfg.remove()
        return not client.configs.list(filters=flt)

    wait_for(configs_gone, timeout=60, interval=0.2, message=f"configs of {project} to go")

    def networks_gone() -> bool:
        for net in client.networks.list(filters=flt):
            with contextlib.suppress(*errors):
                net.remove()
        return not client.networks.list(filters=flt)

    # Task containers leave the overlay network a moment after their service goes.
    wait_for(networks_gone, timeout=60, interval=0.2, message=f"networks of {project} to go")


@pytest.fixture
def swarm_project(
    swarm: Any, project_dir: Any, project_name: str, busybox_image: str
) -> Iterator[Any]:
    """A project directory whose swarm objects are removed afterwards, even on failure."""
    try:
        yield project_dir
    finally:
        _remove_swarm_objects(swarm, project_name)


WEB = """
[services.web]
image = "{image}"
command = ["sh", "-c", "mkdir -p /www && cp /run/secrets/token /www/token && echo {greeting} > /www/index.html && exec httpd -f -p 8080 -h /www"]
ports = ["8080"]
replicas = 2
restart = "always"
secrets = ["token"]
healthcheck = {{ test = ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"], interval = "1s", timeout = "2s", retries = 5 }}

[services.client]
image = "{image}"
command = ["sh", "-c", "mkdir -p /tmp; while true; do wget -q -O /tmp/page http://web:8080/ && cp /tmp/page /tmp/seen; sleep 0.5; done"]
restart = "always"
env = {{ MARK = "{mark}" }}

[secrets.token]
env = "TOKEN"
"""


def _write(project_dir: Any, greeting: str = "hello", mark: str = "1") -> None:
    project_dir.write(WEB.format(image=BUSYBOX, greeting=greeting, mark=mark))


def _deploy(envd_cli: CLI, token: str) -> dict[str, Any]:
    proc = envd_cli(
        "deploy",
        "--target",
        "swarm",
        "--json",
        "--timeout",
        "150",
        env={"TOKEN": token},
        timeout=200,
    )
    assert proc.returncode == 0, describe(proc)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _status(envd_cli: CLI, token: str) -> dict[str, Any]:
    proc = envd_cli("status", "--target", "swarm", "--json", env={"TOKEN": token})
    assert proc.returncode == 0, describe(proc)
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def _published_ports(report: dict[str, Any], service: str) -> list[int]:
    """Where the service answers on 127.0.0.1: the routing mesh's port, or each task's host port."""
    svc = next(s for s in report["services"] if s["name"] == service)
    ports = [int(p.split("->")[0]) for p in svc["ports"]]
    if not ports:  # host mode: "0.0.0.0:32768->8080/tcp" per task (and "[::]:…" for IPv6)
        ports = [
            int(p.split("->")[0].rsplit(":", 1)[1])
            for t in svc["tasks"]
            if t["state"] == "running" and t["desired_state"] == "running"
            for p in t["ports"]
            if p.startswith("0.0.0.0:")
        ]
    return ports


def _get(port: int, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
        body: bytes = resp.read()
        return body.decode()


def _versions(client: Any, project: str) -> dict[str, int]:
    return {
        s.name: int(s.attrs["Version"]["Index"])
        for s in client.services.list(filters={"label": f"dev.envd.project={project}"})
    }


def _secret_names(client: Any, project: str) -> set[str]:
    return {s.name for s in client.secrets.list(filters={"label": f"dev.envd.project={project}"})}


def _client_saw(client: Any, project: str, text: str) -> bool:
    """Whether the client service fetched a page containing ``text`` from web by name."""
    for c in client.containers.list(
        filters={"label": f"com.docker.swarm.service.name={project}_client"}
    ):
        code, out = c.exec_run(["cat", "/tmp/seen"])
        if code == 0 and text in out.decode():
            return True
    return False


def test_deploy_serves_replicas_with_a_secret_and_a_noop_redeploy_changes_nothing(
    swarm_project: Any, envd_cli: CLI, project_name: str, swarm: Any
) -> None:
    """Two replicas answer on their published port with the secret, services reach each other by name, and a second deploy updates nothing."""
    _write(swarm_project)
    first = _deploy(envd_cli, "s3cret-1")
    assert first["services"] == {"web": "running", "client": "running"}
    report = _status(envd_cli, "s3cret-1")
    web = next(s for s in report["services"] if s["name"] == "web")
    assert web["desired_replicas"] == 2 and web["running"] == 2
    secret = {r["swarm_name"]: (r["name"], r["state"], r["services"]) for r in report["secrets"]}
    assert secret == {
        name: ("token", "current", ["web"]) for name in _secret_names(swarm, project_name)
    }
    assert "s3cret-1" not in json.dumps(report)
    ports = _published_ports(report, "web")
    assert ports
    for port in ports:
        assert wait_for(lambda p=port: "hello" in _get(p), timeout=30, ignore=(OSError,))
        assert _get(port, "/token") == "s3cret-1"
    assert wait_for(lambda: _client_saw(swarm, project_name, "hello"), timeout=30)

    before = _versions(swarm, project_name)
    again = _deploy(envd_cli, "s3cret-1")
    assert again["changes"] == []
    assert _versions(swarm, project_name) == before
    labels = swarm.services.get(f"{project_name}_web").attrs["Spec"]["Labels"]
    assert labels["dev.envd.project"] == project_name
    assert len(labels["dev.envd.config-hash"]) == 64
    assert "s3cret-1" not in json.dumps(swarm.services.get(f"{project_name}_web").attrs)


def test_an_edit_rolls_only_its_service_and_a_rotated_secret_replaces_the_old_one(
    swarm_project: Any, envd_cli: CLI, project_name: str, swarm: Any
) -> None:
    """Editing one service updates only it, and a new secret value creates a new secret, updates its consumer and removes the old one."""
    _write(swarm_project)
    _deploy(envd_cli, "s3cret-1")
    v1 = _versions(swarm, project_name)
    old_secrets = _secret_names(swarm, project_name)
    assert len(old_secrets) == 1

    _write(swarm_project, greeting="bonjour")
    edited = _deploy(envd_cli, "s3cret-1")
    assert [c["resource"] for c in edited["changes"]] == [f"service {project_name}_web"]
    v2 = _versions(swarm, project_name)
    assert v2[f"{project_name}_web"] > v1[f"{project_name}_web"]
    assert v2[f"{project_name}_client"] == v1[f"{project_name}_client"]
    ports = _published_ports(_status(envd_cli, "s3cret-1"), "web")
    for port in ports:
        assert wait_for(lambda p=port: "bonjour" in _get(p), timeout=30, ignore=(OSError,))

    pending = _status(envd_cli, "s3cret-2")
    assert [(r["swarm_name"] in old_secrets, r["state"]) for r in pending["secrets"]] == [
        (True, "previous version"),
        (False, "not deployed"),
    ]
    assert [s["drift"] for s in pending["services"] if s["name"] == "web"] == ["changed: secrets"]
    assert "s3cret-2" not in json.dumps(pending)

    rotated = _deploy(envd_cli, "s3cret-2")
    kinds = sorted(c["kind"] for c in rotated["changes"])
    assert kinds == ["create-secret", "remove-secret", "update-service"]
    new_secrets = _secret_names(swarm, project_name)
    assert len(new_secrets) == 1 and new_secrets.isdisjoint(old_secrets)
    v3 = _versions(swarm, project_name)
    assert v3[f"{project_name}_client"] == v1[f"{project_name}_client"]
    for port in _published_ports(_status(envd_cli, "s3cret-2"), "web"):
        assert wait_for(
            lambda p=port: _get(p, "/token") == "s3cret-2", timeout=30, ignore=(OSError,)
        )


def test_down_removes_every_service_secret_and_network_of_the_project(
    swarm_project: Any, envd_cli: CLI, project_name: str, swarm: Any
) -> None:
    """`envd down --target swarm` leaves nothing labelled with the project."""
    _write(swarm_project)
    _deploy(envd_cli, "s3cret-1")
    flt = {"label": f"dev.envd.project={project_name}"}
    assert swarm.networks.list(filters=flt)
    proc = envd_cli("down", "--target", "swarm", "--json", env={"TOKEN": "s3cret-1"}, timeout=120)
    assert proc.returncode == 0, describe(proc)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(result["services"]) == [f"{project_name}_client", f"{project_name}_web"]
    assert not swarm.services.list(filters=flt)
    assert not swarm.secrets.list(filters=flt)
    assert not swarm.networks.list(filters=flt)
