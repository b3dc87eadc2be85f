"""`envd up` with Compose's names and networking on the real engine: a container_name,
a static address on a network with ipam, a service sharing another's network, and a
missing bind source that `plan` announces and `up` creates."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe

pytestmark = pytest.mark.usefixtures("busybox_image")

Cli = Callable[..., CompletedProcess[str]]


def ok(proc: CompletedProcess[str]) -> CompletedProcess[str]:
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    return proc


def test_up_names_addresses_joins_and_creates_the_bind_source(
    project_dir: Any,
    project_name: str,
    envd_cli: Cli,
    docker_client: Any,
    engine_is_podman: bool,
) -> None:
    """up runs db as its container_name with its static address, joins probe to db's
    network, creates the missing bind directory (plan only names it); status, exec, logs
    and down work by labels."""
    b, c = random.randrange(100, 250), random.randrange(0, 256)
    pool, address = f"10.{b}.{c}.0/24", f"10.{b}.{c}.40"
    name = f"{project_name}-pg"
    project_dir.write(
        f"""
        [services.db]
        image = "{BUSYBOX}"
        command = ["sleep", "100000"]
        stop_signal = "SIGKILL"
        container_name = "{name}"
        expose = ["5432"]
        networks = {{ back = {{ ipv4_address = "{address}" }} }}
        volumes = ["./data/new:/data"]

        [services.probe]
        image = "{BUSYBOX}"
        command = ["sleep", "100000"]
        stop_signal = "SIGKILL"
        network_mode = "service:db"

        [networks.back]
        ipam = {{ config = [{{ subnet = "{pool}" }}] }}
        """
    )
    plan = ok(envd_cli("plan"))
    assert "create-dir" in plan.stdout and "data/new" in plan.stdout, describe(plan)
    assert not (project_dir / "data").exists()

    up = ok(envd_cli("up", "--once", "--timeout", "60"))
    assert (project_dir / "data" / "new").is_dir()
    assert "data/new" in up.stderr, describe(up)

    api = docker_client.api
    db = api.inspect_container(name)
    assert "5432/tcp" in db["Config"]["ExposedPorts"]
    endpoint = db["NetworkSettings"]["Networks"][f"{project_name}_back"]
    if engine_is_podman:
        # Podman's inspect has no IPAMConfig (docs/compatibility.md); the address is there.
        assert endpoint.get("IPAMConfig") is None
    else:
        assert endpoint["IPAMConfig"]["IPv4Address"] == address
    assert endpoint["IPAddress"] == address
    network = api.inspect_network(f"{project_name}_back")
    assert [p["Subnet"] for p in network["IPAM"]["Config"]] == [pool]
    probe = api.inspect_container(f"{project_name}-probe-1")
    assert probe["HostConfig"]["NetworkMode"] == f"container:{db['Id']}"

    status = json.loads(ok(envd_cli("status", "--json")).stdout)
    text = json.dumps(status)
    assert name in text and "probe" in text
    shown = ok(envd_cli("exec", "probe", "--", "ip", "-o", "-4", "addr", "show"))
    assert address in shown.stdout, describe(shown)
    ok(envd_cli("exec", "db", "--", "sh", "-c", "echo marker-from-db > /proc/1/fd/1"))
    logs = ok(envd_cli("logs", "db", "--tail", "5"))
    assert f"{name} | marker-from-db" in logs.stdout, describe(logs)
    table = ok(envd_cli("status"))
    assert "db" in table.stdout and "probe" in table.stdout, describe(table)
    again = json.loads(ok(envd_cli("plan", "--json")).stdout)
    assert again["changes"] == 0, again

    ok(envd_cli("down"))
    assert docker_client.api.containers(all=True, filters={"name": name}) == []
