"""Finding, starting and stopping a project's daemon: the bookkeeping around the process.

No daemon process runs here: ``subprocess.Popen`` is replaced by a fake, and
"a running daemon" is the real control API served from a thread with a fake
reconciler.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from envd.daemon import process
from envd.daemon.paths import StatePaths
from envd.inputs.prepare import Target
from envd.values.errors import EnvdError
from tests.helpers import FakeReconciler, serving, wait_for


def test_state_paths_keep_environments_apart(tmp_path: Path) -> None:
    """Each environment of a project has its own socket, pid, log and lock under .envd/."""
    plain = StatePaths.for_project(tmp_path, None)
    staging = StatePaths.for_project(tmp_path, "staging")
    assert plain.socket == tmp_path / ".envd" / "daemon.sock"
    assert staging.pid == tmp_path / ".envd" / "env-staging" / "daemon.pid"
    staging.ensure()
    assert (staging.root.stat().st_mode & 0o777, staging.root.parent.stat().st_mode & 0o777) == (
        0o700,
        0o700,
    )


def test_running_is_none_without_a_socket(tmp_path: Path) -> None:
    """No socket file: no daemon, and nothing is connected to."""
    assert process.running(tmp_path, None) is None


def test_running_is_none_when_a_stale_socket_does_not_answer(tmp_path: Path) -> None:
    """A socket file left by a killed daemon does not count as a running daemon."""
    paths = StatePaths.for_project(tmp_path, None)
    paths.ensure()
    with serving(paths.socket, FakeReconciler()):
        pass
    paths.socket.touch(exist_ok=True)
    assert process.running(tmp_path, None) is None


def test_running_answers_a_client_for_a_live_daemon(tmp_path: Path) -> None:
    """A daemon answering on the project's socket is found, per environment."""
    paths = StatePaths.for_project(tmp_path, "dev")
    paths.ensure()
    with serving(paths.socket, FakeReconciler()):
        client = process.running(tmp_path, "dev")
        assert client is not None and client.path == str(paths.socket)
        assert process.running(tmp_path, None) is None


def test_stop_without_a_daemon_is_false(tmp_path: Path) -> None:
    """Stopping a project with no daemon reports that none ran."""
    assert process.stop(tmp_path, None) is False


def test_stop_asks_the_daemon_and_waits_for_its_pid_file(tmp_path: Path) -> None:
    """stop() sends /v1/stop and returns once the daemon has removed its pid file."""
    paths = StatePaths.for_project(tmp_path, None)
    paths.ensure()
    paths.pid.write_text(f"{os.getpid()}\n")  # alive: only the pid file's removal ends the wait
    reconciler = FakeReconciler()
    stopped: list[bool] = []

    def on_stop() -> None:
        stopped.append(True)
        paths.pid.unlink()

    with serving(paths.socket, reconciler, on_stop=on_stop):
        assert process.stop(tmp_path, None, timeout=10.0) is True
    assert stopped == [True]


class FakePopen:
    """Records how the daemon would be started; ``code`` is what poll() answers."""

    started: ClassVar[list[FakePopen]] = []
    code: int | None = None

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        FakePopen.started.append(self)
        stdout = kwargs["stdout"]
        stdout.write(b"booting\nenvd: the spec is broken\nline 3: bad key\n")

    def poll(self) -> int | None:
        return FakePopen.code


@pytest.fixture
def fake_popen(monkeypatch: pytest.MonkeyPatch) -> type[FakePopen]:
    FakePopen.started = []
    FakePopen.code = None
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    return FakePopen


def test_start_runs_the_daemon_detached_with_the_callers_target(
    tmp_path: Path, fake_popen: type[FakePopen]
) -> None:
    """The daemon is this Python running this envd, for the same file, environment and profiles."""
    paths = StatePaths.for_project(tmp_path, "dev")
    paths.ensure()
    with serving(paths.socket, FakeReconciler()):
        client = process.start(
            Target(
                str(tmp_path), file="envd.toml", environment="dev", profiles=frozenset({"b", "a"})
            ),
            tmp_path,
            "dev",
        )
    assert client.path == str(paths.socket)
    (proc,) = fake_popen.started
    assert proc.args == [
        sys.executable, "-m", "envd", "-C", str(tmp_path),
        "-f", str(Path("envd.toml").absolute()),
        "--env", "dev", "--profile", "a", "--profile", "b", "daemon",
    ]  # fmt: skip
    assert proc.kwargs["start_new_session"] is True
    assert proc.kwargs["stdin"] == subprocess.DEVNULL
    assert proc.kwargs["cwd"] == str(tmp_path)
    package_root = str(Path(process.__file__).resolve().parents[2])
    assert proc.kwargs["env"]["PYTHONPATH"].split(os.pathsep)[0] == package_root


def test_start_reports_the_tail_of_a_daemon_that_exits(
    tmp_path: Path, fake_popen: type[FakePopen]
) -> None:
    """A daemon that exits non-zero before answering: the error quotes its last output lines."""
    fake_popen.code = 2
    with pytest.raises(EnvdError, match="exited with code 2: booting / envd: the spec is broken"):
        process.start(Target(str(tmp_path)), tmp_path, None)


def test_start_gives_up_when_nothing_answers(tmp_path: Path, fake_popen: type[FakePopen]) -> None:
    """A daemon that neither answers nor exits within the timeout is reported, with its log."""
    with pytest.raises(EnvdError, match=r"did not answer .* within 0s; see .*daemon.out"):
        process.start(Target(str(tmp_path)), tmp_path, None, timeout=0.2)


def test_alive_reaps_an_exited_child(tmp_path: Path) -> None:
    """A child that exited is not alive, even before anyone waited for it (a zombie)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert process._alive(os.getpid())
    # Poll with a deadline: the child needs a moment to exit.
    wait_for(lambda: not process._alive(child.pid), timeout=10)


def test_one_lock_per_project_environment(tmp_path: Path) -> None:
    """A second daemon for the same project and environment does not get the lock; another
    environment does, and the lock is free again once its holder closes it."""
    from envd.daemon.main import acquire_lock

    dev, prod = StatePaths.for_project(tmp_path, "dev"), StatePaths.for_project(tmp_path, "prod")
    dev.ensure()
    prod.ensure()
    first = acquire_lock(dev)
    assert first is not None
    try:
        assert acquire_lock(dev) is None
        other = acquire_lock(prod)
        assert other is not None
        os.close(other)
    finally:
        os.close(first)
    again = acquire_lock(dev)
    assert again is not None
    os.close(again)
