"""``up --once`` after a spec edit: what the change path asks of the engine and leaves behind.

In-process against the fake engine: the CLI's witness questions, and the
recreate (stop, rename aside, create, start, the old one removed meanwhile)
with its failures and crash repair. The lean entry's witness recording
(``envd.cli._lean_up.begin``) talks to a real socket, so it is replaced by a
recorder here; ``tests/unit/test_lean_entry.py`` covers what it writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envd.cli import _lean_up
from envd.core.desired import DesiredProject, desire
from envd.core.plan import aside_name
from envd.engine.fake import FakeEngine
from envd.run.apply import Applier
from envd.run.converge import converge, plan_project
from envd.spec.load import load
from envd.values.errors import EngineError, EnvironmentFailed
from envd.values.events import FakeClock
from envd.values.keys import Keys
from envd.values.types import ContainerCreate
from tests.helpers import cli_in_process

SPEC = """\
[project]
name = "shop"

[services.web]
image = "web:1"
env = { MODE = "dev" }

[services.worker]
image = "worker:1"
"""

pytestmark = pytest.mark.usefixtures("private_state")


@pytest.fixture
def begun(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The projects ``begin`` was asked to witness, in order."""
    calls: list[str] = []

    def record(project: str, refs: Any, environ: Any) -> None:
        calls.append(project)

    monkeypatch.setattr(_lean_up, "begin", record)
    return calls


def test_only_a_run_on_the_cached_desired_state_asks_the_witness_questions(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine, begun: list[str]
) -> None:
    """The witness's engine questions are asked when the desired cache served the spec as
    stored, never after a spec edit (patched or loaded): the change path does not wait on them."""
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # loaded
    assert begun == []
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # a no-op, from the cache
    assert begun == ["shop"]
    (proj / "envd.toml").write_text(SPEC.replace('"dev"', '"prod"'))
    before = {c.service: c.id for c in fake.list_containers("shop")}
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # env edit: patched
    assert begun == ["shop"]
    after = {c.service: c.id for c in fake.list_containers("shop")}
    assert after["worker"] == before["worker"] and after["web"] != before["web"]
    (proj / "envd.toml").write_text(SPEC.replace('"dev"', '"prod"').replace("web:1", "worker:1"))
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # image edit: loaded
    assert begun == ["shop"]
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # a no-op again
    assert begun == ["shop", "shop"]
    assert cli_in_process(capsys, "up", "--once", "--no-wait", "-C", proj)[0] == 0
    assert cli_in_process(capsys, "up", "--once", "--force-recreate", "-C", proj)[0] == 0
    assert begun == ["shop", "shop"]


# --------------------------------------------------------------------------- the recreate


KEYS = Keys(b"unit-test-hash-key")


def _desired(root: Path, spec: str) -> DesiredProject:
    (root / "envd.toml").write_text(spec)
    return desire(load(root, environ={}), {}, keys=KEYS)


def _engine() -> FakeEngine:
    engine = FakeEngine()
    engine.add_image("web:1")
    engine.add_image("worker:1")
    return engine


def _by_name(engine: FakeEngine) -> dict[str, str]:
    return {c.name: c.id for c in engine.list_containers("shop")}


def test_a_recreate_cut_off_after_setting_the_old_container_aside_is_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create failing after the old container was stopped and renamed aside fails the run;
    the next one plans the leftover's removal (an interrupted change) and creates the service."""
    engine = _engine()
    converge(engine, _desired(tmp_path, SPEC), clock=FakeClock(), timeout=60)
    old = _by_name(engine)["shop-web-1"]
    changed = _desired(tmp_path, SPEC.replace('"dev"', '"prod"'))
    real_create = engine.create_container

    def crash(spec: ContainerCreate) -> str:
        raise EngineError("the engine went away mid-change")

    monkeypatch.setattr(engine, "create_container", crash)
    with pytest.raises(EnvironmentFailed):
        converge(engine, changed, clock=FakeClock(), timeout=60)
    assert _by_name(engine) == {"shop-worker-1": _by_name(engine)["shop-worker-1"]}  # removed
    # The same cut-off, with the removal of the old container lost too (a crash).
    monkeypatch.setattr(engine, "create_container", real_create)
    converge(engine, _desired(tmp_path, SPEC), clock=FakeClock(), timeout=60)
    old = _by_name(engine)["shop-web-1"]
    engine.stop_container(old, None)
    engine.rename_container(old, aside_name("shop-web-1", old))
    plan, _ = plan_project(engine, changed)
    assert [(a.kind, a.resource, a.reason) for a in plan.changes] == [
        (
            "remove",
            f"container {aside_name('shop-web-1', old)}",
            "left over from an interrupted change",
        ),
        ("create", "container shop-web-1", "does not exist"),
    ]
    converge(engine, changed, clock=FakeClock(), timeout=60)
    assert set(_by_name(engine)) == {"shop-web-1", "shop-worker-1"}
    assert dict(engine.container_spec(_by_name(engine)["shop-web-1"]).env)["MODE"] == "prod"


def test_an_old_container_that_cannot_be_removed_fails_the_run_after_its_successor_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set-aside container's removal failing fails `up` (naming the service and the
    container), with the new container running under the name; the next run removes it."""
    engine = _engine()
    converge(engine, _desired(tmp_path, SPEC), clock=FakeClock(), timeout=60)
    old = _by_name(engine)["shop-web-1"]
    real_remove = engine.remove_container

    def refuse(container_id: str, volumes: bool = False, mounted: Any = None) -> None:
        raise EngineError("device or resource busy")

    monkeypatch.setattr(engine, "remove_container", refuse)
    changed = _desired(tmp_path, SPEC.replace('"dev"', '"prod"'))
    with pytest.raises(EnvironmentFailed) as info:
        converge(engine, changed, clock=FakeClock(), timeout=60)
    aside = aside_name("shop-web-1", old)
    assert [(f.service, f.reason) for f in info.value.failures] == [
        ("web", f"remove container {aside} failed: device or resource busy")
    ]
    now = _by_name(engine)
    assert set(now) == {"shop-web-1", "shop-worker-1", aside}
    assert {c.name: c.status for c in engine.list_containers("shop")}["shop-web-1"] == "running"
    monkeypatch.setattr(engine, "remove_container", real_remove)
    plan, _ = converge(engine, changed, clock=FakeClock(), timeout=60)
    assert [(a.kind, a.resource) for a in plan.changes] == [("remove", f"container {aside}")]
    assert set(_by_name(engine)) == {"shop-web-1", "shop-worker-1"}


def test_a_recreate_never_runs_two_containers_nor_gives_one_name_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a service is replaced, the new container is created only under a free name
    and started only once the old one has stopped."""
    engine = _engine()
    converge(engine, _desired(tmp_path, SPEC), clock=FakeClock(), timeout=60)
    real_create, real_start = engine.create_container, engine.start_container
    seen: list[str] = []

    def create(spec: ContainerCreate) -> str:
        assert spec.name not in {c.name for c in engine.list_containers("shop")}
        seen.append("create")
        return real_create(spec)

    def start(cid: str) -> None:
        running = [c.name for c in engine.list_containers("shop") if c.status == "running"]
        assert running == ["shop-worker-1"], running
        seen.append("start")
        real_start(cid)

    monkeypatch.setattr(engine, "create_container", create)
    monkeypatch.setattr(engine, "start_container", start)
    converge(
        engine, _desired(tmp_path, SPEC.replace('"dev"', '"prod"')), clock=FakeClock(), timeout=60
    )
    assert seen == ["create", "start"]


def test_recreating_more_services_than_workers_finishes(tmp_path: Path) -> None:
    """Every service recreated at once with two workers: each recreate's side work (the
    create, the removal) runs on a pool of its own, so none waits behind the others."""
    many = "".join(
        f'[services.s{i}]\nimage = "web:1"\nenv = {{ G = "0" }}\n\n' for i in range(6)
    ).replace("[services.s0]", '[project]\nname = "shop"\n\n[services.s0]')
    engine = _engine()
    desired = _desired(tmp_path, many)
    plan, observed = plan_project(engine, desired)
    Applier(engine, desired, clock=FakeClock(), workers=2).apply(plan, observed, timeout=60)
    changed = _desired(tmp_path, many.replace('"0"', '"1"'))
    plan, observed = plan_project(engine, changed)
    assert [a.kind for a in plan.changes] == ["recreate"] * 6
    Applier(engine, changed, clock=FakeClock(), workers=2).apply(plan, observed, timeout=60)
    assert sorted(_by_name(engine)) == [f"shop-s{i}-1" for i in range(6)]
