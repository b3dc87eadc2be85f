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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from envd.run.lock_file import LockDirectoryUnsafe, lock_base, open_lock_file
from envd.run.lock_file import write_holder as _write_holder
from envd.values.errors import EnvdError, UsageError
from envd.values.record import value

__all__ = ["LockDirectoryUnsafe", "open_lock_file"]  # the lock's file: envd.run.lock_file

DEFAULT_TIMEOUT = 60.0
TIMEOUT_VARIABLE = "ENVD_LOCK_TIMEOUT"
POLL_SECONDS = 0.05
_HOLDER_MAX_BYTES = 4096
_NAME_GRACE = 0.5


class LockBusy(EnvdError):
    """Another envd kept converging the project past the wait bound (or the wait was cancelled)."""


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
    base, parts = lock_base()
    return Path(base), parts


def read_holder(fd: int) -> Holder | None:
    """The holder the lock file names; None while it is being written or unreadable."""
    try:
        data = os.pread(fd, _HOLDER_MAX_BYTES, 0)
        record = json.loads(data.decode("utf-8"))
        return Holder(int(record["pid"]), str(record["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
