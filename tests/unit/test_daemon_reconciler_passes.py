"""What a reconcile pass does over the fake engine: converge, repair drift, keep the
last good state on a bad spec, report status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import DAEMON_SPEC as SPEC
from tests.helpers import DaemonWorld as World


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_good_pass_converges_and_records_ok(world: World) -> None:
    """A pass over a valid spec creates the containers and records an ok result."""
    r = world.reconciler
    generation = r.trigger("daemon started")
    world.run_next()
    assert set(world.containers()) == {"unitd-web-1", "unitd-worker-1"}
    assert all(c.status == "running" for c in world.containers().values())
    assert r.state.last_result == "ok"
    assert r.state.completed == generation
    assert r.state.passes == 1
    assert r.state.last_reconcile is not None
    assert r.desired is not None and r.desired.project == "unitd"
    kinds = [e["kind"] for e in world.drain()]
    assert kinds[0] == "reconcile" and kinds[-1] == "pass-done"
    assert "create" in kinds


def test_second_pass_over_unchanged_world_changes_nothing(world: World) -> None:
    """Level-triggered: a pass with nothing to do makes no mutating engine call."""
    world.reconciler.trigger("start")
    world.run_next()
    before = len(world.engine.mutating_calls())
    world.reconciler.trigger("container x: exec_die")
    world.run_next()
    assert world.engine.mutating_calls()[before:] == []
    assert world.reconciler.state.last_result == "ok"


def test_spec_edit_recreates_only_the_changed_service(world: World) -> None:
    """A pass after an env change recreates that service's container and leaves the other."""
    world.reconciler.trigger("start")
    world.run_next()
    before = {n: c.id for n, c in world.containers().items()}
    world.write(web="blue")
    world.reconciler.trigger("files changed: envd.toml")
    world.run_next()
    after = {n: c.id for n, c in world.containers().items()}
    assert after["unitd-worker-1"] == before["unitd-worker-1"]
    assert after["unitd-web-1"] != before["unitd-web-1"]
    env = world.engine.container_spec(after["unitd-web-1"]).env
    assert dict(env)["COLOR"] == "blue"


def test_background_passes_report_only_changed_service_states(world: World) -> None:
    """A pass nobody waits on does not repeat "ready" for unchanged services; one a
    client waits on (`envd up`) reports every service."""

    def settled(events: list[dict[str, Any]]) -> list[str]:
        return sorted(e["service"] for e in events if e["kind"] == "ready")

    world.reconciler.trigger("start")
    world.run_next()
    assert settled(world.drain()) == ["web", "worker"]
    world.reconciler.trigger("periodic resync")
    world.run_next()
    assert settled(world.drain()) == []
    world.write(web="blue")
    world.reconciler.trigger("files changed: envd.toml")
    world.run_next()
    assert settled(world.drain()) == ["web"]
    world.reconciler.trigger("envd up", wait_timeout=5.0)
    world.run_next()
    assert settled(world.drain()) == ["web", "worker"]


def test_drift_is_repaired_by_the_next_pass(world: World) -> None:
    """A container removed behind envd's back is recreated by the pass its event triggers."""
    world.reconciler.trigger("start")
    world.run_next()
    web = world.containers()["unitd-web-1"]
    world.engine.remove_container(web.id)
    world.reconciler.trigger("container unitd-web-1: destroy")
    world.run_next()
    assert world.containers()["unitd-web-1"].status == "running"


def test_invalid_spec_keeps_last_good_state_and_does_not_retry(world: World) -> None:
    """A bad spec is terminal: containers untouched, invalid-spec recorded with file:line, no retry."""
    r = world.reconciler
    r.trigger("start")
    world.run_next()
    good = r.desired
    ids = {n: c.id for n, c in world.containers().items()}
    calls = len(world.engine.mutating_calls())
    world.drain()

    world.write(SPEC.format(web_color="x", worker_color="y") + "\n[services.bad]\nimagee = 1\n")
    r.trigger("files changed: envd.toml")
    world.run_next()

    assert r.state.last_result == "invalid-spec"
    assert "envd.toml:" in r.state.last_error
    line = r.state.last_error.split("envd.toml:", 1)[1].split(":", 1)[0]
    assert line.isdigit() and int(line) >= 15
    assert r.state.last_error_at is not None
    assert r.desired is good  # the last good desired state is kept for sync and status
    assert {n: c.id for n, c in world.containers().items()} == ids
    assert world.engine.mutating_calls()[calls:] == []
    done = [e for e in world.drain() if e["kind"] == "pass-done"]
    assert done[-1]["result"] == "invalid-spec" and done[-1]["phase"] == "error"
    assert "retrying" not in r.state.last_error

    # Long after, the only thing due is the periodic resync: no retry was scheduled.
    world.clock.advance(3600)
    _, reasons, _ = r.next_pass() or (0, [], None)
    assert reasons == ["periodic resync"]


def test_fixing_the_spec_converges_again(world: World) -> None:
    """After an invalid spec, the next edit that fixes it converges and clears the error."""
    r = world.reconciler
    r.trigger("start")
    world.run_next()
    world.write("[services.web\n")
    r.trigger("edit")
    world.run_next()
    assert r.state.last_result == "invalid-spec"
    world.write(web="green")
    r.trigger("edit")
    world.run_next()
    assert r.state.last_result == "ok"
    assert r.state.last_error == ""
    web = world.containers()["unitd-web-1"]
    assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "green"


def test_status_reports_daemon_state_and_services(world: World) -> None:
    """status() carries the last result, reconcile time, the engine and per-service state."""
    r = world.reconciler
    r.trigger("start")
    world.run_next()
    st = r.status()
    assert st["daemon"]["last_result"] == "ok"
    assert st["daemon"]["last_reconcile"] is not None
    assert st["daemon"]["last_error"] is None
    assert (st["engine"]["name"], st["engine"]["api_version"]) == ("fake", "1.41")
    assert [s["name"] for s in st["services"]] == ["web", "worker"]
    assert st["in_sync"] is True


def test_status_with_the_engine_down_reports_it(world: World) -> None:
    """With the engine unreachable, status still answers (daemon state plus the engine's
    error) instead of raising, which dropped the `envd status` connection."""
    r = world.reconciler
    r.trigger("start")
    world.run_next()
    world.engine.available = False
    report = r.status()
    assert report["daemon"]["last_result"] == "ok"
    assert "not reachable" in report["engine_error"]
