"""The engine error tree: an unreachable engine is an ``EngineError`` with exit code 3.

Code that tolerates a refused engine operation must still stop (exit 3) when
the engine cannot be reached at all, and the daemon must answer ``status``
with the engine down instead of dropping the connection.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from envd.daemon.client import DaemonClient
from envd.daemon.hub import EventHub
from envd.daemon.reconciler import Reconciler
from envd.daemon.server import make_server
from envd.daemon.timing import Debouncer
from envd.engine.fake import FakeEngine
from envd.inputs.prepare import Target
from envd.values.errors import Conflict, EngineError, EngineUnavailable, EnvdError, NotFound
from envd.values.events import FakeClock

IMAGE = "envd-local/busybox:latest"
SPEC = f"""\
[project]
name = "downd"

[services.web]
image = "{IMAGE}"
command = ["sleep", "3600"]
"""


def _reconciler(root: Path, engine: FakeEngine) -> Reconciler:
    (root / "envd.toml").write_text(SPEC)
    return Reconciler(
        Target(str(root)),
        engine,
        EventHub(),
        structlog.wrap_logger(logging.getLogger("test.engine-errors")),
        clock=FakeClock(),
        debouncer=Debouncer(quiet=0.0, max_wait=0.0),
        resync=0.0,
    )


def _pass(r: Reconciler) -> None:
    r.trigger("test")
    due = r.next_pass()
    assert due is not None
    r.run_pass(*due)


def test_engine_unavailable_sits_in_the_engine_error_tree() -> None:
    """EngineUnavailable is an EngineError (so `except EngineError` sees it) that exits 3."""
    exc = EngineUnavailable("the Docker engine is not reachable at fake://: it is down")
    assert isinstance(exc, EngineError) and isinstance(exc, EnvdError)
    assert exc.exit_code == 3 and exc.transient
    assert EngineError("refused").exit_code == 1
    assert NotFound("gone", 404).exit_code == Conflict("busy", 409).exit_code == 1


def test_status_with_the_engine_down_reports_it_instead_of_raising(tmp_path: Path) -> None:
    """The reconciler's status() says the engine is unreachable rather than raising."""
    engine = FakeEngine()
    engine.add_image(IMAGE)
    r = _reconciler(tmp_path, engine)
    _pass(r)
    engine.available = False
    report = r.status()
    assert report["daemon"]["last_result"] == "ok"
    assert "not reachable" in report["engine_error"]
    assert "services" not in report


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # A unix socket path must stay under ~100 bytes; pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="envd-") as d:
        yield Path(d)


@contextlib.contextmanager
def daemon_on_a_down_engine(root: Path, short_dir: Path) -> Iterator[Path]:
    """A daemon's control API (one pass done, then the engine gone) serving on the socket given."""
    engine = FakeEngine()
    engine.add_image(IMAGE)
    r = _reconciler(root, engine)
    _pass(r)
    engine.available = False
    sock = short_dir / "d.sock"
    log = structlog.wrap_logger(logging.getLogger("test.engine-errors"))
    server = make_server(sock, r, EventHub(), lambda: None, log)
    server.start()
    try:
        yield sock
    finally:
        server.stop(timeout=10)


def test_the_daemon_answers_status_with_the_engine_down(tmp_path: Path, short_dir: Path) -> None:
    """`envd status` asking a daemon whose engine is down gets an answer, not a dropped connection."""
    with daemon_on_a_down_engine(tmp_path, short_dir) as sock:
        report = DaemonClient(sock, timeout=10.0).status()
    assert "not reachable" in report["engine_error"]
    # No "services": the CLI then asks the engine itself and exits 3 on EngineUnavailable.
    assert "services" not in report


def test_a_pull_with_the_engine_down_is_engine_unavailable_not_a_failed_service(
    tmp_path: Path,
) -> None:
    """A pull failing because the engine is unreachable ends the pass as engine-unavailable."""
    engine = FakeEngine()  # no image: the pass pulls it
    engine.fail_next("pull_image", EngineUnavailable("the Docker engine is not reachable"))
    r = _reconciler(tmp_path, engine)
    _pass(r)
    assert r.state.last_result == "engine-unavailable"


def test_a_refused_pull_is_a_failed_service(tmp_path: Path) -> None:
    """A pull the engine refuses (reachable engine) fails the service, not the engine."""
    engine = FakeEngine()
    engine.fail_next("pull_image", EngineError("manifest unknown", 404))
    r = _reconciler(tmp_path, engine)
    _pass(r)
    assert r.state.last_result == "failed"
    assert "manifest unknown" in r.state.last_error


def test_envd_status_with_the_engine_down_exits_3_through_the_daemon(
    tmp_path: Path,
    short_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`envd status` while a daemon runs and the engine is down says the engine is unreachable, exit 3."""
    from envd.cli.app import run_cli
    from envd.daemon import process

    with daemon_on_a_down_engine(tmp_path, short_dir) as sock:
        monkeypatch.setattr(process, "running", lambda *_: DaemonClient(sock, timeout=10.0))
        # The CLI then asks the engine itself: in unit tests DOCKER_HOST names no socket.
        code = run_cli(["status", "-C", str(tmp_path)])
    assert code == 3
    assert "not reachable" in capsys.readouterr().err
