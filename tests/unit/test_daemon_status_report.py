"""The daemon's status answer (issue 15): it reuses the last plan only while the
engine, observed afresh on every request, is unchanged; a change made outside
envd (no pass in between) shows in the very next answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.values.types import ObservedContainer
from tests.helpers import BUSYBOX
from tests.helpers import DaemonWorld as World


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.reconciler.trigger("start")
    w.run_next()
    return w


def _service(report: dict[str, object], name: str) -> dict[str, object]:
    services = report["services"]
    assert isinstance(services, list)
    return next(s for s in services if s["name"] == name)


def test_status_over_an_unchanged_engine_plans_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked twice with nothing changed, status observes the engine twice but plans
    once, and both answers are the same."""
    r = world.reconciler
    listed: list[str] = []
    real = world.engine.list_containers

    def counting(project: str) -> list[ObservedContainer]:
        listed.append(project)
        return real(project)

    monkeypatch.setattr(world.engine, "list_containers", counting)
    first = r.status()
    planned = r.plans.planned
    second = r.status()
    assert r.plans.planned == planned
    assert listed == ["unitd", "unitd"]
    assert first == second
    assert first["in_sync"] is True


def test_a_container_removed_outside_envd_shows_in_the_next_status(world: World) -> None:
    """A container removed behind envd's back (no pass since) is missing in the next answer."""
    r = world.reconciler
    assert _service(r.status(), "web")["actual"] == "1 running"
    world.engine.remove_container(world.containers()["unitd-web-1"].id)
    report = r.status()
    web = _service(report, "web")
    assert (web["actual"], web["containers"], web["in_sync"]) == ("0 running", [], False)
    assert web["drift"] == ["create: does not exist"]
    assert report["in_sync"] is False
    assert _service(report, "worker")["in_sync"] is True


def test_a_network_removed_outside_envd_shows_in_the_next_status(world: World) -> None:
    """With its containers stopped outside envd, the project's network removed too:
    the next answer names the missing network as project drift."""
    r = world.reconciler
    for c in world.containers().values():
        world.engine.stop_container(c.id, 0)
    stopped = r.status()
    assert stopped["drift"] == []
    world.engine.remove_network("unitd_default")
    report = r.status()
    assert report["drift"] == ["create-network network unitd_default: does not exist"]
    assert report["in_sync"] is False
    # Nothing else moved: the services read as they did a moment ago.
    assert report["services"] == stopped["services"]


def test_an_image_removed_outside_envd_shows_in_the_next_status(world: World) -> None:
    """An image removed behind envd's back shows as a pull each service needs."""
    r = world.reconciler
    assert r.status()["in_sync"] is True
    world.engine.remove_image(BUSYBOX)
    report = r.status()
    assert "pull: image not present locally" in _service(report, "web")["drift"]
    assert report["in_sync"] is False


def test_a_new_pass_plans_status_afresh(world: World) -> None:
    """After a pass loads a new desired state, status plans against it (an edit
    applied shows as in sync, with the new container)."""
    r = world.reconciler
    before = _service(r.status(), "web")["containers"]
    world.write(web="blue")
    r.trigger("files changed: envd.toml")
    world.run_next()
    planned = r.plans.planned
    report = r.status()
    assert r.plans.planned == planned + 1
    assert report["in_sync"] is True
    assert _service(report, "web")["containers"] != before


def test_make_plan_never_reads_what_observed_equality_leaves_out(world: World) -> None:
    """The plan reused while observations compare equal must not depend on a container
    field equality ignores (``status_text``, ``volumes``): make_plan never reads one."""
    import dataclasses

    from envd.core.observed import Observed
    from envd.core.plan import make_plan
    from envd.run.observe import observe

    ignored = {f.name for f in dataclasses.fields(ObservedContainer) if not f.compare}
    assert ignored == {"status_text", "volumes"}

    class Watched(ObservedContainer):
        def __getattribute__(self, name: str) -> object:
            if name in ignored:
                raise AssertionError(f"make_plan read {name}")
            return super().__getattribute__(name)

    desired = world.reconciler.desired
    assert desired is not None
    seen = observe(world.engine, desired.project, [BUSYBOX])
    watched = tuple(
        Watched(**{f.name: getattr(c, f.name) for f in dataclasses.fields(c)})
        for c in seen.containers
    )
    plan = make_plan(desired, Observed(watched, seen.networks, seen.volumes, seen.images))
    assert [a.kind for a in plan.actions] == ["ok", "ok"]
