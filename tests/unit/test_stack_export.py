"""``envd export --format swarm``: the stack file maps a spec as ``envd deploy --target swarm`` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from envd.core.desired import desire
from envd.interop.stack_export import to_stack
from envd.spec.load import LoadedSpec, load
from envd.swarm.mapping import update_order
from envd.values.keys import Keys

WEB = """
[project]
name = "shop"

[services.web]
image = "nginx:1"
ports = ["8080:80"]
restart = "unless-stopped"

[services.db]
image = "postgres:16"
volumes = ["pgdata:/var/lib/postgresql/data"]
restart = "no"

[services.cache]
image = "redis:7"
volumes = ["./conf:/conf:ro"]
tmpfs = ["/scratch:size=64m,mode=1777,noexec", "/plain:size=4096"]

[volumes.pgdata]
"""


def _load(tmp_path: Path, text: str = WEB) -> LoadedSpec:
    (tmp_path / "conf").mkdir(exist_ok=True)
    (tmp_path / "envd.toml").write_text(text)
    return load(tmp_path, environ={})


def _services(tmp_path: Path, endpoint_mode: str | None = None) -> dict[str, Any]:
    loaded = _load(tmp_path)
    result = (
        to_stack(loaded) if endpoint_mode is None else to_stack(loaded, endpoint_mode=endpoint_mode)
    )
    doc = result.documents[0]
    services: dict[str, Any] = doc["services"]
    return services


def test_vip_ports_go_through_the_routing_mesh(tmp_path: Path) -> None:
    """With virtual IPs a published port is an ingress port and does not stop start-first."""
    web = _services(tmp_path)["web"]
    assert web["ports"] == [{"target": 80, "protocol": "tcp", "mode": "ingress", "published": 8080}]
    assert web["deploy"]["update_config"]["order"] == "start-first"
    assert "endpoint_mode" not in web["deploy"]


def test_dnsrr_fixed_host_port_updates_stop_first(tmp_path: Path) -> None:
    """With DNS round robin a fixed host-mode port cannot be bound twice: stop-first, as the deploy does."""
    web = _services(tmp_path, "dnsrr")["web"]
    assert web["ports"][0]["mode"] == "host"
    assert web["deploy"]["endpoint_mode"] == "dnsrr"
    assert web["deploy"]["update_config"]["order"] == "stop-first"


@pytest.mark.parametrize("endpoint_mode", ["vip", "dnsrr"])
def test_update_order_is_the_swarm_rule(tmp_path: Path, endpoint_mode: str) -> None:
    """Every service's update order is envd.swarm.mapping.update_order of its desired state."""
    loaded = _load(tmp_path)
    desired = desire(loaded, {}, keys=Keys(b"k"))
    services = to_stack(loaded, endpoint_mode=endpoint_mode).documents[0]["services"]
    for name, body in services.items():
        order, _ = update_order(desired.services[name], endpoint_mode)
        assert body["deploy"]["update_config"]["order"] == order, name


def test_writable_volume_updates_stop_first_and_read_only_bind_start_first(tmp_path: Path) -> None:
    """Two tasks must not share a writable volume; a read-only bind mount is safe to overlap."""
    services = _services(tmp_path)
    assert services["db"]["deploy"]["update_config"]["order"] == "stop-first"
    assert services["cache"]["deploy"]["update_config"]["order"] == "start-first"


def test_tmpfs_sizes_take_units_like_the_deploy(tmp_path: Path) -> None:
    """`size=64m` is 64 MiB in the stack file, as parse_tmpfs reads it for `envd deploy`."""
    volumes = _services(tmp_path)["cache"]["volumes"]
    tmpfs = {v["target"]: v.get("tmpfs") for v in volumes if isinstance(v, dict)}
    assert tmpfs["/scratch"] == {"size": 64 * 1024**2}
    assert tmpfs["/plain"] == {"size": 4096}


def test_tmpfs_options_a_stack_cannot_hold_are_reported(tmp_path: Path) -> None:
    """The mode and other tmpfs options are named in a note, never dropped silently."""
    notes = "\n".join(to_stack(_load(tmp_path)).notes)
    assert "services.cache.tmpfs:" in notes
    assert "mode=1777" in notes and "noexec" in notes
    assert "size=" not in notes


def test_restart_policies_become_swarm_conditions(tmp_path: Path) -> None:
    """restart maps to deploy.restart_policy.condition as the deploy maps it."""
    services = _services(tmp_path)
    assert services["web"]["deploy"]["restart_policy"] == {"condition": "any"}
    assert services["db"]["deploy"]["restart_policy"] == {"condition": "none"}


def test_unknown_endpoint_mode_is_rejected(tmp_path: Path) -> None:
    """Only vip and dnsrr exist; anything else is a programming error."""
    with pytest.raises(ValueError):
        to_stack(_load(tmp_path), endpoint_mode="auto")


def test_the_stack_export_never_loads_the_engine() -> None:
    """Importing the exports pulls in only the pure swarm modules, no envd.engine (the layering)."""
    code = (
        "import sys, envd.interop.export, envd.interop.stack_export\n"
        "bad = sorted(m for m in sys.modules if m.startswith('envd.engine')"
        " or m in ('envd.swarm.deploy', 'envd.swarm.ops', 'docker'))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == ""


def test_export_command_takes_the_endpoint_mode(tmp_path: Path) -> None:
    """`envd export --format swarm --endpoint-mode dnsrr` writes host-mode ports; other formats refuse it."""
    import yaml

    from tests.helpers import run_envd

    _load(tmp_path)
    out = run_envd(["export", "--format", "swarm", "--endpoint-mode", "dnsrr"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    web = yaml.safe_load(out.stdout)["services"]["web"]
    assert web["deploy"]["endpoint_mode"] == "dnsrr"
    assert web["deploy"]["update_config"]["order"] == "stop-first"
    bad = run_envd(["export", "--format", "k8s", "--endpoint-mode", "dnsrr"], cwd=tmp_path)
    assert bad.returncode == 2 and "--endpoint-mode" in bad.stderr
