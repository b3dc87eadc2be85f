"""Reading and writing files a cloned repository or another user may have planted.

``read_regular`` never blocks on a FIFO, never reads a device or a file above
its cap, and (with ``follow=False``) never follows a link; ``write_replacing``
writes a fresh temp file (never through a planted link) and renames it over
the target.
"""

from __future__ import annotations

import errno
import os
import stat

from envd.values.error_base import EnvdError

TYPE_CHECKING = False
if TYPE_CHECKING:  # paths may be strings: the lean entry loads no pathlib
    from pathlib import Path


class NotRegular(OSError):
    """The path is not a regular file (of ours, when asked) within the size cap."""


def read_regular(path: str | Path, cap: int, *, follow: bool = True, own: bool = False) -> bytes:
    """The bytes of ``path``: a regular file of at most ``cap`` bytes (``own``: ours).

    Raises ``FileNotFoundError`` when it does not exist, ``NotRegular`` when it
    is a FIFO, a device, a directory, too big, someone else's (``own``), or a
    link (``follow=False``, then an ``OSError`` with ELOOP).
    """
    # O_NONBLOCK: opening a planted FIFO must not wait for a writer.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(f"{path} is not a regular file")
        if own and st.st_uid != os.geteuid():
            raise NotRegular(f"{path} belongs to uid {st.st_uid}")
        if st.st_size > cap:
            raise NotRegular(f"{path} is larger than {cap} bytes")
        chunks: list[bytes] = []
        left = cap + 1  # one byte past the cap: a file that grew while read is refused
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > cap:
        raise NotRegular(f"{path} is larger than {cap} bytes")
    return data


def write_replacing(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new temp file beside ``path`` and rename it over ``path``.

    The temp name is random and created exclusively without following links,
    so a planted link at a predictable name cannot redirect the write; the
    rename replaces a link at ``path`` itself, never its target.
    """
    folder, name = os.path.split(os.fspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


class UnsafeStateDir(EnvdError):
    """The project's ``.envd/`` is not a private directory of this user: nothing is written to it."""

    exit_code = 2


def own_dir(path: Path, *, create: bool = True) -> Path:
    """``path`` after checking it is a real directory of ours that no one else may write.

    Created (mode 0700) when missing and ``create``. A cloned repository may ship
    its own ``.envd/``: a link, another user's directory or loose modes are
    refused, never repaired, since a planted entry inside would already be there.
    """
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UnsafeStateDir(f"{path} does not exist") from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeStateDir(
            f"{path} is a symbolic link; envd keeps its state only in a real directory"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeStateDir(f"{path} is not a directory")
    if st.st_uid != os.geteuid():
        raise UnsafeStateDir(
            f"{path} belongs to uid {st.st_uid}, not to you (uid {os.geteuid()}); remove it"
        )
    if st.st_mode & 0o022:
        raise UnsafeStateDir(
            f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o});"
            f" run `chmod go-w {path}`"
        )
    return path


def open_own(path: Path, flags: int, mode: int = 0o600) -> int:
    """A descriptor on ``path`` (``flags`` plus no-follow), refused unless a regular file of ours."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise UnsafeStateDir(f"{path} is a symbolic link; remove it") from None
    st = os.fstat(fd)
    # A hard link would redirect appends as a symlink does; envd never makes one.
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink > 1:
        os.close(fd)
        raise UnsafeStateDir(f"{path} is not a regular file of yours alone; remove it")
    return fd


def append_nofollow(path: Path, mode: int = 0o600) -> int:
    """A descriptor appending to ``path`` (created if missing), never through a link."""
    return open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
