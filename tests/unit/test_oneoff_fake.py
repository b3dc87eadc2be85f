"""``envd run`` on the fake engine, and the networks it shares with ``up``.

A one-off creates the project's networks and volumes by apply's path, so a
network it creates first is what the spec says; the plan compares driver,
internal and labels, so a network that differs is recreated (or reported
while containers are attached to it).
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from envd.core.desired import DesiredNetwork, DesiredProject, desire
from envd.core.networks import network_drift
from envd.core.plan import make_plan
from envd.engine.fake import FakeEngine
from envd.run.converge import converge
from envd.run.observe import observe
from envd.run.oneoff import run_one_off
from envd.spec.load import load
from envd.values import labels
from envd.values.errors import EnvironmentFailed
from envd.values.keys import Keys
from envd.values.types import ObservedNetwork

SPEC = """\
[project]
name = "shop"

[services.db]
image = "pg"
networks = ["backend"]

[services.api]
image = "api"
networks = ["backend", "default"]
ports = ["8080:80"]

[networks.backend]
internal = true
"""


# Secret digests use a fixed key, never the user's key file.
KEYS = Keys(b"unit-test-hash-key")


class ExitingEngine(FakeEngine):
    """A fake whose containers print a line and exit with ``code`` as soon as they start."""

    def __init__(self, code: int = 0) -> None:
        super().__init__()
        self.code = code
        self.add_image("pg")
        self.add_image("api")

    def start_container(self, container_id: str) -> None:
        super().start_container(container_id)
        if self.container_spec(container_id).labels.get(labels.ONE_OFF) == "1":
            self.emit_log(container_id, "hello from the one-off")
            self.exit_container(container_id, self.code)


def desired_from(root: Path, spec: str = SPEC) -> DesiredProject:
    (root / "envd.toml").write_text(textwrap.dedent(spec))
    return desire(load(root, environ={}), {}, keys=KEYS)


def network(engine: FakeEngine, project: str, name: str) -> tuple[str, bool, dict[str, str]]:
    found = {n.name: n for n in engine.list_networks(project)}[name]
    return found.driver, found.internal, dict(found.labels)


def test_run_before_up_creates_an_internal_network_internal(tmp_path: Path) -> None:
    """`envd run` on a fresh project creates the spec's networks with its driver and internal flag."""
    desired = desired_from(tmp_path)
    engine = ExitingEngine()
    assert run_one_off(engine, desired, "db", ["true"], rm=True) == 0
    driver, internal, _ = network(engine, "shop", "shop_backend")
    assert (driver, internal) == ("bridge", True)
    assert network(engine, "shop", "shop_default")[1] is False
    # `up` afterwards finds the networks as the spec says: nothing to repair.
    plan = make_plan(desired, observe(engine, "shop", ["pg", "api"]))
    assert [a.kind for a in plan.actions if "network" in a.kind] == []


def test_up_recreates_a_network_that_differs_when_nothing_is_attached(tmp_path: Path) -> None:
    """A project network that is not internal as the spec says is replaced before containers start."""
    desired = desired_from(tmp_path)
    engine = ExitingEngine()
    backend = desired.networks["backend"]
    engine.create_network(backend.name, dict(backend.labels), "bridge", internal=False)
    plan = make_plan(desired, observe(engine, "shop", ["pg", "api"]))
    recreate = [a for a in plan.actions if a.kind == "recreate-network"]
    assert [(a.name, a.reason) for a in recreate] == [("shop_backend", "changed: internal")]
    converge(engine, desired, wait_ready=False)
    assert network(engine, "shop", "shop_backend")[1] is True
    calls = engine.mutating_calls()
    removed = calls.index(("remove_network", "shop_backend"))
    assert removed < calls.index(("create_container", "shop-db-1"))


def test_a_network_that_differs_with_containers_attached_is_reported_not_removed(
    tmp_path: Path,
) -> None:
    """While the project's containers use a drifted network, the plan names it and changes nothing."""
    desired = desired_from(tmp_path)
    engine = ExitingEngine()
    converge(engine, desired, wait_ready=False)
    backend = desired.networks["backend"]
    # Someone changed the network behind envd's back (here: its labels).
    engine._networks[backend.name].labels = {labels.PROJECT: "shop"}
    plan = make_plan(desired, observe(engine, "shop", ["pg", "api"]))
    assert not [a for a in plan.actions if a.kind == "recreate-network"]
    assert [str(p) for p in plan.problems] == [
        "service 'api': network shop_backend differs from the spec (labels) and containers"
        " are attached to it; run `envd down`, then `envd up` to recreate it"
    ]
    with pytest.raises(EnvironmentFailed):
        converge(engine, desired, wait_ready=False)
    assert ("remove_network", "shop_backend") not in engine.mutating_calls()


def test_one_off_runs_the_command_with_the_service_config_and_removes_itself(
    tmp_path: Path,
) -> None:
    """The one-off is labelled one-off, publishes no port, never restarts, and --rm removes it."""
    desired = desired_from(tmp_path)
    engine = ExitingEngine(code=3)
    assert run_one_off(engine, desired, "api", ["echo", "hi"], rm=True) == 3
    assert engine.list_containers("shop") == []
    created = [c for c in engine.mutating_calls() if c[0] == "create_container"]
    assert len(created) == 1 and created[0][1].startswith("shop-api-run-")


def test_one_off_without_rm_is_kept_and_invisible_to_the_plan(tmp_path: Path) -> None:
    """With --no-rm the container stays; the plan of `up` ignores it (it is no replica)."""
    desired = desired_from(tmp_path)
    engine = ExitingEngine()
    assert run_one_off(engine, desired, "api", ["true"], rm=False) == 0
    (kept,) = engine.list_containers("shop")
    spec = engine.container_spec(kept.id)
    assert spec.labels[labels.ONE_OFF] == "1" and spec.labels[labels.SERVICE] == "api"
    assert spec.ports == () and spec.restart == "no" and spec.command == ("true",)
    plan = make_plan(desired, observe(engine, "shop", ["pg", "api"]))
    assert {a.kind for a in plan.actions if a.service == "api"} == {"create"}


def test_one_off_pulls_only_its_own_missing_image(tmp_path: Path) -> None:
    """A one-off pulls its service's image, not the images of the other services."""
    desired = desired_from(tmp_path)
    engine = ExitingEngine()
    engine.remove_image("pg")
    engine.remove_image("api")
    run_one_off(engine, desired, "db", None, rm=True)
    pulls = [c for c in engine.mutating_calls() if c[0] == "pull_image"]
    assert pulls == [("pull_image", "pg")]


def test_one_off_refuses_a_plan_problem(tmp_path: Path) -> None:
    """An image that may not be pulled fails the one-off (exit 1) before anything is created."""
    desired = desired_from(tmp_path, SPEC.replace('image = "pg"', 'image = "pg"\npull = "never"'))
    engine = ExitingEngine()
    engine.remove_image("pg")
    with pytest.raises(EnvironmentFailed) as caught:
        run_one_off(engine, desired, "api", None, rm=True)
    assert [f.service for f in caught.value.failures] == ["db"]
    assert engine.list_networks("shop") == []


def test_network_drift_names_driver_internal_and_missing_labels_only() -> None:
    """Drift is a driver or internal flag other than the spec's, or a spec label missing or changed."""
    want = DesiredNetwork("backend", "shop_backend", internal=True, labels={"a": "1"})
    same = ObservedNetwork("n", "shop_backend", {"a": "1", "extra": "x"}, "bridge", True)
    assert network_drift(want, same) == []
    assert network_drift(want, replace(same, driver="")) == []  # the engine did not say
    changed = ObservedNetwork("n", "shop_backend", {"a": "2"}, "macvlan", False)
    assert network_drift(want, changed) == ["driver", "internal", "labels"]
