"""When the reconciler runs a pass: coalescing triggers, debouncing, stopping, and
retrying transient failures with back-off, all on a fake clock.

The reconciler's debouncer has no quiet period and its resync period is 0, so
"nothing due" shows up as a "periodic resync" pass instead of a wait.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from envd.daemon.timing import Debouncer
from envd.values.errors import EngineError
from tests.helpers import BUSYBOX as IMAGE
from tests.helpers import DaemonWorld as World


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_trigger_returns_increasing_generations(world: World) -> None:
    """Each trigger marks the project dirty and names the generation whose pass covers it."""
    r = world.reconciler
    assert r.trigger("a") == 1
    assert r.trigger("b") == 2
    assert r.state.generation == 2


def test_triggers_before_a_pass_coalesce_into_one(world: World) -> None:
    """A burst of triggers yields one pass covering the newest generation and every reason."""
    r = world.reconciler
    r.trigger("file a changed")
    r.trigger("container x: die")
    last = r.trigger("file a changed")
    generation, reasons, _ = r.next_pass() or (0, [], None)
    assert generation == last
    assert sorted(set(reasons)) == ["container x: die", "file a changed"]
    # The burst was consumed: nothing is due any more but the periodic resync.
    _, reasons, _ = r.next_pass() or (0, [], None)
    assert reasons == ["periodic resync"]


def test_next_pass_waits_for_the_debouncer(tmp_path: Path) -> None:
    """With a real quiet period, a pass is not due until the fake clock passes it."""
    w = World(tmp_path)
    r = w.reconciler
    r.debounce = Debouncer(quiet=0.05, max_wait=0.5)
    r.trigger("edit")
    assert r.debounce.remaining(w.clock.monotonic()) == pytest.approx(0.05)
    w.clock.advance(0.05)
    due = r.next_pass()
    assert due is not None and due[1] == ["edit"]
    assert not r.debounce.pending


def test_trigger_requests_merge(world: World) -> None:
    """Wait timeouts take the maximum and restart_exited is sticky across a burst."""
    r = world.reconciler
    r.trigger("a", wait_timeout=5.0)
    r.trigger("b", wait_timeout=30.0, restart_exited=True)
    r.trigger("c", wait_timeout=1.0)
    _, _, request = r.next_pass() or (0, [], None)
    assert request is not None
    assert request.wait_timeout == 30.0
    assert request.restart_exited is True
    _, _, request = r.next_pass() or (0, [], None)
    assert request is not None
    assert request.wait_timeout is None and request.restart_exited is False


def test_next_pass_returns_none_when_stopping(world: World) -> None:
    """After stop(), next_pass returns None even with a trigger pending, so run() ends."""
    r = world.reconciler
    r.trigger("edit")
    r.stop()
    assert r.stopping
    assert r.next_pass() is None
    r.run()  # returns at once


def test_stop_wakes_a_blocked_next_pass(tmp_path: Path) -> None:
    """A loop blocked waiting for work returns promptly when another thread calls stop()."""
    w = World(tmp_path)
    r = w.reconciler
    r.resync = 3600.0
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(r.next_pass()))
    t.start()
    r.stop()
    t.join(timeout=5)
    assert not t.is_alive()
    assert out == [None]


def test_engine_unavailable_schedules_retry_with_backoff(world: World) -> None:
    """An unreachable engine fails the pass and schedules retries with growing delays."""
    r = world.reconciler
    world.engine.available = False
    r.trigger("start")
    world.run_next()
    assert r.state.last_result == "engine-unavailable"
    assert "retrying in 0.5s" in r.state.last_error

    world.clock.advance(0.5)
    _, reasons = world.run_next()
    assert reasons == ["retry after a transient failure"]
    assert "retrying in 1.0s" in r.state.last_error

    world.clock.advance(1.0)
    world.engine.available = True
    _, reasons = world.run_next()
    assert reasons == ["retry after a transient failure"]
    assert r.state.last_result == "ok"
    assert set(world.containers()) == {"unitd-web-1", "unitd-worker-1"}
    # Success reset the back-off, and no retry is pending any more.
    assert r.backoff.failures == 0
    world.clock.advance(3600)
    _, reasons, _ = r.next_pass() or (0, [], None)
    assert reasons == ["periodic resync"]


def test_engine_error_mid_apply_retries(world: World) -> None:
    """An engine refusal while observing is transient: the pass is retried after back-off."""
    r = world.reconciler
    world.engine.fail_next("list_containers", EngineError("engine hiccup", 500))
    r.trigger("start")
    world.run_next()
    assert r.state.last_result == "engine-error"
    world.clock.advance(0.5)
    _, reasons = world.run_next()
    assert reasons == ["retry after a transient failure"]
    assert r.state.last_result == "ok"


def test_failed_image_pull_is_retried_with_backoff(tmp_path: Path) -> None:
    """An image pull that fails (registry unreachable) is transient: retried after back-off."""
    w = World(tmp_path)
    w.engine.remove_image(IMAGE)
    w.engine.fail_next("pull_image", EngineError("registry unreachable", 500))
    r = w.reconciler
    r.trigger("start")
    w.run_next()
    assert r.state.last_result == "failed"
    assert "could not pull" in r.state.last_error
    assert w.containers() == {}
    w.clock.advance(0.5)
    _, reasons = w.run_next()
    assert reasons == ["retry after a transient failure"]
    assert r.state.last_result == "ok"
    assert set(w.containers()) == {"unitd-web-1", "unitd-worker-1"}


def test_trigger_during_a_pass_is_covered_by_the_next_pass(world: World) -> None:
    """An edit that lands while a pass runs is not lost: the next pass covers it."""
    r = world.reconciler
    late: list[int] = []

    def edit_during_pass(_: Any) -> None:
        if not late:
            world.write(web="purple")
            late.append(r.trigger("files changed: envd.toml (during pass)"))

    r.on_desired(edit_during_pass)
    first = r.trigger("start")
    generation, _ = world.run_next()
    assert generation == first
    assert r.state.completed == first < late[0] == r.state.generation
    web = world.containers()["unitd-web-1"]
    assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "red"

    generation, reasons = world.run_next()
    assert generation == late[0]
    assert reasons == ["files changed: envd.toml (during pass)"]
    assert r.state.completed == r.state.generation
    web = world.containers()["unitd-web-1"]
    assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "purple"
