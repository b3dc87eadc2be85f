"""Unit tests keep their converge locks in a directory of their own, not the user's runtime dir."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_lock_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path_factory.mktemp("runtime")
    runtime.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(Path(runtime)))
    monkeypatch.delenv("ENVD_LOCK_TIMEOUT", raising=False)
