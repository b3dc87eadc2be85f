"""The hashing and orphan rules the container plan and the swarm plan share (envd.core.hashing,
envd.core.networks.orphan_networks): one rule, the same answers, hashes unchanged across versions."""

from __future__ import annotations

from pathlib import Path

from envd.core.desired import desire
from envd.core.hashing import changed_fields, digest, hash_fields, plain, plain_deep
from envd.core.networks import orphan_networks
from envd.spec.load import load
from envd.swarm.desired import desire_swarm
from envd.swarm.mapping import SwarmDesired, SwarmNetwork
from envd.swarm.plan import SwarmObserved, plan_swarm
from envd.values import labels
from envd.values.keys import Keys
from envd.values.swarm_types import ObservedService, ObservedSwarmNetwork
from envd.values.types import Mount, NetworkAttachment, ObservedNetwork

KEYS = Keys(b"unit-test-hash-key")

SWARM_SPEC = """
[project]
name = "shop"

[services.web]
image = "acme/web:1"
command = ["serve"]
entrypoint = ["/init"]
ports = ["127.0.0.1:8080:80"]
restart = "always"
secrets = ["token"]
depends_on = ["db"]
env = { MODE = "a" }
healthcheck = { test = ["CMD", "true"], interval = "1s" }

[services.db]
image = "postgres:16"
volumes = ["pgdata:/var/lib/postgresql/data"]
tmpfs = ["/run:size=16m,mode=1777"]

[volumes.pgdata]

[secrets.token]
env = "TOKEN"
"""


def _swarm(tmp_path: Path) -> SwarmDesired:
    (tmp_path / "envd.toml").write_text(SWARM_SPEC)
    loaded = load(tmp_path, environ={})
    desired = desire(loaded, {"token": b"v1"}, keys=KEYS)
    return desire_swarm(desired, loaded, {"acme/web:1": "sha256:aaa", "postgres:16": None}, "vip")


def test_swarm_hashes_are_byte_identical_to_earlier_envd(tmp_path: Path) -> None:
    """Swarm config hashes and secret names match what envd computed before the hashing helpers
    were shared: an upgrade must not roll every service."""
    swarm = _swarm(tmp_path)
    assert swarm.services["db"].config_hash == (
        "1806eb4cfc3cccd1501ebc550d861f5d7890102f8a7891d049b75bac4ca57d61"
    )
    assert swarm.services["db"].task_hash == (
        "3b8988a51eee33ab60a5576f267600a44b6ea24ca09a9e7d5bb57e43dc422037"
    )
    assert swarm.services["web"].config_hash == (
        "2c866d09b000e7aac9e10e6662beace905459f20c5c94410d648749caba60e37"
    )
    assert sorted(swarm.secrets) == ["shop_token_30a08ad5b0aa"]


def test_hash_fields_assembles_the_same_document_as_digest() -> None:
    """hash_fields' full hash equals digest() of the same parts, and its short hashes are digest()[:8]."""
    parts = {"b": [1, (2, 3)], "a": {"y": None, "x": "é"}, "container.env": "x"}
    full, short = hash_fields(parts)
    assert full == digest(parts)
    assert short == ",".join(f"{k}={digest(parts[k])[:8]}" for k in sorted(parts))


def test_plain_is_the_flat_view_of_plain_deep() -> None:
    """For the flat values the core hashes, the fast plain() encodes exactly like plain_deep()."""
    for value in (Mount("bind", "/t", "/s", True), NetworkAttachment("n", ("a", "b"))):
        assert digest(plain(value)) == digest(plain_deep(value))


def test_swarm_names_no_field_when_the_old_service_has_no_field_hashes(tmp_path: Path) -> None:
    """A service without a field-hashes label (older envd, or made by hand) is "its config changed",
    as for containers, not a list of every field."""
    swarm = _swarm(tmp_path)
    web = swarm.services["web"]
    observed = SwarmObserved(
        services=(
            ObservedService("id-web", web.spec.name, 1, {labels.CONFIG_HASH: "old"}, replicas=1),
        )
    )
    (update,) = plan_swarm(swarm, observed).of("update-service")
    assert update.reason == "its config changed"
    assert changed_fields("", web.field_hashes) == []


def test_both_plans_remove_the_same_orphan_networks(tmp_path: Path) -> None:
    """The container plan's and the swarm plan's orphan networks are one rule: observed, not wanted."""
    wanted = [
        SwarmNetwork("default", "shop_default", {}),
        SwarmNetwork("ext", "shared", {}, external=True),
    ]
    containers = [ObservedNetwork(f"id-{n}", n, {}) for n in ("shop_old", "shop_default", "shared")]
    swarm_nets = [ObservedSwarmNetwork(n.id, n.name, "overlay", "swarm", {}) for n in containers]
    assert [n.name for n in orphan_networks(wanted, containers)] == ["shop_old"]
    assert orphan_networks(wanted, swarm_nets) == [swarm_nets[0]]
    swarm = _swarm(tmp_path)
    plan = plan_swarm(swarm, SwarmObserved(networks=tuple(swarm_nets)))
    assert [a.name for a in plan.of("remove-network")] == ["id-shared", "id-shop_old"]
