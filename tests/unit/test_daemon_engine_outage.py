"""The daemon's passes while the engine is away and when it returns, over the fake engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envd.daemon.reconciler import ENGINE_RETRY_CAP
from tests.helpers import DaemonWorld as World


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _retry_delay(world: World) -> float:
    match = re.search(r"retrying in ([0-9.]+)s", world.reconciler.state.last_error)
    assert match, world.reconciler.state.last_error
    return float(match.group(1))


def test_passes_retry_often_while_the_engine_is_away() -> None:
    """However long the engine stays away, a pass tries again at least every ENGINE_RETRY_CAP s."""
    assert ENGINE_RETRY_CAP <= 2.0


def test_after_an_outage_the_first_pass_starts_what_the_engine_stopped(world: World) -> None:
    """Containers the engine stopped when it went away run again, the same ones, once it returns."""
    world.converge()
    ids = {n: c.id for n, c in world.containers().items()}
    for cid in ids.values():
        world.engine.exit_container(cid, 143)  # dockerd's shutdown stops them
    world.engine.available = False
    world.reconciler.engine_lost("engine event stream ended")
    delays = []
    for _ in range(8):
        world.run_next()
        assert world.reconciler.state.last_result == "engine-unavailable"
        delays.append(_retry_delay(world))
        world.clock.advance(delays[-1])
    assert max(delays) == ENGINE_RETRY_CAP

    world.engine.available = True
    _, reasons = world.run_next()
    assert reasons == ["retry after a transient failure"]
    assert world.reconciler.state.last_result == "ok"
    after = world.containers()
    assert {n: c.id for n, c in after.items()} == ids  # started again, not recreated
    assert all(c.status == "running" for c in after.values())


def test_without_an_outage_a_stopped_container_follows_its_restart_policy(world: World) -> None:
    """A restart = "no" container that exited on its own stays exited; only an outage restarts it."""
    world.converge()
    web = world.containers()["unitd-web-1"]
    world.engine.exit_container(web.id, 143)
    world.reconciler.trigger("container unitd-web-1: die")
    world.run_next()
    assert world.containers()["unitd-web-1"].status == "exited"


def test_a_container_exited_before_the_outage_stays_exited(world: World) -> None:
    """Only what ran at the last good pass is started again after the engine returns."""
    world.converge()
    web = world.containers()["unitd-web-1"]
    world.engine.exit_container(web.id, 3)
    world.reconciler.trigger("container unitd-web-1: die")
    world.run_next()
    world.engine.exit_container(world.containers()["unitd-worker-1"].id, 143)
    world.engine.available = False
    world.reconciler.engine_lost("engine event stream ended")
    world.run_next()
    world.clock.advance(ENGINE_RETRY_CAP)
    world.engine.available = True
    world.run_next()
    assert world.reconciler.state.last_result == "failed"  # web exited 3: reported, not hidden
    assert world.containers()["unitd-web-1"].status == "exited"
    assert world.containers()["unitd-worker-1"].status == "running"
