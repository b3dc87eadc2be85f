"""The pure side of ``envd deploy --target swarm``: desired services, hashes, plans, waiting.

Also runs ``deploy`` and ``down`` against a small in-memory swarm, so the
order of operations (secrets removed only after their consumers moved on)
is checked without an engine.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from envd.core.desired import desire
from envd.engine.swarm.fake import FakeSwarm
from envd.engine.swarm.payloads import service_payload
from envd.spec.load import LoadedSpec, load
from envd.swarm.deploy import deploy
from envd.swarm.desired import desire_swarm
from envd.swarm.mapping import (
    NotSwarmManager,
    SwarmDesired,
    parse_tmpfs,
    restart_condition,
    secret_name,
)
from envd.swarm.ops import down, require_manager, service_state
from envd.swarm.plan import SwarmObserved, plan_swarm
from envd.swarm.status import status as swarm_status
from envd.values import labels
from envd.values.errors import EnvironmentFailed
from envd.values.events import FakeClock
from envd.values.keys import Keys
from envd.values.swarm_types import (
    TASK_HASH_LABEL,
    ObservedSecret,
    ObservedService,
    ObservedSwarmNetwork,
    ObservedTask,
)

# Secret names use a fixed key, never the user's key file.
KEYS = Keys(b"unit-test-hash-key")

SPEC = """
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
env = {{ MODE = "{mode}" }}
healthcheck = {{ test = ["CMD", "true"], interval = "1s" }}

[services.db]
image = "postgres:16"
volumes = ["pgdata:/var/lib/postgresql/data"]
tmpfs = ["/run:size=16m,mode=1777"]

[volumes.pgdata]

[secrets.token]
env = "TOKEN"
"""


def _loaded(tmp_path: Path, mode: str = "a") -> LoadedSpec:
    (tmp_path / "envd.toml").write_text(SPEC.format(mode=mode))
    return load(tmp_path, environ={"TOKEN": "x"})


def _desired(
    tmp_path: Path, mode: str = "a", token: bytes = b"v1", endpoint: str = "vip", replicas: int = 2
) -> SwarmDesired:
    loaded = _loaded(tmp_path, mode)
    # The loader refuses replicas > 1 with a fixed host port (true for `envd up`,
    # not for the routing mesh), so the replicas are set after loading.
    web = loaded.spec.services["web"].model_copy(update={"replicas": replicas})
    spec = loaded.spec.model_copy(update={"services": {**loaded.spec.services, "web": web}})
    loaded = replace(loaded, spec=spec)
    desired = desire(loaded, {"token": token}, keys=KEYS)
    return desire_swarm(
        desired, loaded, {"acme/web:1": "sha256:aaa", "postgres:16": None}, endpoint
    )


def _observed(want: SwarmDesired) -> SwarmObserved:
    """What the engine would report right after deploying ``want``."""
    return SwarmObserved(
        services=tuple(
            ObservedService(
                f"id-{s.spec.name}", s.spec.name, 10, dict(s.spec.labels), s.spec.replicas
            )
            for s in want.services.values()
        ),
        secrets=tuple(
            ObservedSecret(f"id-{n}", n, dict(s.labels)) for n, s in want.secrets.items()
        ),
        networks=tuple(
            ObservedSwarmNetwork(f"id-{n.name}", n.name, "overlay", "swarm", dict(n.labels))
            for n in want.networks.values()
        ),
    )


def test_names_labels_and_network(tmp_path: Path) -> None:
    """Services are <project>_<service> on an overlay network, labelled as the project's swarm deploy."""
    want = _desired(tmp_path)
    web = want.services["web"].spec
    assert web.name == "shop_web"
    assert web.labels[labels.PROJECT] == "shop"
    assert web.labels["dev.envd.target"] == "swarm"
    assert web.labels[labels.CONFIG_HASH] == want.services["web"].config_hash
    assert web.container.labels[TASK_HASH_LABEL] == want.services["web"].task_hash
    assert web.container.labels["dev.envd.image-id"] == "sha256:aaa"
    assert labels.PROJECT not in web.container.labels  # tasks are not local envd containers
    net = want.networks["default"]
    assert (net.name, net.driver) == ("shop_default", "overlay")
    assert web.networks[0].network == "shop_default" and "web" in web.networks[0].aliases


def test_secrets_get_versioned_names_from_the_keyed_digest(tmp_path: Path) -> None:
    """A secret is named <project>_<secret>_<digest[:12]> and its value reaches no label or payload."""
    want = _desired(tmp_path, token=b"t0ps3cret")
    name = f"shop_token_{KEYS.digest(b't0ps3cret')[:12]}"
    assert set(want.secrets) == {name}
    web = want.services["web"].spec
    assert web.secrets[0].secret == name and web.secrets[0].target == "token"
    payload = json.dumps(service_payload(web, {name: "sid"}))
    assert "t0ps3cret" not in payload and "t0ps3cret" not in repr(want)
    assert '"SecretID":"sid"' in payload.replace(" ", "")


def test_secret_names_fit_swarm_limits() -> None:
    """A long project and secret name is shortened to 64 characters, digest kept."""
    name = secret_name("p" * 40, "s" * 40, "0123456789abcdef")
    assert len(name) == 64 and name.endswith("_0123456789ab")


def test_hashes_are_stable_and_per_service(tmp_path: Path) -> None:
    """The same spec hashes the same; an edit moves only the edited service's hash."""
    a, b = _desired(tmp_path), _desired(tmp_path)
    assert {n: s.config_hash for n, s in a.services.items()} == {
        n: s.config_hash for n, s in b.services.items()
    }
    edited = _desired(tmp_path, mode="b")
    assert edited.services["web"].config_hash != a.services["web"].config_hash
    assert edited.services["db"].config_hash == a.services["db"].config_hash


def test_scaling_changes_the_service_not_its_tasks(tmp_path: Path) -> None:
    """A new replica count changes the config hash but not the task hash (no rolling restart)."""
    two, three = _desired(tmp_path), _desired(tmp_path, replicas=3)
    assert two.services["web"].config_hash != three.services["web"].config_hash
    assert two.services["web"].task_hash == three.services["web"].task_hash


def test_noop_plan_changes_nothing(tmp_path: Path) -> None:
    """Planning against what the last deploy created gives only 'ok' actions."""
    want = _desired(tmp_path)
    plan = plan_swarm(want, _observed(want))
    assert plan.changes == ()
    assert {a.kind for a in plan.actions} == {"ok"}


def test_secret_rotation_plan(tmp_path: Path) -> None:
    """A new value creates a new secret, updates its consumer only, and removes the old secret."""
    old = _desired(tmp_path, token=b"v1")
    new = _desired(tmp_path, token=b"v2")
    plan = plan_swarm(new, _observed(old))
    kinds = [(a.kind, a.service or a.resource) for a in plan.changes]
    assert ("create-secret", f"secret shop_token_{KEYS.digest(b'v2')[:12]}") in kinds
    assert ("update-service", "web") in kinds
    assert ("remove-secret", f"secret shop_token_{KEYS.digest(b'v1')[:12]}") in kinds
    assert not any(a.service == "db" for a in plan.changes)
    update = next(a for a in plan.changes if a.kind == "update-service")
    assert "secrets" in update.reason
    remove = next(a for a in plan.changes if a.kind == "remove-secret")
    assert remove.reason == "replaced by a new version"


def test_removed_service_is_planned_for_removal(tmp_path: Path) -> None:
    """A service the spec no longer has is removed."""
    want = _desired(tmp_path)
    extra = ObservedService("id-x", "shop_old", 3, {labels.SERVICE: "old"}, 1)
    observed = _observed(want)
    plan = plan_swarm(want, replace(observed, services=(*observed.services, extra)))
    assert [(a.kind, a.name) for a in plan.changes] == [("remove-service", "id-x")]


def test_update_order(tmp_path: Path) -> None:
    """start-first unless a writable volume or a fixed host-mode port forbids two tasks at once."""
    vip = _desired(tmp_path)
    assert vip.services["web"].spec.update_order == "start-first"  # fixed port, routing mesh
    assert vip.services["db"].spec.update_order == "stop-first"  # writable named volume
    assert "pgdata" in vip.services["db"].order_reason
    dnsrr = _desired(tmp_path, endpoint="dnsrr")
    assert dnsrr.services["web"].spec.update_order == "stop-first"
    assert dnsrr.services["web"].spec.ports[0].mode == "host"
    assert vip.services["web"].spec.ports[0].mode == "ingress"


@pytest.mark.parametrize(
    ("restart", "condition"),
    [("no", "none"), ("on-failure", "on-failure"), ("always", "any"), ("unless-stopped", "any")],
)
def test_restart_condition(restart: str, condition: str) -> None:
    """Each restart policy has its swarm restart condition."""
    assert restart_condition(restart) == condition


def test_notes_report_what_swarm_cannot_express(tmp_path: Path) -> None:
    """host_ip, depends_on and restart 'no' are reported, not dropped silently."""
    notes = "\n".join(_desired(tmp_path).notes)
    assert "services.web.ports: host_ip 127.0.0.1" in notes
    assert "services.web.depends_on:" in notes
    assert "services.db.restart:" in notes


def test_tmpfs_options() -> None:
    """size and mode become tmpfs options; anything else is returned as inexpressible."""
    mount, rest = parse_tmpfs("/run", "size=16m,mode=1777,noexec")
    assert (mount.size_bytes, mount.mode, rest) == (16 * 1024**2, 0o1777, ["noexec"])


def test_payload_maps_entrypoint_and_command(tmp_path: Path) -> None:
    """entrypoint becomes ContainerSpec.Command and command becomes Args, as swarm names them."""
    web = _desired(tmp_path).services["web"].spec
    body = service_payload(web, {})
    c = body["TaskTemplate"]["ContainerSpec"]
    assert (c["Command"], c["Args"]) == (["/init"], ["serve"])
    assert body["Mode"] == {"Replicated": {"Replicas": 2}}
    assert body["UpdateConfig"]["Order"] == "start-first"
    assert body["EndpointSpec"]["Ports"][0]["PublishedPort"] == 8080
    db = service_payload(_desired(tmp_path).services["db"].spec, {})
    mounts = db["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert mounts[0]["Source"] == "shop_pgdata" and "VolumeOptions" in mounts[0]
    assert mounts[1]["TmpfsOptions"] == {"SizeBytes": 16 * 1024**2, "Mode": 0o1777}


# --------------------------------------------------------------------------- waiting


def _task(
    service_id: str, task_hash: str, state: str = "running", desired: str = "running", **kw: Any
) -> ObservedTask:
    return ObservedTask(
        id=kw.pop("id", f"t{state}"),
        service_id=service_id,
        slot=kw.pop("slot", 1),
        node_id="n",
        state=state,
        desired_state=desired,
        task_hash=task_hash,
        **kw,
    )


def test_service_state(tmp_path: Path) -> None:
    """A service is running once its replicas run the current spec, and failed after repeated task failures or a rollback."""
    svc = _desired(tmp_path).services["web"]
    obs = ObservedService("sid", "shop_web", 5, {}, 2, update_state="completed")
    cur, old = svc.task_hash, "old"
    running = [_task("sid", cur, id="a"), _task("sid", cur, id="b", slot=2)]
    assert service_state(svc, obs, running)[0] == "running"
    assert (
        service_state(svc, obs, [*running[:1], _task("sid", old, id="c", slot=2)])[0]
        == "converging"
    )
    failures = [
        _task("sid", cur, "failed", "shutdown", id=f"f{i}", error="boom", timestamp=str(i))
        for i in range(3)
    ]
    state, detail = service_state(svc, obs, failures)
    assert state == "failed" and "boom" in detail
    # Old failures do not matter once the replicas run.
    assert service_state(svc, obs, [*failures, *running])[0] == "running"
    rolled = replace(
        obs,
        update_state="rollback_completed",
        update_message="update rolled back",
        update_started="t2",
    )
    assert service_state(svc, rolled, running, update_baseline="t1")[0] == "failed"
    # An old rollback, before this deploy (or a service it did not touch), is history.
    assert service_state(svc, rolled, running, update_baseline="t2")[0] == "running"
    assert service_state(svc, rolled, running)[0] == "running"
    updating = replace(obs, update_state="updating", update_started="t2")
    assert service_state(svc, updating, running, update_baseline="t1")[0] == "converging"
    assert service_state(svc, None, [])[0] == "converging"


# --------------------------------------------------------------------------- an in-memory swarm


def _service_names(engine: FakeSwarm) -> dict[str, str]:
    return {s.id: s.name for s in engine.list_services({})}


def test_deploy_then_noop_then_rotation_on_a_fake_swarm(tmp_path: Path) -> None:
    """A first deploy creates everything, a second changes nothing, a rotation removes the old secret last."""
    engine = FakeSwarm()
    clock = FakeClock()
    deploy(engine, _desired(tmp_path, token=b"v1"), clock=clock)
    kinds = [k for k, _ in engine.journal]
    assert kinds == ["create-network", "create-secret", "create-service", "create-service"]
    engine.journal.clear()
    result = deploy(engine, _desired(tmp_path, token=b"v1"), clock=clock)
    assert engine.journal == [] and result.plan.changes == ()
    deploy(engine, _desired(tmp_path, token=b"v2"), clock=clock)
    assert [k for k, _ in engine.journal] == ["create-secret", "update-service", "remove-secret"]
    assert engine.journal[1] == ("update-service", "shop_web")


def test_down_on_a_fake_swarm_removes_everything(tmp_path: Path) -> None:
    """down removes the services first, then the secrets and the network."""
    engine = FakeSwarm()
    deploy(engine, _desired(tmp_path), clock=FakeClock())
    engine.journal.clear()
    result = down(engine, "shop", clock=FakeClock())
    assert [k for k, _ in engine.journal] == [
        "remove-service",
        "remove-service",
        "remove-secret",
        "remove-network",
    ]
    assert not engine.list_services({}) and not engine.list_secrets({})
    assert not engine.list_swarm_networks({})
    assert result.warnings == []


def test_a_failing_service_fails_the_deploy(tmp_path: Path) -> None:
    """Tasks that keep failing make deploy raise EnvironmentFailed naming the service."""
    engine = FakeSwarm()
    engine.crash_loop("shop_db", exit_code=1, times=3)
    with pytest.raises(EnvironmentFailed) as info:
        deploy(engine, _desired(tmp_path), clock=FakeClock())
    assert [f.service for f in info.value.failures] == ["db"]
    assert "non-zero exit" in info.value.failures[0].reason


def test_deploy_times_out_with_the_last_detail(tmp_path: Path) -> None:
    """A service that never gets its tasks running fails at the deadline, saying how far it got."""
    engine = FakeSwarm()
    engine.on_list_tasks = lambda tasks: []
    clock = FakeClock()
    with pytest.raises(EnvironmentFailed) as info:
        deploy(engine, _desired(tmp_path), timeout=5, clock=clock)
    assert "did not converge within 5s" in info.value.failures[0].reason
    assert clock.now >= 1005


@pytest.mark.parametrize(
    ("state", "manager", "words"),
    [
        ("inactive", False, "docker swarm init"),
        ("active", False, "worker"),
        ("locked", False, "unlock"),
    ],
)
def test_not_a_swarm_manager_is_a_usage_error(state: str, manager: bool, words: str) -> None:
    """An engine that does not manage an active swarm is refused with exit code 2 and a hint."""
    with pytest.raises(NotSwarmManager) as info:
        require_manager(FakeSwarm(manager, state))
    assert info.value.exit_code == 2
    assert "is not a swarm manager" in str(info.value) and words in str(info.value)
    require_manager(FakeSwarm(True, "active"))


def test_a_crash_loop_without_healthcheck_is_not_ready(tmp_path: Path) -> None:
    """A service without a healthcheck whose tasks keep failing between polls is not reported ready."""
    engine = FakeSwarm()
    polls = {"n": 0}

    def crashing(tasks: list[ObservedTask]) -> list[ObservedTask]:
        polls["n"] += 1
        names = _service_names(engine)
        out: list[ObservedTask] = []
        for t in tasks:
            out.append(t)
            if names[t.service_id] == "shop_db":  # up between crashes, one more failure each poll
                out += [
                    replace(
                        t,
                        id=f"{t.id}-f{i}",
                        state="failed",
                        desired_state="shutdown",
                        error="crash",
                        timestamp=str(i),
                    )
                    for i in range(polls["n"])
                ]
        return out

    engine.on_list_tasks = crashing
    with pytest.raises(EnvironmentFailed) as info:
        deploy(engine, _desired(tmp_path), timeout=10, clock=FakeClock())
    assert [f.service for f in info.value.failures] == ["db"]


def test_the_lock_pins_the_image_a_swarm_service_runs(tmp_path: Path) -> None:
    """With envd.lock, the service runs the locked digest instead of the tag."""
    from envd.inputs import lock as lockfile
    from envd.inputs.prepare import Target, prepare

    (tmp_path / "envd.toml").write_text(SPEC.format(mode="a"))
    locked = "acme/web@sha256:" + "ab" * 32
    lockfile.write(
        tmp_path,
        lockfile.Lock(
            {
                "default": lockfile.LockedEnvironment(
                    "sha256:x",
                    {"web": lockfile.LockedService("acme/web:1", locked, "sha256:id", "")},
                )
            }
        ),
    )
    loaded, desired = prepare(Target(str(tmp_path)), environ={"TOKEN": "x"})
    want = desire_swarm(desired, loaded, {locked: None})
    assert want.services["web"].spec.container.image == locked
    assert "dev.envd.image-id" not in want.services["web"].spec.container.labels


def test_status_lists_secret_versions_by_state_and_never_a_value(tmp_path: Path) -> None:
    """`status --target swarm` names each secret version: current, pending (not deployed) and
    the previous one a rotation leaves until the deploy; never a value."""
    engine = FakeSwarm()
    deploy(engine, _desired(tmp_path, token=b"v1"), clock=FakeClock())
    v1 = f"shop_token_{KEYS.digest(b'v1')[:12]}"
    v2 = f"shop_token_{KEYS.digest(b'v2')[:12]}"

    now = swarm_status(engine, "shop", _desired(tmp_path, token=b"v1"))
    assert [(r["name"], r["swarm_name"], r["state"], r["services"]) for r in now["secrets"]] == [
        ("token", v1, "current", ["web"])
    ]
    assert now["configs"] == []

    rotated = swarm_status(engine, "shop", _desired(tmp_path, token=b"v2"))
    assert [(r["swarm_name"], r["state"], r["services"]) for r in rotated["secrets"]] == [
        (v1, "previous version", ["web"]),  # what the swarm runs until the deploy
        (v2, "not deployed", ["web"]),
    ]
    web = next(s for s in rotated["services"] if s["name"] == "web")
    assert web["drift"] == "changed: secrets"
    assert "v2" not in json.dumps(rotated) and "v1" not in json.dumps(rotated).replace(v1, "")

    deploy(engine, _desired(tmp_path, token=b"v2"), clock=FakeClock())
    after = swarm_status(engine, "shop", _desired(tmp_path, token=b"v2"))
    assert [(r["swarm_name"], r["state"]) for r in after["secrets"]] == [(v2, "current")]

    # The spec did not load (no desired state): versions are listed as deployed.
    blind = swarm_status(engine, "shop", None)
    assert [(r["name"], r["state"]) for r in blind["secrets"]] == [("token", "deployed")]


def test_status_lists_a_secret_no_longer_in_the_spec(tmp_path: Path) -> None:
    """A version whose key the spec dropped is "not in the spec" until a deploy removes it."""
    engine = FakeSwarm()
    deploy(engine, _desired(tmp_path), clock=FakeClock())
    want = _desired(tmp_path)
    without = replace(want, secrets={})
    report = swarm_status(engine, "shop", without)
    assert [(r["state"], r["services"]) for r in report["secrets"]] == [
        ("not in the spec", ["web"])
    ]
