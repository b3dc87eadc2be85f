"""One converge at a time per engine-side project name.

Everything that changes a project on the engine (``up``, ``up --once``,
``down``, ``run``, ``deploy``, ``lock``, each daemon pass) holds this lock
while it plans and applies, so two of them never race on the same container
names: the second waits, then re-plans against what the first left.

The lock is ``flock(2)`` on a file named after the engine-side project name
(two checkouts of one project name collide on the engine, so the directory is
not the key), in a per-user runtime directory: ``$XDG_RUNTIME_DIR/envd/locks``
or ``/tmp/envd-<uid>/locks``. Each directory envd creates there is 0700 and is
refused when it is a symbolic link, not the user's, or writable by others: a
lock another user can replace serialises nothing. The kernel drops a flock when
its holder dies (``kill -9`` included), so a crash never leaves it held.

Across users the lock does not reach: root and a user sharing one engine each
have their own lock directory, and do not wait for each other.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from envd.values.errors import EnvdError, UsageError
from envd.values.record import value

DEFAULT_TIMEOUT = 60.0
TIMEOUT_VARIABLE = "ENVD_LOCK_TIMEOUT"
POLL_SECONDS = 0.05
_HOLDER_MAX_BYTES = 4096
_NAME_GRACE = 0.5
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}")


class LockBusy(EnvdError):
    """Another envd kept converging the project past the wait bound (or the wait was cancelled)."""


class LockDirectoryUnsafe(EnvdError):
    """The lock directory could be planted or replaced by another user."""


@value
class Holder:
    """Who holds a project's lock, as the holder wrote it into the lock file."""

    pid: int
    command: str

    def describe(self) -> str:
        return f"pid {self.pid}, `{self.command}`"


def timeout_from(option: float | None) -> float:
    """The wait bound: the option, else ``ENVD_LOCK_TIMEOUT``, else 60 s."""
    if option is not None:
        return max(0.0, option)
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        return max(0.0, float(text))
    except ValueError:
        raise UsageError(f"{TIMEOUT_VARIABLE} takes a number of seconds, not {text!r}") from None


def lock_directory() -> tuple[Path, tuple[str, ...]]:
    """The trusted base directory and the parts envd creates under it."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return Path(xdg), ("envd", "locks")
    return Path("/tmp"), (f"envd-{os.geteuid()}", "locks")


def _open_private_dir(parent_fd: int, name: str, shown: Path) -> int:
    """Create (0700) or open ``name`` under ``parent_fd``, refusing anything another user controls."""
    try:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LockDirectoryUnsafe(
                f"refusing the lock directory {shown}: it is a symbolic link or not a directory"
            ) from None
        raise LockDirectoryUnsafe(
            f"cannot open the lock directory {shown}: {exc.strerror}"
        ) from None
    info = os.fstat(fd)
    problem = ""
    if info.st_uid != os.geteuid():
        problem = f"it belongs to uid {info.st_uid}, not to you (uid {os.geteuid()})"
    elif info.st_mode & 0o022:
        problem = f"other users can write to it (mode {stat.S_IMODE(info.st_mode):o})"
    if problem:
        os.close(fd)
        raise LockDirectoryUnsafe(f"refusing the lock directory {shown}: {problem}")
    return fd


def _file_name(project: str) -> str:
    if _SAFE_NAME.fullmatch(project):
        return f"{project}.lock"
    import hashlib

    return f"project-{hashlib.sha256(project.encode()).hexdigest()[:24]}.lock"


def open_lock_file(project: str, directory: Path | None = None) -> int:
    """The project's lock file, opened read-write (never through a link), mode 0600."""
    if directory is None:
        base, parts = lock_directory()
    else:
        base, parts = directory.parent, (directory.name,)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    shown = base
    try:
        for part in parts:
            shown = shown / part
            child = _open_private_dir(fd, part, shown)
            os.close(fd)
            fd = child
        name = _file_name(project)
        try:
            lock_fd = os.open(
                name,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=fd,
            )
        except OSError as exc:
            raise LockDirectoryUnsafe(
                f"cannot open the lock file {shown / name}: {exc.strerror}"
            ) from None
    finally:
        os.close(fd)
    info = os.fstat(lock_fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(lock_fd)
        raise LockDirectoryUnsafe(
            f"refusing the lock file {shown / name}: not a regular file of yours"
        )
    return lock_fd


def read_holder(fd: int) -> Holder | None:
    """The holder the lock file names; None while it is being written or unreadable."""
    try:
        data = os.pread(fd, _HOLDER_MAX_BYTES, 0)
        record = json.loads(data.decode("utf-8"))
        return Holder(int(record["pid"]), str(record["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_holder(fd: int, command: str) -> None:
    data = json.dumps({"pid": os.getpid(), "command": command}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def waiting_message(project: str, holder: Holder | None) -> str:
    who = f" ({holder.describe()})" if holder is not None else ""
    return f"waiting for another envd{who} converging project {project}…"


@contextmanager
def converging(
    project: str,
    command: str,
    *,
    timeout: float | None = None,
    on_wait: Callable[[str], object] | None = None,
    cancelled: Callable[[], bool] | None = None,
    directory: Path | None = None,
) -> Iterator[None]:
    """Hold ``project``'s converge lock for the ``with`` block.

    A second caller waits at most ``timeout`` seconds (see ``timeout_from``),
    calling ``on_wait`` once with the one line to show, then proceeds; past
    the bound, or when ``cancelled()`` turns true, it raises ``LockBusy``
    naming the holder. Hold it only around planning and applying, never while
    waiting for a person.
    """
    bound = timeout_from(timeout)
    fd = open_lock_file(project, directory)
    try:
        started = time.monotonic()
        deadline = started + bound
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
            holder = read_holder(fd)
            # The holder names itself just after it takes the lock: give it a
            # moment so the one line can say who it is.
            named = holder is not None or time.monotonic() - started > _NAME_GRACE
            if not announced and named and on_wait is not None:
                on_wait(waiting_message(project, holder))
                announced = True
            if cancelled is not None and cancelled():
                raise LockBusy(f"stopped waiting for the lock of project {project}")
            if time.monotonic() >= deadline:
                who = f"another envd ({holder.describe()})" if holder else "another envd"
                raise LockBusy(
                    f"{who} has been converging project {project} for longer than"
                    f" {bound:.0f}s; try again when it is done, or raise the wait with"
                    f" --lock-timeout or {TIMEOUT_VARIABLE}"
                )
            time.sleep(POLL_SECONDS)
        _write_holder(fd, command)
        try:
            yield
        finally:
            # A waiter reading the file after this sees no stale holder.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
