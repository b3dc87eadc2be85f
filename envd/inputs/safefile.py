"""Reading and writing files a cloned repository or another user may have planted.

``read_regular`` never blocks on a FIFO, never reads a device or a file above
its cap, and (with ``follow=False``) never follows a link; ``write_replacing``
writes a fresh temp file (never through a planted link) and renames it over
the target.
"""

from __future__ import annotations

import os
import secrets as _random
import stat
from pathlib import Path


class NotRegular(OSError):
    """The path is not a regular file (of ours, when asked) within the size cap."""


def read_regular(path: Path, cap: int, *, follow: bool = True, own: bool = False) -> bytes:
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{_random.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
