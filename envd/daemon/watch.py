"""Triggers from the outside world: file changes and Docker events.

File changes under a ``sync`` watch rule are copied into the service's
running containers at once (no reconcile, no recreate; ``envd.daemon.sync``
does the copying); every other relevant
change marks the project dirty. Docker events for the project's containers
(die, destroy, health_status, oom…) mark it dirty too, which is how drift is
repaired.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from envd.core.desired import DesiredProject
from envd.daemon.inotify import TreeWatch
from envd.daemon.log import Logger

# The sync side lives in envd.daemon.sync; callers meet it here too.
from envd.daemon.sync import Syncer as Syncer
from envd.daemon.synctree import IGNORED_DIRS as IGNORED_DIRS
from envd.daemon.synctree import Publish as Publish
from envd.daemon.synctree import ignored as ignored
from envd.daemon.synctree import protected_files as protected_files
from envd.daemon.timing import Backoff
from envd.engine.base import Engine
from envd.spec.models import WatchRule
from envd.spec.service_parts import SYNC_ACTIONS
from envd.values.errors import EnvdError

Trigger = Callable[[str], object]

# A burst of file events is handed over once BURST_QUIET s pass without one, or
# BURST_MOST s after it began: an editor's save (truncate, write, close, often
# a rename) is one burst; a long checkout is several, each one archive.
BURST_QUIET = 0.01
BURST_MOST = 0.03


class FileWatcher(threading.Thread):
    """Watches the project directory (inotify on Linux, else watchfiles' polling);
    routes changes to sync or a trigger."""

    def __init__(
        self,
        project_dir: Path,
        trigger: Trigger,
        syncer: Syncer,
        desired: Callable[[], DesiredProject | None],
        rules: Callable[[], dict[str, list[WatchRule]]],
        stop: threading.Event,
        log: Logger,
    ) -> None:
        super().__init__(name="envd-files", daemon=True)
        self.project_dir = project_dir
        self.trigger = trigger
        self.syncer = syncer
        self.desired = desired
        self.rules = rules
        self.stop_event = stop
        self.log = log

    def run(self) -> None:
        root = self.project_dir.resolve()

        def keep(path: str) -> bool:
            rel = os.path.relpath(path, root)
            return not any(p in IGNORED_DIRS for p in rel.split(os.sep))

        try:
            tree = TreeWatch(root, IGNORED_DIRS, self._watch_full)
        except OSError as exc:  # not Linux, or no inotify: watchfiles' polling loop
            self.log.info("watch.polling", reason=str(exc))
            self._poll(root, keep)
            return

        # The stop event cannot wake poll(2); a thread parked on it can, at no
        # cost while it waits.
        def stop_on_event() -> None:
            self.stop_event.wait()
            tree.stop()

        threading.Thread(target=stop_on_event, name="envd-files-stop", daemon=True).start()
        try:
            for changes in tree.changes(quiet=BURST_QUIET, most=BURST_MOST):
                paths = {Path(p) for p in changes if keep(p)}
                if paths:
                    self.handle(paths)
        except Exception as exc:  # the daemon keeps running without file events
            self.log.error("watch.failed", error=str(exc))
        finally:
            tree.close()

    def _watch_full(self, message: str) -> None:
        self.log.warning("watch.limit", message=message)

    def _poll(self, root: Path, keep: Callable[[str], bool]) -> None:
        from watchfiles import watch

        try:
            for changes in watch(
                root,
                watch_filter=lambda _, path: keep(path),
                stop_event=self.stop_event,
                debounce=30,
                # watchfiles' loop wakes every `step` ms even when idle and
                # hands a change over one to two steps after it happened: 20 ms
                # costs ~0.2 % CPU and ~31 ms of every sync (docs/benchmarks.md).
                step=20,
                rust_timeout=1000,
                yield_on_timeout=False,
            ):
                self.handle({Path(p) for _, p in changes})
        except Exception as exc:  # the daemon keeps running without file events
            self.log.error("watch.failed", error=str(exc))

    def handle(self, paths: set[Path]) -> None:
        desired = self.desired()
        rules = self.rules()
        other: set[Path] = set()
        # One archive per (service, rule) for the whole burst: a branch switch
        # is one copy, not hundreds.
        batches: dict[tuple[str, int], set[Path]] = {}
        for path in paths:
            handled = False
            for service, service_rules in rules.items():
                for index, rule in enumerate(service_rules):
                    root = (self.project_dir / rule.path).resolve()
                    inside = path == root or root in path.parents
                    if inside and (rule.action in SYNC_ACTIONS or rule.action == "restart"):
                        batches.setdefault((service, index), set()).add(path)
                        handled = True
            if not handled:
                rel = os.path.relpath(path, self.project_dir.resolve())
                if not ignored(rel.replace(os.sep, "/"), []):
                    other.add(path)
        for (service, index), batch in sorted(batches.items()):
            if desired is not None and service in desired.services:
                rule = rules[service][index]
                if rule.action == "restart":
                    self.syncer.restart(desired, service, batch)
                else:
                    self.syncer.sync(desired, service, rule, batch)
        if other:
            names = sorted(os.path.relpath(p, self.project_dir.resolve()) for p in other)
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            self.trigger("files changed: " + ", ".join(names[:3]) + more)


class EngineEvents(threading.Thread):
    """Follows the engine's event stream for the project; reconnects with back-off.

    A broken stream means the engine went away (or restarts): ``lost`` is
    called, and the thread asks the engine every ``RECONNECT_CAP`` s at most
    until it answers again; then it triggers a pass, since events were missed.
    """

    RECONNECT_CAP = 2.0

    def __init__(
        self,
        engine: Engine,
        project: str,
        trigger: Trigger,
        stop: threading.Event,
        log: Logger,
        lost: Trigger | None = None,
    ) -> None:
        super().__init__(name="envd-engine-events", daemon=True)
        self.engine = engine
        self.project = project
        self.trigger = trigger
        self.lost = lost or trigger
        self.stop_event = stop
        self.log = log

    def run(self) -> None:
        backoff = Backoff(base=0.5, cap=self.RECONNECT_CAP)
        broken = False
        while not self.stop_event.is_set():
            try:
                if broken:
                    self.engine.ping()
                    broken = False
                    self.log.info("engine.events", message="reconnected")
                    self.trigger("engine event stream reconnected")
                for ev in self.engine.stream_events(self.project):
                    backoff.succeeded()
                    action = str(ev.get("Action") or ev.get("status") or "")
                    if action.startswith(("exec_", "attach", "resize")):
                        continue
                    name = (ev.get("Actor") or {}).get("Attributes", {}).get("name", "?")
                    self.trigger(f"container {name}: {action}")
                    if self.stop_event.is_set():
                        return
                if self.stop_event.is_set():
                    return
                # The engine closed the stream: it is going away or restarting.
                if not broken:
                    broken = True
                    self.lost("engine event stream ended")
            except EnvdError as exc:  # EngineUnavailable too: the engine restarts
                if not broken:
                    broken = True
                    self.log.warning("engine.events", error=str(exc))
                    self.lost("engine event stream lost")
            if self.stop_event.wait(backoff.failed()):
                return
