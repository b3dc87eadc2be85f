"""The daemon's inotify tree watcher (envd.daemon.inotify), on real directories.

Linux's inotify is the kernel's, not an engine's: these run on this machine's
file system with no engine at all.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envd.daemon.inotify import TreeWatch
from tests.helpers import wait_for


class Watching:
    """A TreeWatch run on its own thread, collecting every burst it yields."""

    def __init__(self, root: Path, skip: tuple[str, ...] = (".git",)) -> None:
        self.root = root
        self.warnings: list[str] = []
        self.tree = TreeWatch(root, skip, self.warnings.append)
        self.bursts: list[set[str]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for burst in self.tree.changes(quiet=0.01, most=0.03):
            self.bursts.append(burst)

    def start(self) -> Watching:
        self.thread.start()
        return self

    def seen(self) -> set[str]:
        return set().union(*self.bursts) if self.bursts else set()

    def wait_seen(self, *paths: Path) -> None:
        wanted = {str(p) for p in paths}
        wait_for(lambda: wanted <= self.seen(), 5, 0.005, f"{sorted(wanted)} reported")

    def stop(self) -> None:
        self.tree.stop()
        self.thread.join(5)
        self.tree.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "project"
    (r / "src" / "deep").mkdir(parents=True)
    (r / ".git").mkdir()
    return r


@pytest.fixture
def watching(root: Path) -> Iterator[Watching]:
    w = Watching(root).start()
    yield w
    w.stop()


def test_a_file_written_deep_in_the_tree_is_reported(root: Path, watching: Watching) -> None:
    """A write two directories down is reported as that file's path."""
    target = root / "src" / "deep" / "main.py"
    target.write_text("print(1)")
    watching.wait_seen(target)


def test_a_new_directorys_files_are_reported_and_it_is_watched(
    root: Path, watching: Watching
) -> None:
    """A directory made with files in it reports them (written before its watch
    existed), and later writes inside it are seen too."""
    os.makedirs(root / "new" / "inner")
    first = root / "new" / "inner" / "a.txt"
    first.write_text("a")
    watching.wait_seen(root / "new", first)
    later = root / "new" / "inner" / "b.txt"
    later.write_text("b")
    watching.wait_seen(later)


def test_a_directory_moved_in_is_walked_and_one_moved_out_is_forgotten(
    root: Path, tmp_path: Path, watching: Watching
) -> None:
    """A tree moved into the project reports its files; moved out, it is no longer watched."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "f").write_text("f")
    os.rename(outside, root / "src" / "moved")
    watching.wait_seen(root / "src" / "moved" / "sub" / "f")
    watched = watching.tree.watched
    os.rename(root / "src" / "moved", tmp_path / "away")
    watching.wait_seen(root / "src" / "moved")
    wait_for(lambda: watching.tree.watched == watched - 2, 5, 0.005, "two watches dropped")


def test_a_file_still_open_for_writing_is_handed_over_once_closed(
    root: Path, watching: Watching
) -> None:
    """A write paused mid-file (a loaded machine) is not handed over half done: the burst
    waits for the file's close."""
    target = root / "src" / "half.txt"
    with open(target, "w") as f:
        f.write("first half ")
        f.flush()
        threading.Event().wait(0.15)  # the pause under test: longer than a burst's quiet
        assert watching.bursts == []
        f.write("second half")
    watching.wait_seen(target)
    assert len(watching.bursts) == 1


def test_skipped_directories_are_not_entered(root: Path, watching: Watching) -> None:
    """Writes under a skipped directory (.git) reach nobody; the next real edit does."""
    (root / ".git" / "HEAD").write_text("ref: x")
    edit = root / "src" / "x.py"
    edit.write_text("x")
    watching.wait_seen(edit)
    assert not any(".git" in p for p in watching.seen())


def test_a_lost_queue_reports_the_root(root: Path) -> None:
    """Events lost to a full kernel queue report the root, so everything is looked at."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    w = Watching(root)
    pair = [root / "src" / "f", root / "src" / "g"]
    for p in pair:
        p.write_text("")
    for i in range(limit + 10):  # queued while nobody reads; alternating, so none coalesce
        os.utime(pair[i % 2])
    w.start()
    try:
        w.wait_seen(root)
    finally:
        w.stop()


def test_the_watching_thread_sleeps_while_nothing_changes(watching: Watching) -> None:
    """No change, no wake-up: the thread stays in poll(2) (watchfiles' loop woke every 20 ms)."""
    status = Path(f"/proc/self/task/{watching.thread.native_id}/status")

    def switches() -> int:
        line = next(x for x in status.read_text().splitlines() if x.startswith("voluntary"))
        return int(line.split()[1])

    wait_for(lambda: switches() > 0, 5, 0.01, "the thread parked")
    before = switches()
    threading.Event().wait(0.5)  # the window measured, not a wait for a condition
    assert switches() - before <= 1


def test_stop_ends_the_stream_at_once(watching: Watching) -> None:
    """stop() wakes the sleeping thread, which ends within a moment."""
    started = time.monotonic()
    watching.tree.stop()
    watching.thread.join(5)
    assert not watching.thread.is_alive()
    assert time.monotonic() - started < 1.0
