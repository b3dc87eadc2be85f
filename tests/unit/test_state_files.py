"""Files in ``.envd/`` are never opened through a link a repository planted there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from envd.daemon import main as daemon_main
from envd.daemon import process
from envd.daemon.paths import StatePaths
from envd.inputs.buildctx import context_digest
from envd.inputs.safefile import UnsafeStateDir
from envd.inputs.target import Target


@pytest.fixture
def planted(tmp_path: Path) -> tuple[StatePaths, Path]:
    """A project whose .envd/ is ours, and a victim file outside it."""
    project = tmp_path / "proj"
    project.mkdir()
    paths = StatePaths.for_project(project, None)
    paths.ensure()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    return paths, victim


def test_a_pid_link_is_replaced_not_written_through(planted: tuple[StatePaths, Path]) -> None:
    """The daemon's pid write replaces a planted daemon.pid link; the victim stays as it was."""
    paths, victim = planted
    paths.pid.symlink_to(victim)
    daemon_main.write_pid(paths)
    assert victim.read_text() == "precious\n"
    assert not paths.pid.is_symlink()
    assert paths.pid.read_text() == f"{os.getpid()}\n"


def test_a_pid_link_is_not_read(planted: tuple[StatePaths, Path]) -> None:
    """`envd down` does not take a pid from a file a daemon.pid link points at."""
    paths, victim = planted
    victim.write_text("1\n")
    paths.pid.symlink_to(victim)
    assert process._pid(paths) is None


def test_an_output_link_refuses_the_start(planted: tuple[StatePaths, Path]) -> None:
    """A daemon.out link makes `up` refuse before a daemon starts; nothing is appended."""
    paths, victim = planted
    paths.output.symlink_to(victim)
    project = paths.root.parent
    with pytest.raises(UnsafeStateDir, match="symbolic link"):
        process.start(Target(project_dir=str(project)), project, None, timeout=1.0)
    assert victim.read_text() == "precious\n"


def test_a_log_link_is_refused(planted: tuple[StatePaths, Path]) -> None:
    """The daemon's log handler refuses a daemon.log link instead of appending to its target."""
    paths, victim = planted
    paths.log.symlink_to(victim)
    with pytest.raises(UnsafeStateDir):
        daemon_main.configure_logging(paths)
    assert victim.read_text() == "precious\n"


def test_a_lock_link_is_refused(planted: tuple[StatePaths, Path]) -> None:
    """A daemon.lock link is refused; its target is neither created nor locked."""
    paths, victim = planted
    target = victim.parent / "absent"
    paths.lock.symlink_to(target)
    with pytest.raises(UnsafeStateDir):
        daemon_main.acquire_lock(paths)
    assert not target.exists()


def test_a_build_digests_link_is_not_followed(tmp_path: Path) -> None:
    """The build-digest cache neither reads nor writes through a build-digests.json link."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    state = tmp_path / ".envd"
    state.mkdir(mode=0o700)
    context_digest(context, "Dockerfile", cache_dir=state)
    entry = json.loads((state / "build-digests.json").read_text())
    entry[str(context)]["digest"] = (
        "planted"  # the fingerprint matches: only a read through the link sees it
    )
    victim = tmp_path / "victim.json"
    victim.write_text(json.dumps(entry))
    (state / "build-digests.json").unlink()
    (state / "build-digests.json").symlink_to(victim)
    before = victim.read_text()
    digest = context_digest(context, "Dockerfile", cache_dir=state)
    assert digest != "planted"
    assert victim.read_text() == before
    assert not (state / "build-digests.json").is_symlink()


def test_a_hard_linked_output_is_refused(planted: tuple[StatePaths, Path]) -> None:
    """A daemon.out hard-linked to another file is refused; nothing is appended to it."""
    paths, victim = planted
    os.link(victim, paths.output)
    project = paths.root.parent
    with pytest.raises(UnsafeStateDir, match="yours alone"):
        process.start(Target(project_dir=str(project)), project, None, timeout=1.0)
    assert victim.read_text() == "precious\n"
