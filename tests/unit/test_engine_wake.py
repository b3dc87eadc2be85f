"""Readiness on the engine's events (envd.run.engine_wake): a health report wakes the
apply loop at once, and a failed event stream falls back to polling."""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

from envd.core.desired import DesiredProject, desire
from envd.engine.fake import FakeEngine
from envd.run.apply import Applier
from envd.run.converge import plan_project
from envd.run.readiness import READY, ServiceProgress
from envd.spec.load import load
from envd.values.errors import EngineUnavailable
from envd.values.keys import Keys
from tests.helpers import wait_for

KEYS = Keys(b"unit-test-hash-key")

SPEC = """\
[project]
name = "wake"

[services.db]
image = "pg"
healthcheck = { test = ["CMD", "pg_isready"], interval = "1s" }

[services.api]
image = "api"
depends_on = { db = "healthy" }
"""


def _setup(root: Path) -> tuple[DesiredProject, FakeEngine]:
    (root / "envd.toml").write_text(textwrap.dedent(SPEC))
    desired = desire(load(root, environ={}), {}, keys=KEYS)
    engine = FakeEngine(auto_healthy=False)
    for ref in ("pg", "api"):
        engine.add_image(ref)
    return desired, engine


def _apply_in_thread(
    applier: Applier, engine: FakeEngine, desired: DesiredProject
) -> tuple[threading.Thread, dict[str, dict[str, ServiceProgress]]]:
    plan, observed = plan_project(engine, desired)
    out: dict[str, dict[str, ServiceProgress]] = {}

    def run() -> None:
        out["progress"] = applier.apply(plan, observed, timeout=60)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _running_db(engine: FakeEngine) -> str:
    found: list[str] = []

    def running() -> bool:
        found[:] = [
            c.id
            for c in engine.list_containers("wake")
            if c.service == "db" and c.status == "running"
        ]
        return bool(found)

    wait_for(running, timeout=10.0, message="db to run")
    return found[0]


def test_a_health_event_wakes_the_wait_at_once(tmp_path: Path) -> None:
    """With a 30 s poll interval, turning healthy still gets api created within a
    fraction of a second: the health_status event woke the loop."""
    desired, engine = _setup(tmp_path)
    applier = Applier(engine, desired, poll_interval=30.0, events=True)
    thread, out = _apply_in_thread(applier, engine, desired)
    db = _running_db(engine)
    wait_for(lambda: applier._waits.wake is not None, timeout=10.0, message="the loop to wait")
    turned = time.monotonic()
    engine.set_health(db, "healthy")
    thread.join(timeout=10.0)
    assert not thread.is_alive()
    # Below the 1 s safety net, far below the poll interval.
    assert time.monotonic() - turned < 0.9
    assert applier._waits.wake is not None and applier._waits.wake.woken >= 1
    assert {n: p.settled for n, p in out["progress"].items()} == {"db": READY, "api": READY}


def test_a_failed_event_stream_falls_back_to_polling(tmp_path: Path) -> None:
    """When the engine refuses the event stream, the loop polls and still converges."""
    desired, engine = _setup(tmp_path)
    engine.fail_next("stream_events", EngineUnavailable("events refused"))
    applier = Applier(engine, desired, poll_interval=0.02, events=True)
    thread, out = _apply_in_thread(applier, engine, desired)
    db = _running_db(engine)
    wake = applier._waits
    wait_for(
        lambda: wake.wake is not None and not wake.wake.alive,
        timeout=10.0,
        message="the stream to fail",
    )
    engine.set_health(db, "healthy")
    thread.join(timeout=10.0)
    assert not thread.is_alive()
    assert {n: p.settled for n, p in out["progress"].items()} == {"db": READY, "api": READY}


def test_events_from_before_the_stream_connected_are_replayed(tmp_path: Path) -> None:
    """A container that turned healthy between its start and the stream's connection
    still wakes the loop: the stream replays from the first start."""
    desired, engine = _setup(tmp_path)
    applier = Applier(engine, desired, poll_interval=30.0, events=True)
    original = engine.stream_events

    def late(project: str, since: float | None = None, until: float | None = None):  # type: ignore[no-untyped-def]
        # The health report happens before this stream is asked for.
        engine.set_health(_running_db(engine), "healthy")
        return original(project, since, until)

    engine.stream_events = late  # type: ignore[method-assign]
    thread, out = _apply_in_thread(applier, engine, desired)
    thread.join(timeout=0.9)  # under the 1 s safety net
    assert not thread.is_alive()
    assert {n: p.settled for n, p in out["progress"].items()} == {"db": READY, "api": READY}
