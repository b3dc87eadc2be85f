"""Unit tests keep their converge locks in a directory of their own, not the user's runtime dir;
the CLI's tests share their fake engine, private state directory and project directory
from here."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.engine.fake import FakeEngine
from tests.helpers import fake_cli_engine


@pytest.fixture(autouse=True)
def _private_lock_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path_factory.mktemp("runtime")
    runtime.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(Path(runtime)))
    monkeypatch.delenv("ENVD_LOCK_TIMEOUT", raising=False)


@pytest.fixture
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever envd keeps per user goes to a temporary directory; no ENVD_ENV or
    ENVD_PROFILES from outside (modules ask for it with ``usefixtures``)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ENVD_ENV", raising=False)
    monkeypatch.delenv("ENVD_PROFILES", raising=False)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    """One fake engine, holding web:1 and worker:1, for every CLI module that asks for the
    engine (a module may define its own ``fake``)."""
    engine: FakeEngine = fake_cli_engine(monkeypatch, "web:1", "worker:1")
    return engine


@pytest.fixture
def proj(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A project directory ``shop`` whose envd.toml is the asking module's ``SPEC``."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "envd.toml").write_text(request.module.SPEC)
    return root
