"""``envd daemon``: one per project, crash-only.

Holds an exclusive lock on ``.envd/daemon.lock`` (two daemons for one project
are impossible, also when two ``envd up`` race), serves the control socket,
follows file and engine events, and runs the reconcile loop in the main
thread. SIGTERM/SIGINT: stop watching, finish the current pass, exit 0 and
leave the environment running. SIGHUP: reconcile now. ``kill -9`` at any
point is safe: Docker's labels are the state, the next daemon adopts them.
"""

from __future__ import annotations

import errno
import fcntl
import io
import logging
import logging.handlers
import os
import signal
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from envd.daemon.actions import ServiceActions
from envd.daemon.hub import EventHub
from envd.daemon.log import Logger
from envd.daemon.paths import StatePaths
from envd.daemon.reconciler import Reconciler
from envd.daemon.server import make_server
from envd.daemon.supervision import start_supervisor
from envd.daemon.sync import Syncer
from envd.daemon.synctree import protected_files
from envd.daemon.watch import EngineEvents, FileWatcher
from envd.inputs.prepare import Target, prepare
from envd.inputs.safefile import append_nofollow, open_own, read_regular, write_replacing
from envd.spec.models import WatchRule
from envd.values.events import Phase

if TYPE_CHECKING:
    from starlette.types import ASGIApp

LOG_MAX_BYTES = 5 * 1024 * 1024


class _NoFollowLog(logging.handlers.RotatingFileHandler):
    """A rotating log that never writes through a link planted at its name."""

    def _open(self) -> io.TextIOWrapper:
        fd = append_nofollow(Path(self.baseFilename))
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def configure_logging(paths: StatePaths) -> Logger:
    import structlog

    handler = _NoFollowLog(paths.log, maxBytes=LOG_MAX_BYTES, backupCount=1, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("envd.daemon")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=True,
    )
    bound: Logger = structlog.get_logger("envd.daemon")
    return bound


def acquire_lock(paths: StatePaths) -> int | None:
    fd = open_own(paths.lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def write_pid(paths: StatePaths) -> None:
    # Replaced by rename: a planted daemon.pid link is replaced, its target untouched.
    write_replacing(paths.pid, f"{os.getpid()}\n".encode(), 0o600)


def dashboard(
    paths: StatePaths,
    project: str,
    reconciler: Reconciler,
    hub: EventHub,
    watching: threading.Event,
    log: Logger,
) -> tuple[socket.socket, ASGIApp, str] | None:
    """The dashboard's socket, app and URL; None when ``ENVD_UI=off`` or no
    loopback port can be had (the daemon runs on without one).

    The port is kept in ``.envd/ui.port`` so a restarted daemon serves the page
    where the open browser tab looks for it; the token is new each start.
    """
    if os.environ.get("ENVD_UI", "").lower() in ("0", "off", "no", "false"):
        return None
    from envd.daemon.server import bind_loopback
    from envd.daemon.ui.app import make_ui
    from envd.daemon.ui.guard import Keys

    port_file = paths.root / "ui.port"
    try:
        raw = read_regular(port_file, 64, follow=False, own=True).decode().strip()
        wanted = int(raw) if raw.isdigit() and 1024 <= int(raw) <= 65535 else 0
    except (OSError, ValueError):
        wanted = 0
    try:
        sock = bind_loopback(wanted)
    except OSError as exc:
        log.error("ui.unavailable", error=str(exc))
        return None
    port = int(sock.getsockname()[1])
    if port != wanted:
        write_replacing(port_file, f"{port}\n".encode(), 0o600)
    keys = Keys(project, port)
    return sock, make_ui(reconciler, hub, keys, watching), keys.url


def run_daemon(target: Target) -> int:
    from envd.engine.docker.client import DockerEngine

    loaded, _ = prepare(target)  # a bad spec at start-up: exit 2, nothing touched
    paths = StatePaths.for_project(loaded.project_dir, loaded.environment)
    paths.ensure()
    lock_fd = acquire_lock(paths)
    if lock_fd is None:
        return 0  # another daemon owns this project: that is the desired state
    log = configure_logging(paths)
    write_pid(paths)
    engine = DockerEngine()
    hub = EventHub()
    reconciler = Reconciler(target, engine, hub, log)
    reconciler.actions = ServiceActions(paths.root)
    stop = threading.Event()

    def shutdown(*_: object) -> None:
        stop.set()
        reconciler.stop()

    watching = threading.Event()
    watching.set()
    server = make_server(
        paths.socket,
        reconciler,
        hub,
        shutdown,
        log,
        dashboard(paths, loaded.project, reconciler, hub, watching, log),
    )
    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGHUP, lambda *_: reconciler.trigger("SIGHUP"))
    server.start()

    def publish(kind: str, resource: str, message: str, phase: Phase, **extra: object) -> None:
        reconciler.publish(kind, resource, message, phase, **extra)
        log.info(kind, resource=resource, message=message, phase=phase, **extra)

    def rules() -> dict[str, list[WatchRule]]:
        current = reconciler.loaded
        if current is None or not watching.is_set():  # paused from the dashboard
            return {}
        return {n: list(s.watch) for n, s in current.active_services().items() if s.watch}

    syncer = Syncer(
        engine,
        loaded.project_dir,
        publish,
        protected=lambda: protected_files(reconciler.loaded, loaded.project_dir),
        manifest=paths.sync_manifest,
    )
    # Level-triggered sync: each container a pass starts, then every running one.
    reconciler.after_start = lambda service, cid: syncer.container_started(
        reconciler.desired, service, rules().get(service, []), cid
    )
    reconciler.on_converged(lambda desired, reason: syncer.converged(desired, rules(), reason))
    FileWatcher(
        loaded.project_dir,
        lambda why: reconciler.trigger(why) if watching.is_set() else None,
        syncer,
        lambda: reconciler.desired,
        rules,
        stop,
        log,
    ).start()
    EngineEvents(
        engine, loaded.project, reconciler.trigger, stop, log, lost=reconciler.engine_lost
    ).start()
    start_supervisor(reconciler, engine, loaded.project, paths, log, stop)
    log.info("daemon.start", pid=os.getpid(), project=loaded.project)
    reconciler.trigger("daemon started", restart_exited=True)
    try:
        reconciler.run()
    finally:
        log.info("daemon.stop", pid=os.getpid())
        server.stop()
        for path in (paths.socket, paths.pid):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        os.close(lock_fd)
    return 0
