"""The project's ``.envd/`` is used only when it is a private directory of this user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envd.daemon.paths import StatePaths
from envd.inputs import desired_cache
from envd.inputs.safefile import UnsafeStateDir


def test_ensure_creates_a_private_directory(tmp_path: Path) -> None:
    """A missing .envd/ is created mode 0700."""
    paths = StatePaths.for_project(tmp_path, None)
    paths.ensure()
    assert (tmp_path / ".envd").stat().st_mode & 0o777 == 0o700


def test_a_shipped_envd_link_is_refused(tmp_path: Path) -> None:
    """A repository's .envd -> elsewhere is refused, and nothing is created through it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / ".envd").symlink_to(elsewhere)
    with pytest.raises(UnsafeStateDir, match="symbolic link") as err:
        StatePaths.for_project(tmp_path / "proj", None).ensure()
    assert err.value.exit_code == 2
    assert list(elsewhere.iterdir()) == []


def test_loose_modes_are_refused_not_repaired(tmp_path: Path) -> None:
    """A group- or world-writable .envd/ is refused and left as it was (no silent chmod)."""
    state = tmp_path / ".envd"
    state.mkdir()
    os.chmod(state, 0o777)
    with pytest.raises(UnsafeStateDir, match="writable by group or others"):
        StatePaths.for_project(tmp_path, None).ensure()
    assert state.stat().st_mode & 0o777 == 0o777


def test_an_environment_dir_under_a_loose_envd_is_refused(tmp_path: Path) -> None:
    """The per-environment directory is refused when its parent .envd/ is loose."""
    state = tmp_path / ".envd"
    state.mkdir()
    os.chmod(state, 0o757)
    with pytest.raises(UnsafeStateDir):
        StatePaths.for_project(tmp_path, "dev").ensure()
    assert not (state / "env-dev").exists()


def test_another_users_envd_is_refused(tmp_path: Path) -> None:
    """A .envd/ owned by someone else is refused."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give the directory away")
    state = tmp_path / ".envd"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    with pytest.raises(UnsafeStateDir, match="belongs to uid 65534"):
        StatePaths.for_project(tmp_path, None).ensure()


def test_the_desired_cache_refuses_a_linked_envd(tmp_path: Path) -> None:
    """The desired cache writes nothing through a shipped .envd link and says why."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / ".envd").symlink_to(elsewhere)
    with pytest.raises(UnsafeStateDir):
        desired_cache._write(tmp_path / "proj" / ".envd" / desired_cache.CACHE_FILE, b"x" * 64)
    assert list(elsewhere.iterdir()) == []
