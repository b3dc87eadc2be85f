"""The daemon's timing and loop logic, with plain numbers, a fake clock and the fake engine.

Nothing here sleeps: the debouncer and the back-off take ``now`` values, and the
reconciler's ``next_pass`` is driven with a debouncer whose quiet period is 0
and a resync period of 0 (so "nothing due" shows up as a "periodic resync"
pass instead of a wait).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import structlog

from envd.daemon.hub import EventHub
from envd.daemon.reconciler import Reconciler
from envd.daemon.timing import Backoff, Debouncer
from envd.engine.fake import FakeEngine
from envd.inputs.prepare import Target
from envd.values.errors import EngineError
from envd.values.events import FakeClock

IMAGE = "envd-local/busybox:latest"

SPEC = """\
[project]
name = "unitd"

[services.web]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = {{ COLOR = "{web_color}" }}

[services.worker]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = {{ COLOR = "{worker_color}" }}
"""


# --------------------------------------------------------------------------- Debouncer


def test_debouncer_idle_is_not_pending() -> None:
    """A debouncer nobody marked is not pending and never fires."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    assert not d.pending
    assert d.remaining(123.0) == float("inf")


def test_debouncer_fires_after_quiet_period() -> None:
    """One mark fires once the quiet period has passed, not before."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    d.mark(10.0)
    assert d.pending
    assert d.remaining(10.0) == pytest.approx(0.05)
    assert d.remaining(10.03) == pytest.approx(0.02)
    assert d.remaining(10.05) == 0.0
    assert d.remaining(11.0) == 0.0  # never negative


def test_debouncer_burst_extends_quiet_period() -> None:
    """Each new mark in a burst pushes the firing time back by the quiet period."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    d.mark(10.00)
    d.mark(10.04)
    assert d.remaining(10.05) == pytest.approx(0.04)
    d.mark(10.08)
    assert d.remaining(10.09) == pytest.approx(0.04)
    assert d.remaining(10.13) == 0.0


def test_debouncer_steady_trickle_cannot_starve_it() -> None:
    """Marks arriving faster than the quiet period still fire within max_wait of the first."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    t = 100.0
    d.mark(t)
    fired_at = None
    for i in range(1, 100):
        now = t + i * 0.01
        if d.remaining(now) == 0.0:
            fired_at = now
            break
        d.mark(now)
    assert fired_at == pytest.approx(100.5)


def test_debouncer_reset_forgets_the_burst() -> None:
    """After reset the next mark starts a new burst (a new max_wait window)."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    d.mark(1.0)
    d.mark(1.4)
    d.reset()
    assert not d.pending
    d.mark(2.0)
    assert d.remaining(2.0) == pytest.approx(0.05)
    assert d.first == 2.0


def test_debouncer_quiet_zero_fires_at_once() -> None:
    """A debouncer with quiet 0 fires as soon as it is marked (what tests of the loop use)."""
    d = Debouncer(quiet=0.0, max_wait=0.0)
    d.mark(5.0)
    assert d.remaining(5.0) == 0.0


# --------------------------------------------------------------------------- Backoff


def test_backoff_doubles_from_base() -> None:
    """Consecutive failures wait base, 2×base, 4×base…"""
    b = Backoff(base=0.5, cap=30.0)
    assert [b.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_is_capped() -> None:
    """The delay never exceeds the cap, however many failures."""
    b = Backoff(base=0.5, cap=30.0)
    delays = [b.failed() for _ in range(20)]
    assert max(delays) == 30.0
    assert delays[-1] == 30.0
    assert delays == sorted(delays)


def test_backoff_success_resets() -> None:
    """A success starts the next failure over at the base delay."""
    b = Backoff(base=0.25, cap=10.0)
    b.failed()
    b.failed()
    b.succeeded()
    assert b.failures == 0
    assert b.failed() == 0.25


# --------------------------------------------------------------------------- EventHub


def test_hub_publish_numbers_events() -> None:
    """Every published event gets the next sequence number, starting at 1."""
    hub = EventHub()
    assert hub.seq == 0
    assert hub.publish({"kind": "a"}) == 1
    assert hub.publish({"kind": "b"}) == 2
    assert hub.seq == 2


def test_hub_subscriber_sees_only_later_events_without_since() -> None:
    """A subscriber without ``since`` gets what is published after it subscribed, in order."""
    hub = EventHub()
    hub.publish({"kind": "before"})
    q = hub.subscribe()
    assert q.empty()
    hub.publish({"kind": "x"})
    hub.publish({"kind": "y"})
    got = [q.get_nowait(), q.get_nowait()]
    assert [e["kind"] for e in got] == ["x", "y"]
    assert [e["seq"] for e in got] == [2, 3]


def test_hub_since_replays_missed_events() -> None:
    """``since=N`` replays every kept event after N, then continues live without gaps."""
    hub = EventHub()
    for i in range(5):
        hub.publish({"kind": "e", "i": i})
    q = hub.subscribe(since=2)
    hub.publish({"kind": "live"})
    seqs = []
    while not q.empty():
        seqs.append(q.get_nowait()["seq"])
    assert seqs == [3, 4, 5, 6]


def test_hub_since_zero_replays_everything_kept() -> None:
    """``since=0`` replays the whole ring; older events beyond ``keep`` are dropped."""
    hub = EventHub(keep=3)
    for i in range(5):
        hub.publish({"i": i})
    q = hub.subscribe(since=0)
    assert [q.get_nowait()["seq"] for _ in range(3)] == [3, 4, 5]
    assert q.empty()


def test_hub_fans_out_and_unsubscribe_stops_delivery() -> None:
    """Each subscriber gets its own copy; an unsubscribed queue receives nothing more."""
    hub = EventHub()
    a, b = hub.subscribe(), hub.subscribe()
    hub.publish({"kind": "one"})
    hub.unsubscribe(a)
    hub.publish({"kind": "two"})
    assert a.get_nowait()["kind"] == "one"
    assert a.empty()
    assert [b.get_nowait()["kind"], b.get_nowait()["kind"]] == ["one", "two"]


def test_hub_publish_does_not_mutate_the_callers_dict() -> None:
    """The sequence number is added to a copy, so callers can reuse their event dict."""
    hub = EventHub()
    ev = {"kind": "k"}
    hub.publish(ev)
    assert ev == {"kind": "k"}


def test_hub_is_thread_safe_under_concurrent_publishers() -> None:
    """Concurrent publishers never lose or duplicate a sequence number."""
    hub = EventHub(keep=10_000)
    q = hub.subscribe()

    def pump() -> None:
        for _ in range(500):
            hub.publish({"kind": "t"})

    threads = [threading.Thread(target=pump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [q.get_nowait()["seq"] for _ in range(2000)]
    assert seqs == list(range(1, 2001))


# --------------------------------------------------------------------------- Reconciler


class World:
    """A project directory, a fake engine, a fake clock and a reconciler over them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.engine = FakeEngine()
        self.engine.add_image(IMAGE)
        self.clock = FakeClock()
        self.hub = EventHub()
        self.events = self.hub.subscribe(since=0)
        self.write()
        self.reconciler = Reconciler(
            Target(str(root)),
            self.engine,
            self.hub,
            structlog.wrap_logger(logging.getLogger("test.daemon")),
            clock=self.clock,
            debouncer=Debouncer(quiet=0.0, max_wait=0.0),
            resync=0.0,
        )

    def write(self, text: str | None = None, web: str = "red", worker: str = "red") -> None:
        (self.root / "envd.toml").write_text(
            text if text is not None else SPEC.format(web_color=web, worker_color=worker)
        )

    def run_next(self) -> tuple[int, list[str]]:
        due = self.reconciler.next_pass()
        assert due is not None
        generation, reasons, request = due
        self.reconciler.run_pass(generation, reasons, request)
        return generation, reasons

    def containers(self) -> dict[str, Any]:
        return {c.name: c for c in self.engine.list_containers("unitd")}

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out


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


def test_status_reports_daemon_state_and_services(world: World) -> None:
    """status() carries the last result, reconcile time and per-service state."""
    r = world.reconciler
    r.trigger("start")
    world.run_next()
    st = r.status()
    assert st["daemon"]["last_result"] == "ok"
    assert st["daemon"]["last_reconcile"] is not None
    assert st["daemon"]["last_error"] is None
    assert [s["name"] for s in st["services"]] == ["web", "worker"]
    assert st["in_sync"] is True


# --------------------------------------------------------------------------- the environment of `envd up`

ENV_SPEC = """\
[project]
name = "unitd"

[services.web]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = { TAG = "${UNITD_TAG}" }
secrets = ["pw"]

[secrets.pw]
env = "UNITD_PW"
"""


def _web(world: World) -> tuple[str, str, bytes]:
    """(container id, its TAG, the value of its secret file) of unitd-web-1."""
    web = world.containers()["unitd-web-1"]
    spec = world.engine.container_spec(web.id)
    return web.id, dict(spec.env)["TAG"], spec.secrets[0].value


def test_pass_uses_the_environment_sent_with_the_trigger_and_later_passes_keep_it(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`envd up` sends its environment with the reload: that pass reads variables and
    `env` secrets from it, and so do later passes (file change, resync, drift repair)
    until the next `up` sends another; before any, the daemon's own environment."""
    monkeypatch.setenv("ENVD_HASH_KEY", "ab" * 32)
    monkeypatch.setenv("UNITD_TAG", "daemon-own")
    monkeypatch.setenv("UNITD_PW", "daemon-own-pw")
    caplog.set_level(logging.DEBUG, logger="test.daemon")
    world.write(ENV_SPEC)
    r = world.reconciler

    r.trigger("daemon started")
    world.run_next()
    first, tag, pw = _web(world)
    assert (tag, pw) == ("daemon-own", b"daemon-own-pw")

    r.trigger("envd up", wait_timeout=5.0, environ={"UNITD_TAG": "a", "UNITD_PW": "pw-one"})
    world.run_next()
    second, tag, pw = _web(world)
    assert second != first and (tag, pw) == ("a", b"pw-one")
    assert r.state.last_result == "ok"

    # Later passes without an environment keep the one `up` sent, not the daemon's own.
    calls = len(world.engine.mutating_calls())
    world.write(ENV_SPEC + "\n")
    r.trigger("files changed: envd.toml")
    world.run_next()
    _, reasons = world.run_next()
    assert reasons == ["periodic resync"]
    world.engine.remove_container(second)
    r.trigger("container unitd-web-1: destroy")
    world.run_next()
    third, tag, pw = _web(world)
    assert third != second and (tag, pw) == ("a", b"pw-one")
    assert r.state.last_result == "ok"
    after_repair = len(world.engine.mutating_calls())
    assert after_repair > calls

    # The next `up` replaces it: a new value of the variable and a rotated secret.
    r.trigger("envd up", wait_timeout=5.0, environ={"UNITD_TAG": "b", "UNITD_PW": "pw-two"})
    world.run_next()
    fourth, tag, pw = _web(world)
    assert fourth != third and (tag, pw) == ("b", b"pw-two")

    # An `up` whose environment lacks the secret's variable fails the pass like
    # `up --once` would, even though the daemon's own environment has it.
    r.trigger("envd up", wait_timeout=5.0, environ={"UNITD_TAG": "b"})
    world.run_next()
    assert r.state.last_result == "invalid-spec"
    assert "UNITD_PW is not set" in r.state.last_error
    assert _web(world)[0] == fourth

    # The values went nowhere but the containers: not events, status or log.
    published = json.dumps(world.drain()) + json.dumps(r.status())
    for value in ("pw-one", "pw-two", "daemon-own-pw"):
        assert value not in published
        assert value not in caplog.text


def test_a_running_pass_keeps_its_environment_when_a_new_one_arrives(world: World) -> None:
    """An environment sent while a pass runs is for the next pass, which covers that trigger."""
    world.write(SPEC.replace('"{web_color}"', '"${{UNITD_COLOR}}"').format(worker_color="red"))
    r = world.reconciler
    late: list[int] = []

    def up_during_pass(_: Any) -> None:
        if not late:
            late.append(r.trigger("envd up", environ={"UNITD_COLOR": "two"}))

    r.on_desired(up_during_pass)
    r.trigger("envd up", environ={"UNITD_COLOR": "one"})
    world.run_next()
    web = world.containers()["unitd-web-1"]
    assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "one"
    generation, _ = world.run_next()
    assert generation == late[0]
    web = world.containers()["unitd-web-1"]
    assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "two"


def test_reload_over_the_socket_hands_the_environment_to_the_reconciler(
    tmp_path: Path, world: World
) -> None:
    """The client sends its environment with the reload; the daemon acknowledges it, keeps
    it for its plan endpoint too, and refuses an environment that is not strings."""
    from envd.daemon.client import DaemonClient
    from envd.daemon.server import make_server
    from envd.values.errors import EnvdError

    world.write(SPEC.replace('"{web_color}"', '"${{UNITD_COLOR}}"').format(worker_color="red"))
    sock = tmp_path / "d.sock"
    log = structlog.wrap_logger(logging.getLogger("test.daemon"))
    server = make_server(sock, world.reconciler, world.hub, lambda: None, log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = DaemonClient(sock)
        reply = client.reload(wait_timeout=5.0, environ={"UNITD_COLOR": "teal"})
        assert reply.environ_applied and reply.generation == world.reconciler.state.generation
        assert world.reconciler.environ == {"UNITD_COLOR": "teal"}
        assert client.reload().environ_applied  # none sent: the last one stays
        assert world.reconciler.environ == {"UNITD_COLOR": "teal"}
        world.run_next()
        web = world.containers()["unitd-web-1"]
        assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "teal"
        assert client.plan()["changes"] == 0  # the plan endpoint reads with it too
        with pytest.raises(EnvdError, match="environ must be an object of strings"):
            client._request("POST", "/v1/reload", {"environ": {"X": 1}})
        assert world.reconciler.environ == {"UNITD_COLOR": "teal"}
    finally:
        server.shutdown()
        server.server_close()
