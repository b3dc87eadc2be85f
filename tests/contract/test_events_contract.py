"""The engine's event stream as readiness reads it (envd.run.engine_wake), on the fake
and the real engine: a started container's start and health_status events arrive,
replayed from ``since``, and the stream ends by itself at ``until``."""

from __future__ import annotations

import threading
import time
from typing import Any

from envd.values.types import Healthcheck
from tests.helpers import wait_for

from .conftest import World


def test_start_and_health_status_events_arrive_from_since(world: World) -> None:
    """Events since a time before the start are replayed: start, then health_status."""
    eng = world.engine
    since = time.time() - 1.0
    hc = Healthcheck(("CMD", "true"), interval_s=0.1, timeout_s=2.0, retries=1)
    cid = eng.create_container(world.spec("ready", healthcheck=hc))
    eng.start_container(cid)
    world.healthcheck_reports(cid, "healthy")
    if world.runs_healthchecks:
        wait_for(
            lambda: eng.container_state(cid).health == "healthy",
            timeout=30.0,
            message="the container to turn healthy",
        )
    # Asked for only now: what happened since `since` must come first.
    actions: list[str] = []
    done = threading.Event()

    def follow() -> None:
        events: Any = eng.stream_events(world.project, since, time.time() + 3.0)
        for event in events:
            if event["Actor"]["ID"] == cid:
                actions.append(str(event["Action"]))
        done.set()

    threading.Thread(target=follow, daemon=True).start()
    wait_for(done.is_set, timeout=30.0, message="the stream to end at `until`")
    assert "start" in actions
    if world.runs_healthchecks:
        health = [a for a in actions if a.startswith("health_status")]
        assert health and health[-1] == "health_status: healthy"
        assert actions.index("start") < actions.index(health[0])
