"""Triggers from the outside world: file changes and Docker events.

File changes under a ``sync`` watch rule are copied into the service's
running containers at once (no reconcile, no recreate); every other relevant
change marks the project dirty. Docker events for the project's containers
(die, destroy, health_status, oom…) mark it dirty too, which is how drift is
repaired.
"""

from __future__ import annotations

import fnmatch
import io
import os
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from envd.core.desired import DesiredProject
from envd.daemon.log import Logger
from envd.daemon.timing import Backoff
from envd.engine.base import Engine
from envd.inputs.buildctx import IGNORE_FILE, DockerIgnore
from envd.spec.load import LoadedSpec
from envd.spec.models import WatchRule
from envd.values import labels
from envd.values.errors import EngineError, EnvdError
from envd.values.events import Clock, Phase, SystemClock

# Editor droppings and VCS internals never matter.
ALWAYS_IGNORED = ("*.swp", "*.swx", "*.swo", "*~", ".#*", "#*#", "4913", "*.tmp", ".DS_Store")
IGNORED_DIRS = {".git", ".envd", "__pycache__", ".hg", ".svn", ".idea", ".mypy_cache"}


def ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    if any(p in IGNORED_DIRS for p in parts):
        return True
    base = parts[-1]
    for pat in (*ALWAYS_IGNORED, *patterns):
        if fnmatch.fnmatch(base, pat) or fnmatch.fnmatch(rel, pat):
            return True
        if pat.startswith("**/") and fnmatch.fnmatch(base, pat[3:]):
            return True
        if any(
            fnmatch.fnmatch("/".join(parts[: i + 1]), pat.rstrip("/")) for i in range(len(parts))
        ):
            return True
    return False


class Publish(Protocol):
    """Reconciler.publish: one event onto the daemon's hub."""

    def __call__(
        self, kind: str, resource: str, message: str, phase: Phase, **extra: object
    ) -> None: ...


Trigger = Callable[[str], object]


def protected_files(loaded: LoadedSpec | None, project_dir: Path) -> frozenset[Path]:
    """The spec's secret files, ``.env`` and ``env_file``s: a sync rule copies
    them only when its path names the file itself."""
    paths = {project_dir / ".env"}
    if loaded is not None:
        base = loaded.project_dir
        paths.add(base / ".env")
        paths.update(base / s.file for s in loaded.spec.secrets.values() if s.file is not None)
        paths.update(base / f for svc in loaded.spec.services.values() for f in svc.env_file)
    return frozenset(p.resolve() for p in paths)


class Syncer:
    """Copies changed files into running containers through the archive API."""

    def __init__(
        self,
        engine: Engine,
        project_dir: Path,
        publish: Publish,
        clock: Clock | None = None,
        protected: Callable[[], frozenset[Path]] | None = None,
    ) -> None:
        self.engine = engine
        self.project_dir = project_dir
        self.publish = publish
        self.clock = clock or SystemClock()
        self._matchers: dict[Path, tuple[int, DockerIgnore]] = {}
        self.protected = protected or (lambda: protected_files(None, project_dir))
        self._withheld: set[tuple[str, Path]] = set()  # said once in the events

    def restart(self, desired: DesiredProject, service: str, paths: set[Path]) -> None:
        """A ``restart`` rule: the service's running containers restart, unchanged."""
        rels = [os.path.relpath(p, self.project_dir) for p in paths]
        if all(ignored(r.replace(os.sep, "/"), []) for r in rels):
            return
        timeout = desired.services[service].template.stop_timeout
        for c in self.engine.list_containers(desired.project):
            if c.service != service or c.status != "running":
                continue
            if c.labels.get(labels.ONE_OFF) == "1":
                continue
            try:
                self.engine.stop_container(c.id, timeout)
                self.engine.start_container(c.id)
            except EngineError as exc:
                self.publish(
                    "restart",
                    f"container {c.name}",
                    f"restart failed: {exc}",
                    "error",
                    service=service,
                )
                continue
            self.publish(
                "restart",
                f"container {c.name}",
                f"restarted: {rels[0]} changed",
                "done",
                service=service,
            )

    def _dockerignored(self, desired: DesiredProject, service: str, path: Path) -> bool:
        """Excluded by the ``.dockerignore`` of the service's build context (else the project's)."""
        build = desired.services[service].build
        base = Path(build.context) if build is not None else self.project_dir.resolve()
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            return False
        if rel == IGNORE_FILE:
            return False  # the engine always receives it
        try:
            mtime = (base / IGNORE_FILE).stat().st_mtime_ns
        except OSError:
            return False
        cached = self._matchers.get(base)
        if cached is None or cached[0] != mtime:
            cached = (mtime, DockerIgnore.read(base))
            self._matchers[base] = cached
        return cached[1].ignored(rel)

    def sync(
        self, desired: DesiredProject, service: str, rule: WatchRule, paths: set[Path]
    ) -> None:
        root = (self.project_dir / rule.path).resolve()
        changed: list[tuple[Path, str]] = []
        deleted: list[str] = []
        protected = self.protected()
        for path in sorted(paths):
            if path != root and path.resolve() in protected:
                self._withhold(service, path)
                continue
            try:
                rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
            except ValueError:
                continue
            if rel == ".":
                rel = path.name
            if ignored(rel, rule.ignore) or self._dockerignored(desired, service, path):
                continue
            dest = f"{rule.target.rstrip('/')}/{rel}" if root.is_dir() else rule.target
            if path.exists():
                if path.is_file():
                    changed.append((path, dest))
            else:
                deleted.append(dest)
        if not changed and not deleted:
            return
        started = self.clock.monotonic()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for src, dest in changed:
                try:
                    tar.add(str(src), arcname=dest.lstrip("/"), recursive=False)
                except OSError:
                    continue  # vanished between the event and now: the next event says so
        data = buf.getvalue()
        containers = [
            c
            for c in self.engine.list_containers(desired.project)
            if c.service == service
            and c.status == "running"
            and c.labels.get(labels.ONE_OFF) != "1"
        ]
        for c in containers:
            try:
                if changed:
                    self.engine.put_archive(c.id, "/", data)
                if deleted:
                    self.engine.exec_run(c.id, ["rm", "-rf", "--", *deleted])
                if rule.action == "sync+restart":
                    self.engine.stop_container(
                        c.id, desired.services[service].template.stop_timeout
                    )
                    self.engine.start_container(c.id)
            except EngineError as exc:
                self.publish(
                    "sync", f"service {service}", f"sync failed: {exc}", "error", service=service
                )
                continue
        ms = (self.clock.monotonic() - started) * 1000
        self.publish(
            "sync",
            f"service {service}",
            f"{len(changed)} file(s) copied, {len(deleted)} removed in {ms:.0f} ms "
            f"into {len(containers)} container(s)",
            "done",
            service=service,
        )

    def _withhold(self, service: str, path: Path) -> None:
        """Say once per service and file that a secret or variables file stayed out."""
        if (service, path) in self._withheld:
            return
        self._withheld.add((service, path))
        rel = os.path.relpath(path, self.project_dir)
        self.publish(
            "sync",
            f"service {service}",
            f"{rel} not copied: it holds the spec's secrets or variables"
            " (a rule whose path names it copies it)",
            "info",
            service=service,
        )


class FileWatcher(threading.Thread):
    """watchfiles over the project directory; routes changes to sync or a trigger."""

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
        from watchfiles import watch

        root = self.project_dir.resolve()

        def keep(_: object, path: str) -> bool:
            rel = os.path.relpath(path, root)
            return not any(p in IGNORED_DIRS for p in rel.split(os.sep))

        try:
            for changes in watch(
                root,
                watch_filter=keep,
                stop_event=self.stop_event,
                debounce=30,
                # watchfiles' loop wakes every `step` ms even when idle: 10 ms
                # cost 0.5 % CPU, 50 ms costs 0.07 % and keeps sync p95 well
                # under 600 ms (docs/benchmarks.md).
                step=50,
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
                    if inside and rule.action in ("sync", "sync+restart", "restart"):
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
