"""A swarm deploy reports tasks the engine cannot run long before its timeout (fake swarm)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from envd.engine.swarm.fake import FakeSwarm
from envd.swarm.deploy import deploy
from envd.swarm.ops import STUCK_SECONDS
from envd.values.errors import EnvironmentFailed
from envd.values.events import FakeClock
from envd.values.swarm_types import ObservedTask
from tests.unit.test_swarm_spec import _desired

NO_NODE = "no suitable node (host-mode port already in use on 1 node)"


def test_a_task_the_scheduler_cannot_place_fails_the_deploy_with_its_reason(
    tmp_path: Path,
) -> None:
    """A task pending with a scheduler error fails the deploy after STUCK_SECONDS, not the timeout."""
    engine = FakeSwarm()
    names: dict[str, str] = {}

    def pending(tasks: list[ObservedTask]) -> list[ObservedTask]:
        names.update({s.id: s.name for s in engine.list_services({})})
        return [
            replace(t, state="pending", node_id="", container_id="", error=NO_NODE)
            if names[t.service_id] == "shop_db"
            else t
            for t in tasks
        ]

    engine.on_list_tasks = pending
    clock = FakeClock()
    with pytest.raises(EnvironmentFailed) as info:
        deploy(engine, _desired(tmp_path), timeout=300, clock=clock)
    assert [f.service for f in info.value.failures] == ["db"]
    assert NO_NODE in info.value.failures[0].reason
    assert clock.now - 1000 < STUCK_SECONDS + 1


def test_a_task_pending_without_an_error_is_waited_for(tmp_path: Path) -> None:
    """A task that is only slow to start (no error from the engine) is waited for up to the timeout."""
    engine = FakeSwarm()

    def slow(tasks: list[ObservedTask]) -> list[ObservedTask]:
        return [replace(t, state="preparing") for t in tasks]

    engine.on_list_tasks = slow
    clock = FakeClock()
    with pytest.raises(EnvironmentFailed) as info:
        deploy(engine, _desired(tmp_path), timeout=30, clock=clock)
    assert "did not converge within 30s" in info.value.failures[0].reason
    assert clock.now - 1000 >= 30


def test_two_failed_tasks_fail_the_deploy_with_the_exit_code(tmp_path: Path) -> None:
    """A service whose tasks exited non-zero twice is reported, naming the exit code."""
    engine = FakeSwarm()
    engine.crash_loop("shop_db", exit_code=7, times=2)
    with pytest.raises(EnvironmentFailed) as info:
        deploy(engine, _desired(tmp_path), clock=FakeClock())
    assert [f.service for f in info.value.failures] == ["db"]
    assert "exit code 7" in info.value.failures[0].reason
