"""Who takes the converge lock and how: `up --once` and `down` wait and say so, a daemon pass
waits while its API answers, and stopping a daemon that ignores SIGTERM escalates to SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from envd.cli import _common
from envd.cli.app import run_cli
from envd.daemon import process
from envd.daemon.paths import StatePaths
from envd.engine.fake import FakeEngine
from envd.run.oneoff import run_one_off
from envd.run.project_lock import converging
from tests.helpers import DaemonWorld, FakeReconciler, serving, wait_for

SPEC = """\
[project]
name = "shop"

[services.web]
image = "web:1"
"""

# Looks like `envd … daemon` to /proc, and ignores SIGTERM.
STUBBORN = """
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    signal.pause()
"""


def stubborn_daemon(argv: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUBBORN, *argv], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


@pytest.fixture
def stubborn(proj: Path) -> Iterator[subprocess.Popen[str]]:
    """A process whose command line is `… envd -C DIR daemon`, recorded in the pid file, ignoring TERM."""
    proc = stubborn_daemon(["-m", "envd", "-C", str(proj), "daemon"])
    paths = StatePaths.for_project(proj, None)
    paths.ensure()
    paths.pid.write_text(f"{proc.pid}\n")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_up_once_waits_for_the_holder_then_converges(
    capsys: pytest.CaptureFixture[str],
    proj: Path,
    fake: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`up --once` while another envd holds the project's lock says so once, waits, then converges."""
    release = threading.Event()
    held = threading.Event()
    say = _common.err

    def say_and_release(message: str) -> None:
        say(message)
        if message.startswith("waiting for another envd"):
            release.set()  # the holder finishes while `up` waits

    monkeypatch.setattr(_common, "err", say_and_release)

    def holder() -> None:
        with converging("shop", "envd down"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    wait_for(held.is_set, timeout=5)
    try:
        code = run_cli(["up", "--once", "--json", "-C", str(proj)])
    finally:
        release.set()
        thread.join(5)
    _, err = capsys.readouterr()
    assert code == 0, err
    waiting = [line for line in err.splitlines() if "waiting for another envd" in line]
    assert waiting == [
        f"envd: waiting for another envd (pid {os.getpid()}, `envd down`) converging project shop…"
    ]
    assert [c.name for c in fake.list_containers("shop")] == ["shop-web-1"]


def test_down_past_the_lock_timeout_exits_1_naming_the_holder(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """`down --lock-timeout` past its bound exits 1 with one sentence naming the holder, removing nothing."""
    assert run_cli(["up", "--once", "-C", str(proj)]) == 0
    capsys.readouterr()
    with converging("shop", "envd up --once"):
        code = run_cli(["down", "--lock-timeout", "0.2", "-C", str(proj)])
    _, err = capsys.readouterr()
    assert code == 1
    assert (
        err.splitlines()[-1].startswith("envd: another envd (pid ")
        and "`envd up --once`) has been converging project shop for longer than 0s" in err
    )
    assert [c.name for c in fake.list_containers("shop")] == ["shop-web-1"]


def test_read_only_commands_never_take_the_lock(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """plan, status and validate answer at once while another envd holds the lock."""
    with converging("shop", "envd up --once", timeout=0):
        for args in (["plan"], ["status", "--json"], ["validate"]):
            assert run_cli([*args, "-C", str(proj)]) == 0, capsys.readouterr().err
    assert "waiting" not in capsys.readouterr().err


def test_a_daemon_pass_waits_for_the_lock_while_its_status_answers(tmp_path: Path) -> None:
    """A pass waits for a CLI holding the lock (saying so in an event), status still answers, then it converges."""
    world = DaemonWorld(tmp_path)
    world.reconciler.trigger("daemon started")
    thread = threading.Thread(target=world.run_next)
    with converging("unitd", "envd up --once"):
        thread.start()
        wait_for(
            lambda: any(e["kind"] == "lock" for e in world.drain()),
            timeout=10,
            message="the pass to say it waits for the lock",
        )
        assert world.reconciler.status()["daemon"]["passes"] == 0
        assert world.containers() == {}
    thread.join(10)
    assert world.reconciler.state.last_result == "ok", world.reconciler.state.last_error
    assert set(world.containers()) == {"unitd-web-1", "unitd-worker-1"}


def test_a_daemon_told_to_stop_gives_up_waiting_for_the_lock(tmp_path: Path) -> None:
    """SIGTERM while a pass waits for the lock ends the wait: the pass fails, nothing changes."""
    world = DaemonWorld(tmp_path)
    world.reconciler.trigger("daemon started")
    with converging("unitd", "envd up --once"):
        thread = threading.Thread(target=world.run_next)
        thread.start()
        wait_for(lambda: any(e["kind"] == "lock" for e in world.drain()), timeout=10)
        world.reconciler.stop()
        thread.join(10)
    assert world.reconciler.state.last_result == "failed"
    assert "stopped waiting for the lock" in world.reconciler.state.last_error
    assert world.containers() == {}


def test_stop_escalates_to_sigkill_when_the_daemon_ignores_sigterm(
    proj: Path, stubborn: subprocess.Popen[str]
) -> None:
    """A daemon that answers no socket and traps SIGTERM is SIGKILLed, verified gone, and it is said."""
    said: list[str] = []
    assert process.stop(proj, None, term_grace=0.3, notify=said.append) is True
    stubborn.wait(timeout=5)  # gone (stop reaped it: the code is lost)
    assert said == [
        f"the daemon (pid {stubborn.pid}) ignored SIGTERM for 0.3s; escalated to SIGKILL and it is gone"
    ]


def test_stop_escalates_when_the_daemon_answers_but_does_not_go(
    proj: Path, stubborn: subprocess.Popen[str]
) -> None:
    """A daemon that accepts /v1/stop but stays past the deadline gets SIGTERM, then SIGKILL."""
    paths = StatePaths.for_project(proj, None)
    said: list[str] = []
    with serving(paths.socket, FakeReconciler(), on_stop=lambda: None):
        assert process.stop(proj, None, timeout=0.2, term_grace=0.2, notify=said.append)
    stubborn.wait(timeout=5)  # gone (stop reaped it: the code is lost)
    assert "escalated to SIGKILL" in said[0]


def test_down_says_it_escalated(
    capsys: pytest.CaptureFixture[str],
    proj: Path,
    fake: FakeEngine,
    stubborn: subprocess.Popen[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`envd down` with a daemon that ignores SIGTERM ends it, says so, and removes the project."""
    monkeypatch.setattr(process, "TERM_GRACE", 0.3)
    code = run_cli(["down", "--json", "-C", str(proj)])
    out, err = capsys.readouterr()
    assert code == 0, err
    stubborn.wait(timeout=5)  # gone (stop reaped it: the code is lost)
    assert f"envd: the daemon (pid {stubborn.pid}) ignored SIGTERM" in err
    assert json.loads(out.splitlines()[-1])["result"] == "ok"


@pytest.mark.parametrize(
    "argv",
    [["unrelated"], ["-m", "envd", "-C", "/elsewhere", "daemon"]],
    ids=["other", "other-project"],
)
def test_a_reused_pid_is_never_signalled(proj: Path, argv: list[str]) -> None:
    """A pid file naming a process that is not this project's envd daemon: stop reports none, signals nothing."""
    other = stubborn_daemon(argv)
    try:
        paths = StatePaths.for_project(proj, None)
        paths.ensure()
        paths.pid.write_text(f"{other.pid}\n")
        assert process.stop(proj, None, term_grace=0.1) is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(timeout=10)


def test_run_holds_the_lock_to_create_the_one_off_and_not_while_it_runs(tmp_path: Path) -> None:
    """`envd run` creates its container under the lock and releases it before the container starts."""
    from contextlib import contextmanager

    from tests.unit.test_oneoff_fake import ExitingEngine, desired_from

    engine = ExitingEngine()
    desired = desired_from(tmp_path)
    calls_inside: list[int] = []

    @contextmanager
    def hold() -> Iterator[None]:
        yield
        calls_inside.append(len(engine.mutating_calls()))

    assert run_one_off(engine, desired, "db", ["true"], rm=False, hold=hold) == 0
    [inside] = calls_inside
    kinds = [c[0] for c in engine.mutating_calls()]
    assert kinds[inside - 1] == "create_container"
    assert "start_container" in kinds[inside:]
