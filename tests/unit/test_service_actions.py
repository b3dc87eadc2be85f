"""Per-service actions through the daemon (fake engine): restart, recreate, stop, start,
and a service stopped on purpose staying stopped through drift repair and restarts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envd.daemon.actions import STOPPED_FILE, ServiceActions
from tests.helpers import DaemonWorld as World


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("ENVD_HASH_KEY", "ab" * 32)
    w = World(tmp_path)
    w.reconciler.actions = ServiceActions(tmp_path)
    w.converge()
    return w


def _web(world: World) -> tuple[str, str]:
    c = world.containers()["unitd-web-1"]
    return c.id, c.status


def test_a_stopped_service_stays_stopped_until_started(world: World, tmp_path: Path) -> None:
    """`stop` stops the containers and drift repair leaves them stopped, across passes and a
    daemon restart (the set is kept in .envd/stopped.json); `start` starts the same container."""
    first, _ = _web(world)
    world.reconciler.request_action("stop", "web")
    world.run_next()
    assert _web(world) == (first, "exited")
    for why in ("periodic resync", "container unitd-web-1: die"):
        world.reconciler.trigger(why, restart_exited=True)
        world.run_next()
        assert _web(world) == (first, "exited"), why
    assert world.reconciler.state.last_result == "ok"
    assert world.containers()["unitd-worker-1"].status == "running"
    assert (tmp_path / STOPPED_FILE).read_text() == '["web"]'
    assert ServiceActions(tmp_path).stopped == {"web"}  # what a restarted daemon reads
    status = {s["name"]: s for s in world.reconciler.status()["services"]}
    assert status["web"]["stopped_on_purpose"] and status["web"]["in_sync"]

    world.reconciler.request_action("start", "web")
    world.run_next()
    assert _web(world) == (first, "running")
    assert ServiceActions(tmp_path).stopped == frozenset()


def test_up_starts_what_was_stopped(world: World) -> None:
    """An `envd up` (a reload with the shell's environment) starts services stopped on
    purpose, as `docker compose up` does."""
    world.reconciler.request_action("stop", "web")
    world.run_next()
    world.reconciler.trigger("envd up", restart_exited=True, environ=dict(os.environ))
    world.run_next()
    assert _web(world)[1] == "running"


def test_restart_keeps_the_container_and_recreate_replaces_it(world: World) -> None:
    """`restart` stops and starts the same container; `recreate` makes a new one; both are
    events the page and `envd events` show."""
    first, _ = _web(world)
    stops_before = sum(1 for op in world.engine.mutating_calls() if op[0] == "stop_container")
    world.reconciler.request_action("restart", "web")
    world.run_next()
    assert _web(world) == (first, "running")
    assert (
        sum(1 for op in world.engine.mutating_calls() if op[0] == "stop_container")
        == stops_before + 1
    )
    world.reconciler.request_action("recreate", "web")
    world.run_next()
    second, status = _web(world)
    assert second != first and status == "running"
    kinds = [(e.get("kind"), e.get("service"), e.get("phase")) for e in world.hub.recent()]
    assert ("restart", "web", "done") in kinds and ("recreate", "web", "working") in kinds


def test_an_action_on_a_service_without_a_build_is_reported(world: World) -> None:
    """`rebuild` of a service that has no build section is an error event, not a crash."""
    world.reconciler.request_action("rebuild", "web")
    world.run_next()
    assert world.reconciler.state.last_result == "ok"
    errors = [e for e in world.hub.recent() if e.get("kind") == "rebuild"]
    assert errors and errors[-1]["phase"] == "error" and "no build" in str(errors[-1]["message"])
