"""Applying plans against the in-memory FakeEngine, on a fake clock: order, waiting, failures."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from envd.core.desired import DesiredProject, desire
from envd.core.observed import Observed
from envd.core.plan import aside_name, make_plan
from envd.engine.exploding import ExplodingEngine
from envd.engine.fake import FakeEngine
from envd.run.apply import Applier
from envd.run.converge import converge
from envd.run.observe import observe
from envd.run.readiness import COMPLETED, READY
from envd.spec.load import load
from envd.values.errors import EngineError, EnvironmentFailed
from envd.values.events import Event, FakeClock
from envd.values.keys import Keys
from envd.values.types import ContainerCreate

REPO = Path(__file__).resolve().parents[2]


# Secret digests use a fixed key, never the user's key file.
KEYS = Keys(b"unit-test-hash-key")


class HookClock(FakeClock):
    """A fake clock that runs ``hook`` each time the code under test sleeps."""

    def __init__(self, hook: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self.hook = hook

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.hook()


def desired_from(root: Path, spec: str) -> DesiredProject:
    (root / "envd.toml").write_text(textwrap.dedent(spec))
    return desire(load(root, environ={}), {}, keys=KEYS)


def engine_with_images(*refs: str, auto_healthy: bool = True) -> FakeEngine:
    engine = FakeEngine(auto_healthy=auto_healthy)
    for ref in refs:
        engine.add_image(ref)
    return engine


def container_id(engine: FakeEngine, project: str, name: str) -> str | None:
    for c in engine.list_containers(project):
        if c.name == name:
            return c.id
    return None


def index_of(calls: list[tuple[str, ...]], call: tuple[str, ...]) -> int:
    return calls.index(call)


def assert_replaced(calls: list[tuple[str, ...]], old: str, new: str | None, name: str) -> None:
    """A recreate's calls: the old container renamed aside first (freeing the name), then
    stopped while the new one is created, the new one started only once the old one
    stopped, the old one removed once stopped; nothing else."""
    at = calls.index
    assert calls[0] == ("rename_container", old, aside_name(name, old))
    assert sorted(calls) == sorted(
        [
            calls[0],
            ("stop_container", old),
            ("create_container", name),
            ("start_container", new),
            ("remove_container", old),
        ]
    )
    assert at(("stop_container", old)) < at(("start_container", new))
    assert at(("create_container", name)) < at(("start_container", new))
    assert at(("stop_container", old)) < at(("remove_container", old))


HEALTH_GATED = """\
[project]
name = "shop"

[services.db]
image = "pg"
healthcheck = { test = ["CMD", "pg_isready"], interval = "1s" }

[services.api]
image = "api"
depends_on = { db = "healthy" }
"""


def test_healthy_dependency_gates_creation(tmp_path: Path) -> None:
    """A service depending on ``db = "healthy"`` is created only after db reports healthy."""
    desired = desired_from(tmp_path, HEALTH_GATED)
    engine = engine_with_images("pg", "api", auto_healthy=False)
    marks: dict[str, int] = {}

    def hook() -> None:
        # A few polls pass with db running but still "starting" before it turns healthy.
        db = container_id(engine, "shop", "shop-db-1")
        if db is None or "healthy" in marks:
            return
        marks["polls"] = marks.get("polls", 0) + 1
        if marks["polls"] == 5:
            assert container_id(engine, "shop", "shop-api-1") is None
            marks["healthy"] = len(engine.calls)
            engine.set_health(db, "healthy")

    clock = HookClock(hook)
    _, progress = converge(engine, desired, clock=clock, timeout=60)
    calls = engine.mutating_calls()
    assert index_of(calls, ("create_container", "shop-db-1")) < marks["healthy"]
    assert index_of(calls, ("create_container", "shop-api-1")) >= marks["healthy"]
    assert progress["db"].settled == READY and progress["api"].settled == READY
    assert clock.sleeps, "apply waited on the injected clock, not in real time"


ONE_SHOT = """\
[project]
name = "shop"

[services.migrate]
image = "tool"
command = ["migrate"]

[services.api]
image = "api"
depends_on = { migrate = "completed" }
"""


def _exit_migrate(engine: FakeEngine, code: int) -> Callable[[], None]:
    def hook() -> None:
        cid = container_id(engine, "shop", "shop-migrate-1")
        if cid is not None and engine.container_state(cid).status == "running":
            engine.exit_container(cid, code)

    return hook


def test_completed_dependency_satisfied_by_exit_zero(tmp_path: Path) -> None:
    """A one-shot that exits 0 satisfies ``completed``; its dependent then starts."""
    desired = desired_from(tmp_path, ONE_SHOT)
    engine = engine_with_images("tool", "api")
    _, progress = converge(engine, desired, clock=HookClock(_exit_migrate(engine, 0)), timeout=60)
    # Seen running first, so it may have settled as ready before it completed.
    assert progress["migrate"].settled in (READY, COMPLETED)
    (migrate,) = [c for c in engine.list_containers("shop") if c.service == "migrate"]
    assert (migrate.status, migrate.exit_code) == ("exited", 0)
    assert progress["api"].settled == READY
    calls = engine.mutating_calls()
    assert ("create_container", "shop-api-1") in calls


def test_completed_dependency_failing_fails_dependents(tmp_path: Path) -> None:
    """A one-shot exiting non-zero fails, and its dependent fails without being created."""
    desired = desired_from(tmp_path, ONE_SHOT)
    engine = engine_with_images("tool", "api")
    with pytest.raises(EnvironmentFailed) as info:
        converge(engine, desired, clock=HookClock(_exit_migrate(engine, 3)), timeout=60)
    failures = {f.service: f.reason for f in info.value.failures}
    assert set(failures) == {"api", "migrate"}
    assert "exited with code 3" in failures["migrate"]
    assert "dependency 'migrate'" in failures["api"]
    assert ("create_container", "shop-api-1") not in engine.mutating_calls()
    assert info.value.exit_code == 1


TWO = """\
[project]
name = "shop"

[services.db]
image = "pg"
volumes = ["data:/data"]

[services.api]
image = "api"
command = ["serve"]
depends_on = ["db"]

[volumes.data]
"""


def test_second_converge_makes_no_mutating_call(tmp_path: Path) -> None:
    """Converging an already converged project calls nothing that changes the engine."""
    desired = desired_from(tmp_path, TWO)
    engine = engine_with_images("pg", "api")
    converge(engine, desired, clock=FakeClock(), timeout=60)
    first = engine.mutating_calls()
    assert ("create_network", "shop_default") in first
    assert ("create_volume", "shop_data") in first
    engine.calls.clear()
    plan, progress = converge(engine, desired_from(tmp_path, TWO), clock=FakeClock(), timeout=60)
    assert engine.mutating_calls() == []
    assert plan.changes == ()
    assert {p.settled for p in progress.values()} == {READY}


def test_one_changed_service_is_recreated_and_no_other(tmp_path: Path) -> None:
    """Changing one service's command recreates that service's container only."""
    engine = engine_with_images("pg", "api")
    converge(engine, desired_from(tmp_path, TWO), clock=FakeClock(), timeout=60)
    old_api = container_id(engine, "shop", "shop-api-1")
    old_db = container_id(engine, "shop", "shop-db-1")
    engine.calls.clear()
    changed = desired_from(tmp_path, TWO.replace('["serve"]', '["serve", "--debug"]'))
    plan, _ = converge(engine, changed, clock=FakeClock(), timeout=60)
    assert [(a.kind, a.service, a.reason) for a in plan.changes] == [
        ("recreate", "api", "changed: command")
    ]
    new_api = container_id(engine, "shop", "shop-api-1")
    assert_replaced(engine.mutating_calls(), old_api, new_api, "shop-api-1")
    assert container_id(engine, "shop", "shop-db-1") == old_db
    assert engine.container_spec(new_api or "").command == ("serve", "--debug")


def test_timeout_is_reported_naming_the_service(tmp_path: Path) -> None:
    """A service that never turns healthy times out as EnvironmentFailed naming it."""
    desired = desired_from(tmp_path, HEALTH_GATED)
    engine = engine_with_images("pg", "api", auto_healthy=False)
    clock = FakeClock()
    start = clock.monotonic()
    with pytest.raises(EnvironmentFailed) as info:
        converge(engine, desired, clock=clock, timeout=30)
    failures = {f.service: f.reason for f in info.value.failures}
    assert failures["db"] == "timed out waiting to become ready (state: running, health starting)"
    assert failures["api"] == "timed out waiting for its dependencies"
    assert "service 'db'" in str(info.value)
    assert 30 <= clock.monotonic() - start < 31
    assert ("create_container", "shop-api-1") not in engine.mutating_calls()


class FakePodman(FakeEngine):
    """A FakeEngine reporting itself as Podman, as DockerEngine does on Podman's socket."""

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "name": "Podman", "version": "4.3.1"}


def test_timeout_on_podman_says_healthchecks_need_systemd(tmp_path: Path) -> None:
    """On Podman, a service whose health stays "starting" times out saying Podman needs systemd to run healthchecks."""
    desired = desired_from(tmp_path, HEALTH_GATED)
    engine = FakePodman(auto_healthy=False)
    for ref in ("pg", "api"):
        engine.add_image(ref)
    with pytest.raises(EnvironmentFailed) as info:
        converge(engine, desired, clock=FakeClock(), timeout=30)
    failures = {f.service: f.reason for f in info.value.failures}
    assert failures["db"] == (
        "timed out waiting to become ready (state: running, health starting); Podman runs"
        " healthchecks from systemd timers, so without systemd they never run"
        " (docs/compatibility.md, Podman)"
    )
    assert failures["api"] == "timed out waiting for its dependencies"
    assert "service 'db'" in str(info.value)


class FailingCreate(FakeEngine):
    """A FakeEngine that refuses to create one named container."""

    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse = refuse

    def create_container(self, spec: ContainerCreate) -> str:
        if spec.name == self.refuse:
            raise EngineError(f"cannot create {spec.name}: no space left on device", 500)
        return super().create_container(spec)


def test_engine_failure_during_create_is_reported_for_that_service_only(tmp_path: Path) -> None:
    """An engine error creating one service fails that service; independent ones still run."""
    spec = """\
    [project]
    name = "shop"
    [services.a]
    image = "img"
    [services.b]
    image = "img"
    [services.c]
    image = "img"
    """
    desired = desired_from(tmp_path, spec)
    engine = FailingCreate("shop-b-1")
    engine.add_image("img")
    events: list[Event] = []
    with pytest.raises(EnvironmentFailed) as info:
        converge(engine, desired, emit=events.append, clock=FakeClock(), timeout=60)
    (failure,) = info.value.failures
    assert failure.service == "b"
    assert "no space left on device" in failure.reason
    running = {c.name for c in engine.list_containers("shop") if c.status == "running"}
    assert running == {"shop-a-1", "shop-c-1"}
    assert any(e.phase == "error" and e.service == "b" for e in events)


def test_failure_with_fail_next_then_recovery(tmp_path: Path) -> None:
    """A one-time engine refusal fails that service; the next converge repairs it."""
    engine = engine_with_images("pg", "api")
    converge(
        engine, desired_from(tmp_path, TWO.replace('depends_on = ["db"]\n', "")), clock=FakeClock()
    )
    engine.fail_next("start_container", EngineError("port is already allocated", 500))
    engine.remove_container(container_id(engine, "shop", "shop-api-1") or "")
    desired = desired_from(tmp_path, TWO.replace('depends_on = ["db"]\n', ""))
    with pytest.raises(EnvironmentFailed) as info:
        converge(engine, desired, clock=FakeClock(), timeout=60)
    assert [f.service for f in info.value.failures] == ["api"]
    # Created but never started, so possibly incomplete: the next pass recreates it.
    plan, progress = converge(engine, desired, clock=FakeClock(), timeout=60)
    assert [(a.kind, a.service) for a in plan.changes] == [("recreate", "api")]
    assert progress["api"].settled == READY


def test_pull_then_create(tmp_path: Path) -> None:
    """Missing images are pulled first, then the containers are created from them."""
    desired = desired_from(tmp_path, TWO)
    engine = FakeEngine()
    converge(engine, desired, clock=FakeClock(), timeout=60)
    calls = engine.mutating_calls()
    assert ("pull_image", "pg") in calls and ("pull_image", "api") in calls
    last_pull = max(i for i, c in enumerate(calls) if c[0] == "pull_image")
    first_create = min(i for i, c in enumerate(calls) if c[0] == "create_container")
    assert last_pull < first_create


def test_applier_without_waiting(tmp_path: Path) -> None:
    """``wait_ready=False`` returns once containers are started, without waiting for health."""
    desired = desired_from(tmp_path, HEALTH_GATED.replace('"healthy"', '"started"'))
    engine = engine_with_images("pg", "api", auto_healthy=False)
    observed = observe(engine, "shop", ["pg", "api"])
    plan = make_plan(desired, observed)
    clock = FakeClock()
    progress = Applier(engine, desired, clock=clock).apply(plan, observed, wait_ready=False)
    assert {c.name for c in engine.list_containers("shop")} == {"shop-db-1", "shop-api-1"}
    assert progress["api"].settled == READY
    assert progress["db"].settled == ""  # still starting, and nobody waited for it


def test_orphans_and_scale_down_are_removed(tmp_path: Path) -> None:
    """Removed services and extra replicas are stopped and removed by apply."""
    spec = TWO.replace('command = ["serve"]', 'command = ["serve"]\nreplicas = 3')
    engine = engine_with_images("pg", "api")
    converge(engine, desired_from(tmp_path, spec), clock=FakeClock(), timeout=60)
    assert len(engine.list_containers("shop")) == 4
    smaller = TWO.replace('[services.db]\nimage = "pg"\nvolumes = ["data:/data"]\n', "")
    smaller = smaller.replace('depends_on = ["db"]\n', "")
    converge(engine, desired_from(tmp_path, smaller), clock=FakeClock(), timeout=60)
    assert {c.name for c in engine.list_containers("shop")} == {"shop-api-1"}


# --------------------------------------------------------------------------- purity


def test_load_desire_plan_never_touch_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load, desire and make_plan run with every engine exploding: they are pure."""
    import envd.engine.docker.client

    monkeypatch.setattr(envd.engine.docker.client, "DockerEngine", ExplodingEngine)
    desired = desired_from(tmp_path, TWO)
    plan = make_plan(desired, Observed(images={"pg": None, "api": None}))
    assert [a.kind for a in plan.image_actions] == ["pull", "pull"]
    # And the exploding twin really explodes, naming the method.
    with pytest.raises(AssertionError, match=r"ExplodingEngine\.list_containers"):
        observe(ExplodingEngine(), "shop")


def test_pure_core_does_not_import_the_docker_sdk(tmp_path: Path) -> None:
    """Loading, desiring and planning import neither the Docker SDK nor the real engine."""
    (tmp_path / "envd.toml").write_text(TWO)
    code = textwrap.dedent(
        f"""
        import sys
        from envd.spec.load import load
        from envd.core.desired import desire
        from envd.core.plan import make_plan
        from envd.core.observed import Observed
        from envd.values.keys import Keys
        d = desire(load({str(tmp_path)!r}, environ={{}}), {{}}, keys=Keys(b"k"))
        make_plan(d, Observed(images={{"pg": None, "api": None}}))
        bad = sorted(m for m in sys.modules if m == "docker" or m.startswith(("docker.",
                     "envd.engine.docker.client", "requests")))
        print(",".join(bad))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
