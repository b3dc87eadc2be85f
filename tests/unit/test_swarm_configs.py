"""Configs on ``envd deploy --target swarm``: versioned swarm config objects, mounted with
their uid/gid/mode, replaced (and the old version removed) when their content changes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from envd.core.desired import desire
from envd.engine.swarm.fake import FakeSwarm
from envd.engine.swarm.payloads import observed_configs, service_payload
from envd.inputs.configs import read_configs
from envd.spec.load import load
from envd.swarm.deploy import deploy
from envd.swarm.desired import desire_swarm
from envd.swarm.mapping import SWARM_CONFIG_MAX, SwarmDesired
from envd.swarm.ops import down
from envd.swarm.plan import SwarmObserved, plan_swarm
from envd.swarm.status import status as swarm_status
from envd.values import labels
from envd.values.errors import SpecError, UsageError
from envd.values.events import FakeClock
from envd.values.keys import Keys
from envd.values.swarm_types import (
    ConfigRef,
    ObservedConfig,
    ObservedService,
    ObservedSwarmNetwork,
)

KEYS = Keys(b"unit-test-hash-key")

SPEC = """\
[project]
name = "cfgs"

[services.web]
image = "acme/web:1"
configs = ["site", {{ source = "motd", target = "/etc/motd", uid = "101", gid = "102", mode = 0o440 }}]

[services.worker]
image = "acme/web:1"
{worker}

[configs.site]
file = "site.conf"

[configs.motd]
content = "{motd}"
"""


def _desired(
    root: Path, site: str = "listen 80;\n", motd: str = "hi", worker: str = ""
) -> SwarmDesired:
    root.mkdir(exist_ok=True)
    (root / "envd.toml").write_text(SPEC.format(motd=motd, worker=worker))
    (root / "site.conf").write_text(site)
    loaded = load(root, environ={}, swarm=True)
    desired = desire(loaded, {}, keys=KEYS, config_values=read_configs(loaded))
    return desire_swarm(desired, loaded, {"acme/web:1": "sha256:aaa"}, "vip")


def _name(key: str, content: bytes) -> str:
    return f"cfgs_{key}_{hashlib.sha256(content).hexdigest()[:12]}"


def test_configs_become_versioned_swarm_configs_named_by_their_content(tmp_path: Path) -> None:
    """Each config is one swarm config named project_config_digest, labelled, its content not in labels."""
    want = _desired(tmp_path)
    site, motd = _name("site", b"listen 80;\n"), _name("motd", b"hi")
    assert set(want.configs) == {site, motd}
    assert want.configs[motd].value == b"hi"
    cfg_labels = want.configs[site].labels
    assert cfg_labels[labels.CONFIG] == "site" and cfg_labels[labels.PROJECT] == "cfgs"
    assert cfg_labels[labels.TARGET] == "swarm"
    assert "listen" not in repr(dict(cfg_labels)) and "listen" not in repr(want.configs[site])
    web = want.services["web"].spec
    assert web.configs == (
        ConfigRef(site, "/site", "0", "0", 0o444),
        ConfigRef(motd, "/etc/motd", "101", "102", 0o440),
    )
    assert web.container.configs == ()  # the swarm mounts them, not the container create
    assert all("listen" not in v for v in web.labels.values())
    assert all("listen" not in v for v in web.container.labels.values())


def test_the_service_payload_mounts_each_config_with_its_file_mode_and_owner(
    tmp_path: Path,
) -> None:
    """TaskTemplate.ContainerSpec.Configs names each config's id and its File (target, uid, gid, mode)."""
    want = _desired(tmp_path)
    motd = _name("motd", b"hi")
    body = service_payload(want.services["web"].spec, {}, {motd: "cid-motd"})
    configs = body["TaskTemplate"]["ContainerSpec"]["Configs"]
    assert configs[1] == {
        "File": {"Name": "/etc/motd", "UID": "101", "GID": "102", "Mode": 0o440},
        "ConfigID": "cid-motd",
        "ConfigName": motd,
    }
    assert configs[0]["File"] == {"Name": "/site", "UID": "0", "GID": "0", "Mode": 0o444}
    without = service_payload(want.services["worker"].spec, {})
    assert "Configs" not in without["TaskTemplate"]["ContainerSpec"]


def test_observed_configs_keep_name_and_labels_not_content() -> None:
    """A /configs answer is read as id, name and labels; its Data is dropped."""
    doc = [{"ID": "c1", "Spec": {"Name": "p_a_1", "Labels": {"k": "v"}, "Data": "aGk="}}]
    assert observed_configs(doc) == [ObservedConfig("c1", "p_a_1", {"k": "v"})]


def test_a_content_change_creates_a_new_version_updates_its_users_and_removes_the_old(
    tmp_path: Path,
) -> None:
    """Plan: new content → create-config, update of the service using it only, remove the old version."""
    old, new = _desired(tmp_path), _desired(tmp_path, motd="hello")
    observed = SwarmObserved(
        services=tuple(
            ObservedService(f"id-{s.spec.name}", s.spec.name, 3, dict(s.spec.labels), 1)
            for s in old.services.values()
        ),
        configs=tuple(ObservedConfig(f"id-{n}", n, dict(c.labels)) for n, c in old.configs.items()),
        networks=tuple(
            ObservedSwarmNetwork(f"id-{n.name}", n.name, "overlay", "swarm", dict(n.labels))
            for n in old.networks.values()
        ),
    )
    assert plan_swarm(old, observed).changes == ()
    plan = plan_swarm(new, observed)
    changes = [(a.kind, a.resource, a.reason) for a in plan.changes]
    assert changes[0] == (
        "create-config",
        f"config {_name('motd', b'hello')}",
        "its content changed",
    )
    assert changes[1][:2] == ("update-service", "service cfgs_web")
    assert "configs" in changes[1][2]
    assert changes[2] == (
        "remove-config",
        f"config {_name('motd', b'hi')}",
        "replaced by a new version",
    )
    assert len(changes) == 3  # the worker, which mounts no config, is left alone


def test_deploy_noop_and_content_change_on_a_fake_swarm(tmp_path: Path) -> None:
    """Deploy creates the configs before the services; again changes nothing; new content rolls the service."""
    engine = FakeSwarm()
    clock = FakeClock()
    deploy(engine, _desired(tmp_path), clock=clock)
    kinds = [k for k, _ in engine.journal]
    assert kinds[:3] == ["create-network", "create-config", "create-config"]
    assert kinds[3:] == ["create-service", "create-service"]
    assert engine.task_file("cfgs_web", "/etc/motd") == (b"hi", "101", "102", 0o440)
    assert engine.task_file("cfgs_web", "/site") == (b"listen 80;\n", "0", "0", 0o444)

    engine.journal.clear()
    assert deploy(engine, _desired(tmp_path), clock=clock).plan.changes == ()
    assert engine.journal == []

    deploy(engine, _desired(tmp_path, site="listen 81;\n"), clock=clock)
    assert engine.journal == [
        ("create-config", _name("site", b"listen 81;\n")),
        ("update-service", "cfgs_web"),
        ("remove-config", _name("site", b"listen 80;\n")),
    ]
    assert engine.task_file("cfgs_web", "/site") == (b"listen 81;\n", "0", "0", 0o444)
    assert {c.name for c in engine.list_configs({})} == {
        _name("site", b"listen 81;\n"),
        _name("motd", b"hi"),
    }


def test_a_config_shared_by_two_services_is_one_object_and_down_removes_it(
    tmp_path: Path,
) -> None:
    """Two services mounting one config share one swarm config; down removes it after the services."""
    engine = FakeSwarm()
    deploy(engine, _desired(tmp_path, worker='configs = ["site"]'), clock=FakeClock())
    assert [k for k, _ in engine.journal].count("create-config") == 2
    assert engine.task_file("cfgs_worker", "/site") == engine.task_file("cfgs_web", "/site")
    engine.journal.clear()
    result = down(engine, "cfgs", clock=FakeClock())
    assert [k for k, _ in engine.journal] == [
        "remove-service",
        "remove-service",
        "remove-config",
        "remove-config",
        "remove-network",
    ]
    assert engine.list_configs({}) == [] and sorted(result.configs) == sorted(
        [_name("site", b"listen 80;\n"), _name("motd", b"hi")]
    )


def test_a_config_in_use_cannot_be_removed_on_the_fake(tmp_path: Path) -> None:
    """Like the engine, the fake refuses to remove a config a service mounts."""
    from envd.values.errors import Conflict

    engine = FakeSwarm()
    deploy(engine, _desired(tmp_path), clock=FakeClock())
    used = engine.list_configs({labels.CONFIG: "motd"})[0]
    with pytest.raises(Conflict):
        engine.remove_config(used.id)


def test_swarm_validation_accepts_a_config_under_a_mount_or_a_read_only_root(
    tmp_path: Path,
) -> None:
    """A swarm mounts config files itself, so a target under a volume and read_only are fine there."""
    (tmp_path / "envd.toml").write_text(
        '[services.web]\nimage = "x"\nread_only = true\nvolumes = ["data:/etc/app"]\n'
        'configs = [{ source = "c", target = "/etc/app/c.conf" }]\n\n'
        '[volumes.data]\n\n[configs.c]\ncontent = "x"\n'
    )
    load(tmp_path, environ={}, swarm=True)
    with pytest.raises(SpecError) as info:
        load(tmp_path, environ={})
    assert "configs" in str(info.value)


def test_configs_leave_the_hashes_of_a_service_without_configs_alone(tmp_path: Path) -> None:
    """Adding a config to one service changes its task hash and no other service's."""
    before = _desired(tmp_path / "a")
    after = _desired(tmp_path / "b", worker='configs = ["site"]')
    assert before.services["web"].task_hash == after.services["web"].task_hash
    assert before.services["worker"].task_hash != after.services["worker"].task_hash


@pytest.mark.parametrize("motd", ["", "x" * SWARM_CONFIG_MAX], ids=["empty", "too large"])
def test_a_config_a_swarm_would_reject_is_refused_before_the_deploy(
    tmp_path: Path, motd: str
) -> None:
    """An empty config or one of 1024000 bytes or more is refused in one sentence naming it."""
    with pytest.raises(UsageError) as info:
        _desired(tmp_path, motd=motd)
    assert str(info.value).startswith("configs.motd: ")


def test_status_lists_config_versions_and_the_services_mounting_them(tmp_path: Path) -> None:
    """Each config version is listed with its state and the spec's services mounting it;
    edited content shows the deployed version as previous and the new one as not deployed."""
    engine = FakeSwarm()
    deploy(engine, _desired(tmp_path, worker='configs = ["site"]'), clock=FakeClock())
    site, motd = _name("site", b"listen 80;\n"), _name("motd", b"hi")
    report = swarm_status(engine, "cfgs", _desired(tmp_path, worker='configs = ["site"]'))
    assert [(r["name"], r["swarm_name"], r["state"], r["services"]) for r in report["configs"]] == [
        ("motd", motd, "current", ["web"]),
        ("site", site, "current", ["web", "worker"]),
    ]
    assert report["secrets"] == []

    edited = swarm_status(
        engine, "cfgs", _desired(tmp_path, site="listen 81;\n", worker='configs = ["site"]')
    )
    states = {(r["swarm_name"], r["state"], tuple(r["services"])) for r in edited["configs"]}
    assert states == {
        (motd, "current", ("web",)),
        (site, "previous version", ("web", "worker")),
        (_name("site", b"listen 81;\n"), "not deployed", ("web", "worker")),
    }
    assert "listen" not in json.dumps(edited)
