"""The plan: a pure comparison of desired and observed state, with a reason per action."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from envd.core.desired import DesiredProject, container_for, desire
from envd.core.observed import Observed
from envd.core.plan import MUTATING, Action, Plan, make_plan, summarize
from envd.spec.load import load
from envd.values import labels
from envd.values.keys import Keys
from envd.values.types import ObservedContainer, ObservedImage, ObservedNetwork, ObservedVolume

DB_IMAGE = "sha256:" + "d" * 64
API_IMAGE = "sha256:" + "a" * 64

SPEC = """\
[project]
name = "shop"

[services.db]
image = "postgres:16"
volumes = ["pgdata:/var/lib/postgresql/data"]
healthcheck = { test = "pg_isready", interval = "1s" }

[services.api]
image = "api:1"
depends_on = { db = "healthy" }
command = ["serve"]
stop_grace_period = "3s"

[volumes.pgdata]
"""


# Secret digests use a fixed key, never the user's key file.
KEYS = Keys(b"unit-test-hash-key")


def desired_from(
    root: Path, spec: str = SPEC, build_digests: Mapping[str, str] | None = None
) -> DesiredProject:
    (root / "envd.toml").write_text(spec)
    return desire(load(root, environ={}), {}, build_digests, keys=KEYS)


ALL_IMAGES = {
    "postgres:16": ObservedImage("postgres:16", DB_IMAGE),
    "api:1": ObservedImage("api:1", API_IMAGE),
}
IMAGE_IDS = {"db": DB_IMAGE, "api": API_IMAGE}


def live(
    desired: DesiredProject,
    service: str,
    replica: int = 1,
    *,
    status: str = "running",
    exit_code: int | None = None,
    image_id: str | None = None,
    name: str | None = None,
    cid: str | None = None,
) -> ObservedContainer:
    """The container ``apply`` would have created for this replica, as observed now."""
    want = container_for(
        desired, desired.services[service], replica, image_id or IMAGE_IDS[service]
    )
    return ObservedContainer(
        id=cid or f"id-{service}-{replica}",
        name=name or want.name,
        labels=dict(want.labels),
        status=status,
        exit_code=exit_code,
        image_id=image_id or IMAGE_IDS[service],
    )


def converged(desired: DesiredProject, **extra: object) -> Observed:
    """Everything the desired project wants, running."""
    containers = [
        live(desired, name, r)
        for name, svc in desired.services.items()
        for r in range(1, svc.replicas + 1)
    ]
    return Observed(
        containers=tuple(containers),
        networks=tuple(
            ObservedNetwork(f"net-{n.name}", n.name, dict(n.labels))
            for n in desired.networks.values()
        ),
        volumes=tuple(ObservedVolume(v.name, dict(v.labels)) for v in desired.volumes.values()),
        images=dict(ALL_IMAGES),
    )


def kinds(plan: Plan, service: str | None = None) -> list[str]:
    actions = plan.actions if service is None else plan.for_service(service)
    return [a.kind for a in actions]


def only(plan: Plan, kind: str) -> Action:
    (action,) = [a for a in plan.actions if a.kind == kind]
    return action


# --------------------------------------------------------------------------- basics


def test_create_everything_on_empty_engine(tmp_path: Path) -> None:
    """Against an empty engine, the plan pulls images and creates network, volume, containers."""
    desired = desired_from(tmp_path)
    plan = make_plan(desired, Observed(images={"postgres:16": None, "api:1": None}))
    assert kinds(plan) == ["pull", "pull", "create-network", "create-volume", "pending", "pending"]
    assert only(plan, "create-network").name == "shop_default"
    assert only(plan, "create-volume").name == "shop_pgdata"
    assert {a.reason for a in plan.actions if a.kind == "pull"} == {"image not present locally"}
    # Once the images are there, containers are created in dependency order.
    plan = make_plan(desired, Observed(images=ALL_IMAGES))
    creates = [a for a in plan.actions if a.kind == "create"]
    assert [(a.service, a.name, a.reason) for a in creates] == [
        ("db", "shop-db-1", "does not exist"),
        ("api", "shop-api-1", "does not exist"),
    ]
    assert creates[0].container is not None
    assert creates[0].container.labels[labels.CONFIG_HASH]
    assert creates[1].stop_timeout == 3


def test_noop_when_converged(tmp_path: Path) -> None:
    """When every hash matches and everything runs, the plan has no mutating action."""
    desired = desired_from(tmp_path)
    plan = make_plan(desired, converged(desired))
    assert plan.changes == ()
    assert not any(a.mutating for a in plan.actions)
    assert kinds(plan) == ["ok", "ok"]
    assert plan.problems == ()
    assert plan.to_json()["changes"] == 0


@pytest.mark.parametrize("status", ["running", "restarting", "paused"])
def test_live_states_are_ok(tmp_path: Path, status: str) -> None:
    """A running, restarting or paused container with a matching hash is left alone."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    observed = replace(
        observed,
        containers=tuple(
            replace(c, status=status) if c.service == "api" else c for c in observed.containers
        ),
    )
    (action,) = make_plan(desired, observed).for_service("api")
    assert action.kind == "ok"
    assert status in action.reason


# --------------------------------------------------------------------------- recreate


def test_recreate_names_the_changed_field(tmp_path: Path) -> None:
    """A changed command recreates only that service, and the reason says ``command``."""
    old = desired_from(tmp_path)
    observed = converged(old)
    new = desired_from(tmp_path, SPEC.replace('command = ["serve"]', 'command = ["serve", "-v"]'))
    plan = make_plan(new, observed)
    assert kinds(plan) == ["ok", "recreate"]
    action = only(plan, "recreate")
    assert action.service == "api"
    assert action.reason == "changed: command"
    assert action.container_id == "id-api-1"
    assert action.container is not None and action.container.command == ("serve", "-v")
    assert action.stop_timeout == 3


def test_recreate_when_image_id_moves(tmp_path: Path) -> None:
    """A tag that now points at another image id recreates, naming ``image``."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    moved = dict(ALL_IMAGES, **{"api:1": ObservedImage("api:1", "sha256:" + "e" * 64)})
    plan = make_plan(desired, replace(observed, images=moved))
    assert only(plan, "recreate").reason == "changed: image"


def test_recreate_without_field_hashes(tmp_path: Path) -> None:
    """A container lacking the field-hash label still recreates, with a generic reason."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    stale = tuple(
        replace(
            c,
            labels={
                **{k: v for k, v in c.labels.items() if k != labels.FIELD_HASHES},
                labels.CONFIG_HASH: "old",
            },
        )
        if c.service == "db"
        else c
        for c in observed.containers
    )
    plan = make_plan(desired, replace(observed, containers=stale))
    assert only(plan, "recreate").reason == "configuration changed"


def test_force_recreate(tmp_path: Path) -> None:
    """``force_recreate`` recreates the named services even when nothing changed."""
    desired = desired_from(tmp_path)
    plan = make_plan(desired, converged(desired), force_recreate=frozenset({"db"}))
    assert kinds(plan) == ["recreate", "ok"]
    assert only(plan, "recreate").reason == "recreate forced"


@pytest.mark.parametrize("status", ["dead", "removing"])
def test_dead_containers_are_recreated(tmp_path: Path, status: str) -> None:
    """A dead (or half-removed) container cannot be started again, so it is recreated."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    containers = tuple(
        replace(c, status=status) if c.service == "api" else c for c in observed.containers
    )
    action = only(make_plan(desired, replace(observed, containers=containers)), "recreate")
    assert action.reason == f"container is {status}"


# --------------------------------------------------------------------------- start


@pytest.mark.parametrize(
    ("status", "exit_code", "restart", "kind", "reason"),
    [
        ("created", None, "no", "recreate", "created but never started (possibly incomplete)"),
        ("exited", 1, "no", "start", "exited with code 1"),
        ("exited", 137, "unless-stopped", "start", "exited with code 137"),
        ("exited", 0, "always", "start", "exited with code 0"),
        ("exited", 0, "no", "ok", "completed (exited 0)"),
        ("exited", 0, "on-failure", "ok", "completed (exited 0)"),
        ("exited", 2, "on-failure", "start", "exited with code 2"),
    ],
)
def test_stopped_containers(
    tmp_path: Path, status: str, exit_code: int | None, restart: str, kind: str, reason: str
) -> None:
    """Created or failed containers are started; a one-shot that exited 0 is left alone."""
    spec = SPEC.replace('command = ["serve"]', f'command = ["serve"]\nrestart = "{restart}"')
    desired = desired_from(tmp_path, spec)
    observed = converged(desired)
    containers = tuple(
        replace(c, status=status, exit_code=exit_code) if c.service == "api" else c
        for c in observed.containers
    )
    (action,) = make_plan(desired, replace(observed, containers=containers)).for_service("api")
    assert (action.kind, action.reason) == (kind, reason)
    assert action.container_id == "id-api-1"


def test_daemon_follows_restart_policy(tmp_path: Path) -> None:
    """With ``restart_exited=False`` (the daemon) a failed restart=no container is not restarted."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    containers = tuple(
        replace(c, status="exited", exit_code=3) if c.service == "api" else c
        for c in observed.containers
    )
    observed = replace(observed, containers=containers)
    assert kinds(make_plan(desired, observed), "api") == ["start"]
    assert kinds(make_plan(desired, observed, restart_exited=False), "api") == ["ok"]


# --------------------------------------------------------------------------- removals


def test_orphans_are_removed(tmp_path: Path) -> None:
    """Containers of services no longer in the spec are removed, before anything is created."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    orphan = ObservedContainer(
        "id-old",
        "shop-worker-1",
        {labels.PROJECT: "shop", labels.SERVICE: "worker", labels.REPLICA: "1"},
        "running",
    )
    unowned = ObservedContainer("id-x", "shop-x", {labels.PROJECT: "shop"}, "exited", exit_code=0)
    plan = make_plan(desired, replace(observed, containers=(*observed.containers, orphan, unowned)))
    removes = [a for a in plan.actions if a.kind == "remove"]
    assert [(a.container_id, a.reason) for a in removes] == [
        ("id-x", "not owned by a service"),
        ("id-old", "service 'worker' is no longer in the spec"),
    ]
    assert kinds(plan) == ["remove", "remove", "ok", "ok"]


def test_scale_down_removes_extras(tmp_path: Path) -> None:
    """Replicas above the desired count are removed; the rest stay."""
    three = desired_from(
        tmp_path, SPEC.replace('command = ["serve"]', 'command = ["serve"]\nreplicas = 3')
    )
    observed = converged(three)
    one = desired_from(tmp_path)
    plan = make_plan(one, observed)
    removes = [a for a in plan.for_service("api") if a.kind == "remove"]
    assert [(a.name, a.replica, a.reason) for a in removes] == [
        ("shop-api-2", 2, "scaled down to 1 replica(s)"),
        ("shop-api-3", 3, "scaled down to 1 replica(s)"),
    ]
    assert all(a.stop_timeout == 3 for a in removes)
    assert kinds(plan, "api") == ["remove", "remove", "ok"]


def test_scale_up_creates_missing_replicas(tmp_path: Path) -> None:
    """New replicas are created next to the existing one, which is kept."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    three = desired_from(
        tmp_path, SPEC.replace('command = ["serve"]', 'command = ["serve"]\nreplicas = 3')
    )
    plan = make_plan(three, observed)
    assert [(a.kind, a.replica) for a in plan.for_service("api")] == [
        ("ok", 1),
        ("create", 2),
        ("create", 3),
    ]


def test_scale_to_zero(tmp_path: Path) -> None:
    """``replicas = 0`` removes every container of the service."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    zero = desired_from(
        tmp_path, SPEC.replace('command = ["serve"]', 'command = ["serve"]\nreplicas = 0')
    )
    assert kinds(make_plan(zero, observed), "api") == ["remove"]


def test_leftovers_of_interrupted_recreate_are_removed(tmp_path: Path) -> None:
    """A second container in a replica's slot (a half-done change) is removed; the real one stays."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    leftover = live(desired, "api", name="shop-api-1-old", cid="id-leftover", status="exited")
    plan = make_plan(desired, replace(observed, containers=(*observed.containers, leftover)))
    assert [(a.kind, a.container_id, a.reason) for a in plan.for_service("api")] == [
        ("remove", "id-leftover", "left over from an interrupted change"),
        ("ok", "id-api-1", "up to date (running)"),
    ]


def test_leftover_alone_means_create(tmp_path: Path) -> None:
    """When only a leftover survives an interrupted recreate, it goes and the replica is created."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    leftover = live(desired, "api", name="shop-api-1-old", cid="id-leftover")
    containers = (*(c for c in observed.containers if c.service != "api"), leftover)
    plan = make_plan(desired, replace(observed, containers=containers))
    assert kinds(plan, "api") == ["remove", "create"]


def test_orphan_networks_removed_after_containers(tmp_path: Path) -> None:
    """A project network the spec no longer uses is removed, after the container actions."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    stray = ObservedNetwork("net-old", "shop_old", {labels.PROJECT: "shop"})
    plan = make_plan(desired, replace(observed, networks=(*observed.networks, stray)))
    assert kinds(plan) == ["ok", "ok", "remove-network"]
    assert only(plan, "remove-network").name == "shop_old"


def test_volumes_are_never_removed(tmp_path: Path) -> None:
    """A volume the spec no longer declares keeps its data: the plan does not touch it."""
    desired = desired_from(tmp_path)
    observed = converged(desired)
    stray = ObservedVolume("shop_olddata", {labels.PROJECT: "shop"})
    plan = make_plan(desired, replace(observed, volumes=(*observed.volumes, stray)))
    assert plan.changes == ()


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("pull", "present", "expected", "reason"),
    [
        ("missing", False, ["pull"], "image not present locally"),
        ("missing", True, [], ""),
        ("always", True, ["pull"], "pull policy is 'always'"),
        ("always", False, ["pull"], "pull policy is 'always'"),
        ("never", True, [], ""),
        ("never", False, [], ""),
    ],
)
def test_pull_policy(
    tmp_path: Path, pull: str, present: bool, expected: list[str], reason: str
) -> None:
    """Pull policies: missing pulls when absent, always pulls, never never pulls."""
    desired = desired_from(
        tmp_path, SPEC.replace('image = "api:1"', f'image = "api:1"\npull = "{pull}"')
    )
    observed = converged(desired)
    imgs = dict(ALL_IMAGES) if present else {**ALL_IMAGES, "api:1": None}
    plan = make_plan(desired, replace(observed, images=imgs))
    assert [a.kind for a in plan.image_actions] == expected
    if reason:
        assert plan.image_actions[0].reason == reason
        assert plan.image_actions[0].name == "api:1"


def test_pull_never_and_missing_is_a_problem(tmp_path: Path) -> None:
    """``pull = "never"`` with no local image is a problem naming the service, not a pull."""
    desired = desired_from(
        tmp_path, SPEC.replace('image = "api:1"', 'image = "api:1"\npull = "never"')
    )
    plan = make_plan(desired, replace(converged(desired), images={**ALL_IMAGES, "api:1": None}))
    assert plan.image_actions == ()
    (problem,) = plan.problems
    assert "'api'" in str(problem) and "pull = 'never'" in str(problem)
    assert kinds(plan, "api") == ["pending"]


def test_already_pulled_is_not_pulled_again(tmp_path: Path) -> None:
    """In the second planning pass, refs pulled this run are not pulled again (pull = always)."""
    desired = desired_from(
        tmp_path, SPEC.replace('image = "api:1"', 'image = "api:1"\npull = "always"')
    )
    plan = make_plan(desired, converged(desired), pulled=frozenset({"api:1"}))
    assert plan.image_actions == ()


def test_shared_image_pulled_once(tmp_path: Path) -> None:
    """Two services on one missing image give one pull."""
    spec = SPEC.replace('image = "api:1"', 'image = "postgres:16"')
    desired = desired_from(tmp_path, spec)
    plan = make_plan(desired, Observed(images={"postgres:16": None}))
    assert [a.kind for a in plan.image_actions] == ["pull"]


BUILD_SPEC = """\
[project]
name = "shop"

[services.app]
build = "."
"""


def test_build_when_image_missing(tmp_path: Path) -> None:
    """A service with a build and no image yet is built under its project tag."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    desired = desired_from(tmp_path, BUILD_SPEC, {"app": "ctx-1"})
    plan = make_plan(desired, Observed(images={"shop-app:envd": None}))
    action = only(plan, "build")
    assert (action.name, action.reason) == ("shop-app:envd", "image not built yet")
    assert kinds(plan, "app") == ["build", "pending"]


@pytest.mark.parametrize(
    ("label", "expected"),
    [("ctx-1", []), ("ctx-0", ["build"]), (None, ["build"])],
)
def test_build_when_context_digest_differs(
    tmp_path: Path, label: str | None, expected: list[str]
) -> None:
    """A built image whose context-digest label differs from the context is rebuilt."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    desired = desired_from(tmp_path, BUILD_SPEC, {"app": "ctx-1"})
    image_labels = {labels.CONTEXT_DIGEST: label} if label else {}
    image = ObservedImage("shop-app:envd", "sha256:" + "b" * 64, image_labels)
    plan = make_plan(desired, Observed(images={"shop-app:envd": image}))
    assert [a.kind for a in plan.image_actions] == expected
    if expected:
        assert plan.image_actions[0].reason == "build context changed"
        assert kinds(plan, "app") == ["build", "pending"]
    else:
        assert kinds(plan, "app") == ["create"]


def test_built_this_run_is_not_rebuilt(tmp_path: Path) -> None:
    """After a build this run, a stale digest label does not trigger another build."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    desired = desired_from(tmp_path, BUILD_SPEC, {"app": "ctx-1"})
    image = ObservedImage("shop-app:envd", "sha256:" + "b" * 64, {labels.CONTEXT_DIGEST: "x"})
    plan = make_plan(
        desired, Observed(images={"shop-app:envd": image}), pulled=frozenset({"shop-app:envd"})
    )
    assert plan.image_actions == ()


def test_pending_until_image_known(tmp_path: Path) -> None:
    """Containers whose image is being fetched are ``pending``, keeping their current id."""
    desired = desired_from(tmp_path)
    observed = replace(converged(desired), images={**ALL_IMAGES, "api:1": None})
    plan = make_plan(desired, observed)
    action = [a for a in plan.for_service("api") if a.kind != "pull"]
    assert [(a.kind, a.reason, a.container_id) for a in action] == [
        ("pending", "waiting for its image", "id-api-1")
    ]
    assert not action[0].mutating


# --------------------------------------------------------------------------- networks, volumes, order


def test_missing_networks_and_volumes_are_created(tmp_path: Path) -> None:
    """Declared networks and used named volumes are created when missing; external ones are not."""
    spec = """\
[project]
name = "shop"
[services.s]
image = "img"
networks = ["front", "ext"]
volumes = ["used:/u", "outside:/o"]
[networks.front]
[networks.ext]
external = true
[volumes.used]
[volumes.unused]
[volumes.outside]
external = true
"""
    desired = desired_from(tmp_path, spec)
    plan = make_plan(desired, Observed(images={"img": ObservedImage("img", API_IMAGE)}))
    assert [(a.kind, a.name) for a in plan.actions if a.kind.startswith("create-")] == [
        ("create-network", "shop_front"),
        ("create-volume", "shop_used"),
    ]
    observed = Observed(
        networks=(ObservedNetwork("n1", "shop_front", dict(desired.networks["front"].labels)),),
        volumes=(ObservedVolume("shop_used", {}),),
        images={"img": ObservedImage("img", API_IMAGE)},
    )
    assert [a.kind for a in make_plan(desired, observed).actions] == ["create"]


def test_container_actions_follow_dependency_order(tmp_path: Path) -> None:
    """Container actions come in dependency order, whatever the spec's order."""
    spec = """\
[services.web]
image = "img"
depends_on = ["api"]
[services.api]
image = "img"
depends_on = ["db", "cache"]
[services.db]
image = "img"
[services.cache]
image = "img"
"""
    desired = desired_from(tmp_path, spec)
    plan = make_plan(desired, Observed(images={"img": ObservedImage("img", API_IMAGE)}))
    order = [a.service for a in plan.actions if a.kind == "create"]
    assert order == ["cache", "db", "api", "web"]


def test_plan_is_pure_and_repeatable(tmp_path: Path) -> None:
    """Planning twice over the same values gives the same plan."""
    desired = desired_from(tmp_path)
    observed = Observed(images={"postgres:16": None, "api:1": None})
    assert make_plan(desired, observed) == make_plan(desired, observed)


def test_plan_json_and_summary(tmp_path: Path) -> None:
    """The plan serialises to JSON with one entry per action and counts per kind."""
    desired = desired_from(tmp_path)
    plan = make_plan(desired, Observed(images=ALL_IMAGES))
    data = plan.to_json()
    assert data["project"] == "shop"
    assert data["changes"] == len(plan.changes) == 4
    assert {
        "action": "create",
        "resource": "container shop-db-1",
        "reason": "does not exist",
        "service": "db",
        "replica": 1,
        "name": "shop-db-1",
    } in data["actions"]  # type: ignore[operator]
    assert summarize(plan) == {"create-network": 1, "create-volume": 1, "create": 2}
    assert {"create", "recreate", "start", "remove", "pull", "build"} <= MUTATING
    assert "ok" not in MUTATING and "pending" not in MUTATING
