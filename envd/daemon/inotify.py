"""Blocking, recursive file watching on Linux's inotify (ctypes; no poll step).

watchfiles hands changes over from a loop that wakes every ``step`` ms whether
or not anything changed (its Rust side sleeps, takes the GIL and asks the stop
event): at the 20 ms step sync latency needs, 50 wake-ups a second and most of
an idle daemon's CPU. This watcher sleeps in poll(2) on the inotify descriptor
and a stop pipe, and wakes only for a change or to stop.

inotify watches one directory per watch: the tree is walked once, and every
directory created or moved in later is watched and walked as it appears; what
the walk finds is reported too, since it may have been written before the
watch existed. Directories named in ``skip`` are not entered, symbolic links
are not followed (sync copies links as links). A queue overflow reports the
root itself, so the caller looks at everything.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_ISDIR = 0x40000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000

# What notify (watchfiles' backend) asks for, so the same edits are seen.
_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


def _libc() -> ctypes.CDLL:
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, "inotify is Linux's")
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "inotify_init1"):
        raise OSError(errno.ENOSYS, "this C library has no inotify")
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


class TreeWatch:
    """inotify over ``root`` and its subdirectories; ``changes()`` yields bursts of paths.

    ``warn`` is told once when the kernel's watch table is full (some
    directories then go unwatched; the daemon's passes still sync them).
    """

    def __init__(self, root: Path, skip: Collection[str], warn: Callable[[str], object]) -> None:
        self._libc = _libc()
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self._fd: int = fd
        self._stop_r, self._stop_w = os.pipe()
        self._lock = threading.Lock()
        self._closed = False
        self.root = str(root)
        self._skip = frozenset(skip)
        self._warn = warn
        self._full = False
        self._writing: set[str] = set()  # files modified and not yet closed
        self._paths: dict[int, str] = {}  # watch descriptor -> directory
        self._watched: dict[str, int] = {}  # directory -> watch descriptor
        try:
            if not self._add(self.root):
                raise OSError(errno.ENOENT, f"cannot watch {self.root}")
            self._walk(self.root, None)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ watches
    def _add(self, directory: str) -> bool:
        wd = self._libc.inotify_add_watch(
            self._fd, os.fsencode(directory), _MASK | IN_ONLYDIR | IN_DONT_FOLLOW
        )
        if wd < 0:
            code = ctypes.get_errno()
            if code == errno.ENOSPC:
                if not self._full:
                    self._full = True
                    self._warn(
                        f"the kernel's inotify watch table is full: {directory} and later "
                        "directories are not watched (raise fs.inotify.max_user_watches)"
                    )
                return False
            if code in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP):
                return False  # gone again, not a directory, or not ours to read
            raise OSError(code, f"inotify_add_watch {directory}: {os.strerror(code)}")
        old = self._paths.get(wd)
        if old is not None and self._watched.get(old) == wd:
            del self._watched[old]
        self._paths[wd] = directory
        self._watched[directory] = wd
        return True

    def _walk(self, top: str, found: set[str] | None) -> None:
        """Watch every directory under ``top`` (already watched); ``found`` gets what is there."""
        stack = [top]
        while stack:
            try:
                with os.scandir(stack.pop()) as entries:
                    listed = list(entries)
            except OSError:
                continue
            for entry in listed:
                if found is not None:
                    found.add(entry.path)
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir and entry.name not in self._skip and self._add(entry.path):
                    stack.append(entry.path)

    def _forget(self, directory: str) -> None:
        """Stop watching a directory that moved away, and everything under it."""
        prefix = directory + os.sep
        for path, wd in list(self._watched.items()):
            if path == directory or path.startswith(prefix):
                del self._watched[path]
                self._paths.pop(wd, None)
                self._libc.inotify_rm_watch(self._fd, wd)

    # ------------------------------------------------------------------ events
    def _read(self, out: set[str]) -> None:
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return
            if not data:
                return
            pos = 0
            while pos + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
                start = pos + _EVENT.size
                name = data[start : start + length].split(b"\0", 1)[0]
                pos = start + length
                self._event(wd, mask, os.fsdecode(name), out)

    def _event(self, wd: int, mask: int, name: str, out: set[str]) -> None:
        if mask & IN_Q_OVERFLOW:
            out.add(self.root)  # events were lost: the caller looks at everything
            return
        if mask & IN_IGNORED:  # the watch is gone (its directory was removed)
            path = self._paths.pop(wd, None)
            if path is not None and self._watched.get(path) == wd:
                del self._watched[path]
            return
        base = self._paths.get(wd)
        if base is None:
            return
        if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
            if base == self.root:
                out.add(base)
            return  # a subdirectory: its parent's watch reports it
        path = os.path.join(base, name) if name else base
        out.add(path)
        if not mask & IN_ISDIR:
            if mask & (IN_CREATE | IN_MODIFY):
                self._writing.add(path)
            elif mask & (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM):
                self._writing.discard(path)
        if mask & IN_ISDIR:
            if mask & IN_MOVED_FROM:
                self._forget(path)
            if mask & (IN_CREATE | IN_MOVED_TO) and name not in self._skip and self._add(path):
                self._walk(path, out)

    def _wait(self, poller: select.poll, seconds: float | None) -> str:
        """'change', 'stop' or 'quiet' (nothing within ``seconds``; None: wait for ever)."""
        timeout = None if seconds is None else max(0, int(seconds * 1000 + 0.999))
        ready = {fd for fd, _ in poller.poll(timeout)}
        if self._stop_r in ready:
            return "stop"
        return "change" if self._fd in ready else "quiet"

    def changes(self, quiet: float, most: float, settle: float = 0.5) -> Iterator[set[str]]:
        """Bursts of changed paths: a burst ends after ``quiet`` s without a change, or
        ``most`` s after it began; but while a file written in it is still open for
        writing (a write descheduled between truncate and write on a loaded machine),
        up to ``settle`` s for its close, so a half-written file is not handed over.
        Ends when ``stop()`` is called."""
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            if self._wait(poller, None) == "stop":
                return
            out: set[str] = set()
            self._read(out)
            began = time.monotonic()
            while True:
                end = began + (settle if self._writing & out else most)
                left = end - time.monotonic()
                if left <= 0:
                    break
                state = self._wait(poller, min(quiet, left))
                if state == "stop":
                    return
                if state == "quiet" and not self._writing & out:
                    break
                if state == "change":
                    self._read(out)
            self._writing.clear()  # whatever is still open goes now; its close comes later
            if out:
                yield out

    # ------------------------------------------------------------------ life
    def stop(self) -> None:
        """End ``changes()`` (from any thread)."""
        with self._lock:
            if not self._closed:
                os.write(self._stop_w, b"x")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._fd, self._stop_r, self._stop_w):
                os.close(fd)

    @property
    def watched(self) -> int:
        """How many directories are watched."""
        return len(self._watched)
