"""The converge lock's file: where it lives, opened safely, and its holder line.

Split from ``envd.run.project_lock`` (which says what the lock means and
waits for it) so the lean entry, which takes the lock without waiting before
anything else of envd is loaded, opens the very same file the same way
without loading ``json``, ``re``, ``pathlib`` or ``dataclasses``.
"""

from __future__ import annotations

import errno
import os
import stat

from envd.values import jsontext
from envd.values.error_base import EnvdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

_NAME_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_NAME_REST = _NAME_FIRST | frozenset("_.-")


class LockDirectoryUnsafe(EnvdError):
    """The lock directory could be planted or replaced by another user."""


def lock_base() -> tuple[str, tuple[str, ...]]:
    """The trusted base directory and the parts envd creates under it."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return xdg, ("envd", "locks")
    return "/tmp", (f"envd-{os.geteuid()}", "locks")


def _open_private_dir(parent_fd: int, name: str, shown: str) -> int:
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


def file_name(project: str) -> str:
    """The lock file's name: the project's own when it is a plain name, else its digest."""
    plain = 1 <= len(project) <= 101 and project[0] in _NAME_FIRST
    if plain and all(c in _NAME_REST for c in project):
        return f"{project}.lock"
    from envd.values.sha import sha256

    return f"project-{sha256(project.encode()).hexdigest()[:24]}.lock"


def open_lock_file(project: str, directory: str | Path | None = None) -> int:
    """The project's lock file, opened read-write (never through a link), mode 0600."""
    if directory is None:
        base, parts = lock_base()
    else:
        parent, name = os.path.split(os.fspath(directory))
        base, parts = parent, (name,)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    shown = base
    try:
        for part in parts:
            shown = os.path.join(shown, part)
            child = _open_private_dir(fd, part, shown)
            os.close(fd)
            fd = child
        name = file_name(project)
        try:
            lock_fd = os.open(
                name,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=fd,
            )
        except OSError as exc:
            raise LockDirectoryUnsafe(
                f"cannot open the lock file {os.path.join(shown, name)}: {exc.strerror}"
            ) from None
    finally:
        os.close(fd)
    info = os.fstat(lock_fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(lock_fd)
        raise LockDirectoryUnsafe(
            f"refusing the lock file {os.path.join(shown, name)}: not a regular file of yours"
        )
    return lock_fd


def write_holder(fd: int, command: str) -> None:
    """Name this process as the holder (``{"pid": ..., "command": ...}``, as ``json`` writes it)."""
    data = jsontext.dumps({"pid": os.getpid(), "command": command}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
