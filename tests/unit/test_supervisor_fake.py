"""The daemon's supervisor and one-shot rules on the fake engine: heal, flap, persist, dependents."""

from __future__ import annotations

import json
import stat
import textwrap
import threading
from pathlib import Path
from typing import Any

from envd.core.desired import DesiredProject, desire
from envd.core.plan import make_plan
from envd.core.status import project_status, service_state, state_text
from envd.daemon.heal_store import HealStore
from envd.daemon.supervisor import Supervisor
from envd.engine.fake import FakeEngine
from envd.run.converge import converge
from envd.run.observe import observe
from envd.run.supervision import add_supervision
from envd.spec.load import load
from envd.values.events import FakeClock
from envd.values.keys import Keys

KEYS = Keys(b"unit-test-hash-key")

SPEC = """\
[project]
name = "shop"

[services.db]
image = "pg"
healthcheck = { test = ["CMD", "true"] }
heal = { max = 2, window = "1m", backoff = "2s" }

[services.api]
image = "api"
depends_on = { db = { condition = "healthy", restart = true } }

[services.other]
image = "api"
depends_on = { db = "healthy" }
"""


class Log:
    def bind(self, **_: object) -> Log:
        return self

    def debug(self, event: str, **values: object) -> None:
        pass

    info = warning = error = exception = debug


class Rig:
    """A converged fake project and a supervisor on a hand-driven clock."""

    def __init__(self, tmp_path: Path, spec: str = SPEC) -> None:
        (tmp_path / "envd.toml").write_text(textwrap.dedent(spec))
        self.desired: DesiredProject = desire(load(tmp_path, environ={}), {}, keys=KEYS)
        self.engine = FakeEngine()
        for ref in ("pg", "api"):
            self.engine.add_image(ref)
        converge(self.engine, self.desired)
        self.events: list[dict[str, Any]] = []
        self.clock = [1000.0]
        self.store_path = tmp_path / "heal.json"
        self.lock_dir = tmp_path / "locks"
        self.sup = self.supervisor()

    def supervisor(self) -> Supervisor:
        return Supervisor(
            self.engine,
            "shop",
            lambda: self.desired,
            HealStore(self.store_path),
            lambda kind, resource, message, phase, **extra: self.events.append(
                {"kind": kind, "message": message, "phase": phase, **extra}
            ),
            Log(),
            threading.Event(),
            now=lambda: self.clock[0],
            lock_dir=self.lock_dir,
        )

    def cid(self, service: str) -> str:
        return next(
            c.id for c in self.engine.list_containers("shop") if c.name == f"shop-{service}-1"
        )

    def kinds(self) -> list[tuple[str, str]]:
        return [(e["kind"], e["phase"]) for e in self.events]


def test_unhealthy_container_is_restarted_and_reported_healed(tmp_path: Path) -> None:
    """An unhealthy container is stopped (with the spec's grace) and started, then "healed"."""
    rig = Rig(tmp_path)
    db = rig.cid("db")
    rig.engine.set_health(db, "unhealthy")
    before = len(rig.engine.calls)
    rig.sup.check()
    calls = rig.engine.calls[before:]
    assert ("stop_container", db) in calls and ("start_container", db) in calls
    assert ("heal", "working") in rig.kinds() and ("heal", "done") in rig.kinds()
    rig.sup.check()  # the next look sees it healthy (the fake turns healthy at start)
    assert ("healed", "done") in rig.kinds()
    assert rig.sup.heal_report(rig.desired)["db"]["heals"] == 1


def test_backoff_then_flapping_stops_healing(tmp_path: Path) -> None:
    """A second heal waits out the back-off; past heal.max in the window the service flaps and
    is no longer restarted, with its last log lines in the event."""
    rig = Rig(tmp_path)
    db = rig.cid("db")
    rig.engine.emit_log(db, "FATAL: disk full")
    rig.engine.set_health(db, "unhealthy")
    rig.sup.check()
    rig.engine.set_health(db, "unhealthy")
    rig.clock[0] += 1.0
    rig.events.clear()
    rig.sup.check()
    assert rig.kinds() == [("heal", "waiting")]
    rig.clock[0] += 1.0
    rig.sup.check()
    assert ("heal", "done") in rig.kinds()
    rig.engine.set_health(db, "unhealthy")
    rig.clock[0] += 10.0
    rig.events.clear()
    before = len(rig.engine.calls)
    rig.sup.check()
    assert next(e for e in rig.events if e["kind"] == "flapping")["logs"] == ["FATAL: disk full"]
    assert ("stop_container", db) not in rig.engine.calls[before:]
    rig.clock[0] += 100.0
    rig.events.clear()
    rig.sup.check()
    assert rig.events == [] and ("stop_container", db) not in rig.engine.calls[before:]
    report = rig.sup.heal_report(rig.desired)["db"]
    assert report["flapping"] and report["heals"] == 2


def test_heal_counts_and_flap_mark_survive_a_new_supervisor(tmp_path: Path) -> None:
    """heal.json (mode 0600) carries counts and the flap mark to the next daemon; a
    malformed file starts afresh instead of failing."""
    rig = Rig(tmp_path)
    db = rig.cid("db")
    for _ in range(3):
        rig.engine.set_health(db, "unhealthy")
        rig.clock[0] += 10.0
        rig.sup.check()
    assert stat.S_IMODE(rig.store_path.stat().st_mode) == 0o600
    again = rig.supervisor().heal_report(rig.desired)["db"]
    assert again["flapping"] and again["heals"] == 2
    rig.store_path.write_text(json.dumps({"format": 1, "services": {"db": {"heals": "x"}}}))
    assert rig.supervisor().heal_report(rig.desired)["db"]["heals"] == 0
    rig.sup.reset(["db"])
    assert not rig.supervisor().heal_report(rig.desired)["db"]["flapping"]


def test_a_replaced_container_is_healed_again(tmp_path: Path) -> None:
    """Once the flapping container is gone (recreated, `down` + `up`), its service is healed
    again; the total count is kept."""
    rig = Rig(tmp_path)
    for _ in range(3):
        rig.engine.set_health(rig.cid("db"), "unhealthy")
        rig.clock[0] += 10.0
        rig.sup.check()
    assert rig.sup.heal_report(rig.desired)["db"]["flapping"]
    old = rig.cid("db")
    rig.engine.stop_container(old, 1)
    rig.engine.remove_container(old)
    converge(rig.engine, rig.desired)
    rig.engine.set_health(rig.cid("db"), "unhealthy")
    before = len(rig.engine.calls)
    rig.sup.check()
    assert ("stop_container", rig.cid("db")) in rig.engine.calls[before:]
    report = rig.sup.heal_report(rig.desired)["db"]
    assert not report["flapping"] and report["heals"] == 3 and report["recent_heals"] == 1


def test_heal_off_leaves_the_container_alone(tmp_path: Path) -> None:
    """heal = false: an unhealthy container is not restarted; that is said once."""
    rig = Rig(
        tmp_path, SPEC.replace('heal = { max = 2, window = "1m", backoff = "2s" }', "heal = false")
    )
    db = rig.cid("db")
    rig.engine.set_health(db, "unhealthy")
    before = len(rig.engine.calls)
    rig.sup.check()
    rig.sup.check()
    assert ("stop_container", db) not in rig.engine.calls[before:]
    assert rig.kinds() == [("heal", "info")]


def test_restarted_dependency_restarts_only_restart_dependents(tmp_path: Path) -> None:
    """When db starts again, api (restart = true) is restarted once db is healthy; other is not."""
    rig = Rig(tmp_path)
    db, api, other = rig.cid("db"), rig.cid("api"), rig.cid("other")
    rig.sup.check()
    assert not any(e["kind"] == "restart-dependent" for e in rig.events)
    rig.engine.auto_healthy = False
    rig.engine.stop_container(db, 1)
    rig.engine.start_container(db)
    before = len(rig.engine.calls)
    rig.sup.check()
    assert ("stop_container", api) not in rig.engine.calls[before:]  # db still starting
    rig.engine.set_health(db, "healthy")
    rig.sup.check()
    calls = rig.engine.calls[before:]
    assert ("stop_container", api) in calls and ("start_container", api) in calls
    assert ("stop_container", other) not in calls
    done = [e for e in rig.events if e["kind"] == "restart-dependent" and e["phase"] == "done"]
    assert len(done) == 1 and done[0]["dependencies"] == ["db"]
    rig.sup.check()
    assert len([e for e in rig.events if e["kind"] == "restart-dependent"]) == 2


def test_a_service_stopped_on_purpose_is_neither_healed_nor_restarted(tmp_path: Path) -> None:
    """`envd stop api` keeps api stopped: its dependency's restart does not start it again."""
    rig = Rig(tmp_path)
    db, api = rig.cid("db"), rig.cid("api")
    rig.sup.stopped = lambda: frozenset({"api"})
    rig.sup.check()
    rig.engine.stop_container(api, 1)
    rig.engine.stop_container(db, 1)
    rig.engine.start_container(db)
    rig.engine.set_health(db, "healthy")
    before = len(rig.engine.calls)
    rig.sup.check()
    assert ("start_container", api) not in rig.engine.calls[before:]
    assert not any(e["kind"] == "restart-dependent" for e in rig.events)


def test_recreated_dependency_restarts_restart_dependents(tmp_path: Path) -> None:
    """A dependency recreated by a pass (a new container) restarts its restart = true dependents."""
    rig = Rig(tmp_path)
    api = rig.cid("api")
    converge(rig.engine, rig.desired, force_recreate=frozenset({"db"}))
    before = len(rig.engine.calls)
    rig.sup.check()
    assert ("start_container", api) in rig.engine.calls[before:]
    assert ("start_container", rig.cid("other")) not in rig.engine.calls[before:]


ONESHOTS = """\
[project]
name = "shop"

[services.job]
image = "api"

[services.bad]
image = "api"
oneshot = true

[services.crashy]
image = "api"
restart = "no"

[services.web]
image = "api"
depends_on = { job = "completed" }
"""


def test_finished_oneshots_are_left_alone_and_reported(tmp_path: Path) -> None:
    """A completed or failed one-shot gets no action even from `envd up`; a crashed server
    (restart "no", not a one-shot) is started again by `up`; status says completed/failed."""
    (tmp_path / "envd.toml").write_text(ONESHOTS)
    desired = desire(load(tmp_path, environ={}), {}, keys=KEYS)
    engine = FakeEngine()
    engine.add_image("api")

    class JobFinishes(FakeClock):
        """The job exits 0 the first time `up` waits for it."""

        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            for c in engine.list_containers("shop"):
                if c.service == "job" and c.status == "running":
                    engine.exit_container(c.id, 0)

    converge(engine, desired, wait_ready=False, clock=JobFinishes(), timeout=60)
    ids = {c.service: c.id for c in engine.list_containers("shop")}
    engine.exit_container(ids["bad"], 3)
    engine.exit_container(ids["crashy"], 1)
    engine.emit_log(ids["bad"], "migration 7 failed")
    observed = observe(engine, "shop", ["api"])
    plan = make_plan(desired, observed, restart_exited=True)
    kinds = {a.service: (a.kind, a.reason) for a in plan.actions if a.service}
    assert kinds["job"] == ("ok", "completed (exited 0)")
    assert kinds["bad"][0] == "ok" and "--rerun bad" in kinds["bad"][1]
    assert kinds["crashy"][0] == "start"
    report = project_status(desired, observed, plan)
    add_supervision(engine, desired, report, {})
    by = {s["name"]: s for s in report["services"]}
    assert by["job"]["state"] == "completed" and by["job"]["oneshot"]
    assert by["job"]["completed_at"] is not None and by["job"]["exit_code"] == 0
    assert state_text(by["job"], "T").startswith("completed (exit 0) at T")
    assert by["bad"]["state"] == "failed" and by["bad"]["exit_code"] == 3
    assert by["bad"]["last_logs"] == ["migration 7 failed"]
    assert by["web"]["state"] == "running" and not by["web"]["oneshot"]
    flapping = service_state(by["web"], flapping=True)
    assert flapping == "flapping"


def test_log_lines_shown_by_status_and_events_mask_secret_values(tmp_path: Path) -> None:
    """A service that prints a secret value: the last log lines envd shows carry *** instead."""
    from envd.run.supervision import redact

    (tmp_path / "pw.txt").write_text("hunter2-secret")
    (tmp_path / "envd.toml").write_text(
        '[services.db]\nimage = "pg"\nsecrets = ["pw"]\n\n[secrets.pw]\nfile = "./pw.txt"\n'
    )
    desired = desire(load(tmp_path, environ={}), {"pw": b"hunter2-secret"}, keys=KEYS)
    assert redact(desired, ["login with hunter2-secret failed", "ok"]) == [
        "login with *** failed",
        "ok",
    ]


def test_the_safety_net_looks_rarely_only_when_nothing_can_change_unseen(tmp_path: Path) -> None:
    """With no healthcheck, no healing and no restart dependents the safety net looks every
    SAFETY_CAP s (engine events wake the supervisor); with a healthcheck, every TICK."""
    from envd.daemon.supervisor import SAFETY_CAP, TICK

    plain = tmp_path / "plain"
    plain.mkdir()
    quiet = Rig(plain, '[project]\nname = "shop"\n\n[services.api]\nimage = "api"\n')
    quiet.sup.check()
    assert quiet.sup.next_tick(0.0) == SAFETY_CAP
    checked = tmp_path / "checked"
    checked.mkdir()
    watched = Rig(checked)
    watched.sup.check()
    assert watched.sup.next_tick(0.0) == TICK
    # A dependent that restarts with its dependency keeps the tick even without healthchecks.
    deps = tmp_path / "deps"
    deps.mkdir()
    spec = SPEC.replace('healthcheck = { test = ["CMD", "true"] }\n', "").replace(
        'condition = "healthy", ', 'condition = "started", '
    )
    spec = spec.replace('depends_on = { db = "healthy" }', 'depends_on = { db = "started" }')
    dependent = Rig(deps, spec)
    dependent.sup.check()
    assert dependent.sup.next_tick(0.0) == TICK
