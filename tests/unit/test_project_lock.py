"""The converge lock: one holder per project, a bounded wait that names the holder, a private directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envd.run import project_lock
from envd.run.project_lock import LockBusy, LockDirectoryUnsafe, converging, timeout_from
from envd.values.errors import UsageError
from tests.helpers import wait_for

# Takes the lock of argv[1] in directory argv[2], says so, holds it until stdin closes.
HOLDER = """
import sys
from pathlib import Path
from envd.run.project_lock import converging
with converging(sys.argv[1], "envd up --once", directory=Path(sys.argv[2])):
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def locks(tmp_path: Path) -> Path:
    return tmp_path / "locks"


def enter(directory: Path, project: str = "shop", **options: Any) -> None:
    """Take and release ``project``'s lock in ``directory``."""
    with converging(project, "envd up --once", directory=directory, **options):
        pass


def hold_in_subprocess(project: str, locks: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, project, str(locks)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_the_lock_file_lives_in_a_private_runtime_directory(tmp_path: Path) -> None:
    """With XDG_RUNTIME_DIR set, the lock is envd/locks/<project>.lock there: dirs 0700, file 0600."""
    with converging("shop", "envd up --once"):
        pass
    root = Path(os.environ["XDG_RUNTIME_DIR"]) / "envd"
    assert (root.stat().st_mode & 0o777, (root / "locks").stat().st_mode & 0o777) == (
        0o700,
        0o700,
    )
    assert (root / "locks" / "shop.lock").stat().st_mode & 0o777 == 0o600


def test_without_xdg_runtime_dir_the_lock_lives_under_tmp_per_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No XDG_RUNTIME_DIR: /tmp/envd-<uid>/locks."""
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert project_lock.lock_directory() == (Path("/tmp"), (f"envd-{os.geteuid()}", "locks"))


def test_a_second_caller_times_out_naming_the_holder(locks: Path) -> None:
    """Past the bound the second caller fails with one sentence naming the holder's pid and command."""
    holder = hold_in_subprocess("shop", locks)
    lines: list[str] = []
    try:
        with pytest.raises(LockBusy) as caught:
            enter(locks, timeout=0.3, on_wait=lines.append)
    finally:
        holder.communicate("")
    assert lines == [
        f"waiting for another envd (pid {holder.pid}, `envd up --once`) converging project shop…"
    ]
    assert str(caught.value).startswith(
        f"another envd (pid {holder.pid}, `envd up --once`) has been converging project shop"
    )
    assert "\n" not in str(caught.value)


def test_a_second_caller_waits_says_so_once_and_proceeds_when_the_holder_is_done(
    locks: Path,
) -> None:
    """The waiter announces once, then enters as soon as the holder releases."""
    holder = hold_in_subprocess("shop", locks)
    lines: list[str] = []

    def on_wait(line: str) -> None:
        lines.append(line)
        assert holder.stdin is not None
        holder.stdin.close()  # the holder finishes while we wait

    with converging("shop", "envd down", timeout=30, on_wait=on_wait, directory=locks):
        entered = True
    holder.wait(timeout=10)
    assert entered and len(lines) == 1


def test_a_killed_holder_releases_the_lock(locks: Path) -> None:
    """A holder killed with SIGKILL leaves no lock behind: the next caller enters without waiting."""
    holder = hold_in_subprocess("shop", locks)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    lines: list[str] = []
    with converging("shop", "envd up --once", timeout=5, on_wait=lines.append, directory=locks):
        pass
    assert lines == []


def test_projects_do_not_wait_for_each_other(locks: Path) -> None:
    """The lock is per engine-side project name: another project enters at once."""
    holder = hold_in_subprocess("shop", locks)
    try:
        with converging("shop-staging", "envd up --once", timeout=0, directory=locks):
            pass
    finally:
        holder.communicate("")


def test_a_cancelled_wait_stops_at_once(locks: Path) -> None:
    """A daemon told to stop gives up waiting without reaching the bound."""
    with (
        converging("shop", "envd down", directory=locks),
        pytest.raises(LockBusy, match="stopped waiting"),
    ):
        enter(locks, timeout=60, cancelled=lambda: True)


def test_a_symlinked_lock_directory_is_refused(tmp_path: Path) -> None:
    """A lock directory that is a symbolic link (another user may have planted it) is refused."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "locks").symlink_to(elsewhere)
    with pytest.raises(LockDirectoryUnsafe, match="symbolic link"):
        enter(tmp_path / "locks")
    assert list(elsewhere.iterdir()) == []


def test_a_lock_directory_others_can_write_is_refused(locks: Path) -> None:
    """A group- or world-writable lock directory is refused, naming its mode."""
    locks.mkdir()
    locks.chmod(0o777)
    with pytest.raises(LockDirectoryUnsafe, match="other users can write to it"):
        enter(locks)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")
def test_a_lock_directory_of_another_user_is_refused(locks: Path) -> None:
    """A lock directory owned by another user is refused, naming its owner."""
    locks.mkdir(mode=0o700)
    os.chown(locks, 65534, 65534)
    with pytest.raises(LockDirectoryUnsafe, match="belongs to uid 65534"):
        enter(locks)


def test_a_planted_lock_file_link_is_not_followed(tmp_path: Path, locks: Path) -> None:
    """A symbolic link in place of the lock file is refused, and its target stays untouched."""
    locks.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (locks / "shop.lock").symlink_to(victim)
    with pytest.raises(LockDirectoryUnsafe, match="cannot open the lock file"):
        enter(locks)
    assert victim.read_text() == "precious"


def test_an_odd_project_name_becomes_a_hashed_file_name(locks: Path) -> None:
    """A name that is not a plain file name is hashed, so it cannot climb out of the directory."""
    with converging("../../etc/passwd", "envd up --once", directory=locks):
        pass
    [name] = os.listdir(locks)
    assert name.startswith("project-") and name.endswith(".lock")


def test_the_wait_bound_comes_from_the_option_then_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--lock-timeout wins over ENVD_LOCK_TIMEOUT, which wins over 60 s; a bad value is exit 2."""
    assert timeout_from(None) == 60.0
    monkeypatch.setenv("ENVD_LOCK_TIMEOUT", "5")
    assert timeout_from(None) == 5.0
    assert timeout_from(1.5) == 1.5
    monkeypatch.setenv("ENVD_LOCK_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="ENVD_LOCK_TIMEOUT"):
        timeout_from(None)


def test_a_threads_wait_ends_when_another_thread_releases(locks: Path) -> None:
    """Within one process too, a second holder waits for the first (each opens its own file)."""
    entered = threading.Event()
    release = threading.Event()

    def first() -> None:
        with converging("shop", "envd daemon", directory=locks):
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    wait_for(entered.is_set, timeout=5)
    lines: list[str] = []

    def on_wait(line: str) -> None:
        lines.append(line)
        release.set()

    with converging("shop", "envd up --once", timeout=10, on_wait=on_wait, directory=locks):
        pass
    thread.join(5)
    assert lines == [
        f"waiting for another envd (pid {os.getpid()}, `envd daemon`) converging project shop…"
    ]


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A sticky, world-writable directory like /tmp that another user can reach."""
    path = Path(tempfile.mkdtemp(prefix="envd-lock-shared-"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_nobody(*argv: str) -> None:
    """Run the command ``argv`` as the unprivileged user nobody (65534)."""

    def drop() -> None:
        os.setgid(65534)
        os.setuid(65534)

    subprocess.run(argv, check=True, preexec_fn=drop)


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as a second user needs root")
def test_a_lock_directory_planted_by_another_user_is_refused(shared_tmp: Path) -> None:
    """Another user who creates the lock directory first in a shared /tmp gets nothing: it is refused."""
    as_nobody("mkdir", "-m", "700", str(shared_tmp / "locks"))
    with pytest.raises(LockDirectoryUnsafe, match="belongs to uid 65534"):
        enter(shared_tmp / "locks")


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as a second user needs root")
def test_a_lock_directory_link_planted_by_another_user_is_refused(shared_tmp: Path) -> None:
    """Another user's symbolic link in place of the lock directory is refused and not followed."""
    target = shared_tmp / "theirs"
    as_nobody("mkdir", "-m", "777", str(target))
    as_nobody("ln", "-s", str(target), str(shared_tmp / "locks"))
    with pytest.raises(LockDirectoryUnsafe, match="symbolic link"):
        enter(shared_tmp / "locks")
    assert list(target.iterdir()) == []
