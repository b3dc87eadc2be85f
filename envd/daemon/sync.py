"""Sync rules: the working tree copied into a service's running containers.

Two paths lead here. A file event under a ``sync`` / ``sync+restart`` /
``sync+exec`` rule copies the changed files at once (``Syncer.sync``). And
sync is level-triggered (``Syncer.level``): when envd starts a container,
when the daemon starts or adopts an environment, and after every pass, each
container is brought up to the tree — only what differs from the manifest of
what envd copied there (``envd.core.syncplan``), so edits made while the
daemon was down reach the container before ``envd up`` returns, and a
container never waits for the next edit.

The manifest (``.envd/sync-manifest.json``) is why the level sync needs no
call into the container: comparing the tree with a listing taken inside it
would need a shell and ``find`` or ``stat`` in every image, and an image's
own files (a ``COPY . /app``) differ in mtime anyway. It is also what makes
deleting safe: only files envd copied are ever deleted.

A sync rule over a directory never copies the spec's secret files, ``.env``
or ``env_file``s unless the rule's path names the file itself.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from envd.core.desired import DesiredProject, exec_hook
from envd.core.syncplan import (
    FileStat,
    after_sync,
    decode_manifests,
    deleted_under,
    encode_manifests,
    plan_sync,
    under,
)
from envd.daemon.synctree import (
    DockerIgnores,
    Publish,
    Tree,
    file_stat,
    ignored,
    protected_files,
    walk,
)
from envd.engine.base import Engine
from envd.inputs.safefile import read_regular, write_replacing
from envd.run.hooks import describe, quote_output, secret_values
from envd.spec.models import WatchRule
from envd.spec.service_parts import SYNC_ACTIONS
from envd.values import labels
from envd.values.errors import EngineError, EngineUnavailable
from envd.values.events import Clock, SystemClock

# The manifest is ours and small; a bigger one was not written by envd.
MANIFEST_CAP = 64 * 1024 * 1024
# Paths per `rm` exec: far below any ARG_MAX.
RM_BATCH = 500


class NoRm(EngineError):
    """The container has no ``rm``: synced files cannot be deleted there."""


class Syncer:
    """Copies the working tree into running containers through the archive API."""

    def __init__(
        self,
        engine: Engine,
        project_dir: Path,
        publish: Publish,
        clock: Clock | None = None,
        protected: Callable[[], frozenset[Path]] | None = None,
        manifest: Path | None = None,
    ) -> None:
        self.engine = engine
        self.project_dir = project_dir
        self.publish = publish
        self.clock = clock or SystemClock()
        self.dockerignores = DockerIgnores(project_dir)
        self.protected = protected or (lambda: protected_files(None, project_dir))
        self._withheld: set[tuple[str, Path]] = set()  # said once in the events
        # The file watcher, the reconciler's passes and apply's workers all
        # sync: one at a time, so the manifest matches what was copied.
        self._lock = threading.RLock()
        self.manifest_path = manifest
        self.manifests: dict[str, dict[str, FileStat]] = self._load()

    # ------------------------------------------------------------------ manifest
    def _load(self) -> dict[str, dict[str, FileStat]]:
        if self.manifest_path is None:
            return {}
        try:
            data = read_regular(self.manifest_path, MANIFEST_CAP, follow=False, own=True)
            return decode_manifests(json.loads(data))
        except (OSError, ValueError):
            return {}  # missing or unreadable: every file is copied once more

    def _save(self) -> None:
        if self.manifest_path is None:
            return
        data = json.dumps(encode_manifests(self.manifests), separators=(",", ":")).encode()
        try:
            write_replacing(self.manifest_path, data, 0o600)
        except OSError:
            pass  # the next sync copies again what this one could not record

    # ------------------------------------------------------------------ restart rules
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

    # ------------------------------------------------------------------ event-driven sync
    def sync(
        self, desired: DesiredProject, service: str, rule: WatchRule, paths: set[Path]
    ) -> None:
        root = (self.project_dir / rule.path).resolve()
        changed: list[tuple[Path, str, FileStat]] = []
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
            if ignored(rel, rule.ignore) or self.dockerignores.ignored(desired, service, path):
                continue
            dest = f"{rule.target.rstrip('/')}/{rel}" if root.is_dir() else rule.target
            try:
                st = path.lstat()
            except OSError:
                deleted.append(dest)
                continue
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                changed.append((path, dest, file_stat(st)))
        if not changed and not deleted:
            return
        with self._lock:
            self._sync_locked(desired, service, rule, changed, deleted)

    def _sync_locked(
        self,
        desired: DesiredProject,
        service: str,
        rule: WatchRule,
        changed: list[tuple[Path, str, FileStat]],
        deleted: list[str],
    ) -> None:
        started = self.clock.monotonic()
        data, copied = _archive((src, dest) for src, dest, _ in changed)
        stats = {dest: st for _, dest, st in changed if dest in copied}
        containers = self._running(desired.project, service)
        removed: set[str] = set()
        for cid, name in containers:
            synced = self.manifests.get(cid, {})
            # Only what envd copied there goes: never the image's own files.
            gone = deleted_under(synced, deleted)
            try:
                if copied:
                    self.engine.put_archive(cid, "/", data)
                self._remove_or_forget(cid, name, service, gone)
                if rule.action == "sync+restart":
                    self.engine.stop_container(cid, desired.services[service].template.stop_timeout)
                    self.engine.start_container(cid)
            except EngineError as exc:
                self.publish(
                    "sync", f"service {service}", f"sync failed: {exc}", "error", service=service
                )
                continue
            entries = dict(synced)
            for dest in gone:
                entries.pop(dest, None)
            entries.update(stats)
            self.manifests[cid] = entries
            removed.update(gone)
            if rule.action == "sync+exec" and rule.exec is not None:
                masked = secret_values(desired.services[service])
                self._exec(cid, name, service, rule, "files changed", masked)
        ms = (self.clock.monotonic() - started) * 1000
        self.publish(
            "sync",
            f"service {service}",
            f"{len(copied)} file(s) copied, {len(removed)} removed in {ms:.0f} ms "
            f"into {len(containers)} container(s)",
            "done",
            service=service,
        )
        # After the event: a daemon killed in between copies these files again.
        self._save()

    # ------------------------------------------------------------------ level-triggered sync
    def level(
        self,
        desired: DesiredProject,
        service: str,
        rules: Sequence[WatchRule],
        containers: Iterable[tuple[str, str]],
        reason: str,
    ) -> None:
        """Bring each (id, name) container of ``service`` up to the working tree."""
        if not any(r.action in SYNC_ACTIONS for r in rules) or service not in desired.services:
            return
        with self._lock:
            tree = walk(
                self.project_dir,
                desired,
                service,
                rules,
                self.protected(),
                self.dockerignores,
                self._withhold,
            )
            changed = False
            masked = secret_values(desired.services[service])
            for cid, name in containers:
                changed |= self._level_one(tree, service, rules, cid, name, reason, masked)
            if changed:
                self._save()

    def _level_one(
        self,
        tree: Tree,
        service: str,
        rules: Sequence[WatchRule],
        cid: str,
        name: str,
        reason: str,
        masked: Sequence[bytes] = (),
    ) -> bool:
        synced = self.manifests.get(cid, {})
        plan = plan_sync(tree.stats, synced, tree.targets)
        if plan.empty:
            kept = after_sync(synced, tree.stats, (), (), tree.targets)
            if kept != synced:
                self.manifests[cid] = kept
                return True
            return False
        started = self.clock.monotonic()
        data, copied = _archive((tree.sources[d], d) for d in plan.copy)
        try:
            if copied:
                self.engine.put_archive(cid, "/", data)
            self._remove_or_forget(cid, name, service, plan.delete)
        except EngineUnavailable:
            raise
        except EngineError as exc:
            self.publish(
                "initial-sync",
                f"container {name}",
                f"sync failed: {exc}",
                "error",
                service=service,
                reason=reason,
            )
            return False
        self.manifests[cid] = after_sync(synced, tree.stats, copied, plan.delete, tree.targets)
        ms = (self.clock.monotonic() - started) * 1000
        self.publish(
            "initial-sync",
            f"container {name}",
            f"{len(copied)} file(s) copied, {len(plan.delete)} removed in {ms:.0f} ms ({reason})",
            "done",
            service=service,
            reason=reason,
            copied=len(copied),
            deleted=len(plan.delete),
            ms=round(ms, 1),
        )
        touched = {tree.rule_of[d] for d in copied if d in tree.rule_of}
        touched |= {
            i
            for d in plan.delete
            for i, r in enumerate(rules)
            if r.action in SYNC_ACTIONS and under(d, r.target)
        }
        for index in sorted(touched):
            rule = rules[index]
            if rule.action == "sync+exec" and rule.exec is not None:
                self._exec(cid, name, service, rule, reason, masked)
        return True

    def container_started(
        self, desired: DesiredProject | None, service: str, rules: Sequence[WatchRule], cid: str
    ) -> None:
        """envd just started ``cid``: sync it before its post_start hooks and readiness."""
        if desired is None:
            return
        name = f"{desired.project}-{service}-?"
        for c in self.engine.list_containers(desired.project):
            if c.id == cid:
                name = c.name
                break
        try:
            self.level(desired, service, rules, [(cid, name)], "container started")
        except EngineUnavailable:
            raise
        except EngineError as exc:  # the pass's own calls report what is wrong
            self.publish("initial-sync", f"container {name}", str(exc), "error", service=service)

    def converged(
        self, desired: DesiredProject, rules: Mapping[str, Sequence[WatchRule]], reason: str
    ) -> None:
        """After a pass: every running container with sync rules matches the tree.

        This is the adoption path (a daemon that starts finds containers from
        before) and the safety net for anything the event path missed.
        """
        containers = self.engine.list_containers(desired.project)
        with self._lock:
            known = {c.id for c in containers}
            stale = [cid for cid in self.manifests if cid not in known]
            for cid in stale:
                del self.manifests[cid]
            if stale:
                self._save()
        for service, service_rules in sorted(rules.items()):
            running = [
                (c.id, c.name)
                for c in containers
                if c.service == service
                and c.status == "running"
                and c.labels.get(labels.ONE_OFF) != "1"
            ]
            if running:
                self.level(desired, service, service_rules, running, reason)

    # ------------------------------------------------------------------ helpers
    def _running(self, project: str, service: str) -> list[tuple[str, str]]:
        return [
            (c.id, c.name)
            for c in self.engine.list_containers(project)
            if c.service == service
            and c.status == "running"
            and c.labels.get(labels.ONE_OFF) != "1"
        ]

    def _remove_or_forget(self, cid: str, name: str, service: str, paths: Sequence[str]) -> None:
        """Delete ``paths``; in an image without ``rm`` say so once and forget them
        (retrying every pass would only repeat the error)."""
        try:
            self._remove(cid, paths)
        except NoRm as exc:
            self.publish(
                "sync",
                f"container {name}",
                f"{len(paths)} deleted file(s) left in place: {exc}",
                "error",
                service=service,
            )

    def _remove(self, cid: str, paths: Sequence[str]) -> None:
        # `rm -f`, not `-r`: envd deletes the files it copied, never a
        # directory the image or the application made.
        for i in range(0, len(paths), RM_BATCH):
            code, out = self.engine.exec_run(cid, ["rm", "-f", "--", *paths[i : i + RM_BATCH]])
            if code in (126, 127):  # no `rm` to run (a distroless image)
                raise NoRm("the container has no `rm` to delete them with")
            if code != 0:
                text = out.decode(errors="replace").strip()[:200]
                raise EngineError(f"removing synced files failed (exit {code}): {text}")

    def _exec(
        self,
        cid: str,
        name: str,
        service: str,
        rule: WatchRule,
        reason: str,
        masked: Sequence[bytes] = (),
    ) -> None:
        """A sync+exec rule's command, after its files reached the container."""
        assert rule.exec is not None
        hook = exec_hook(rule.exec)
        what = f"`{describe(hook)}`"
        started = self.clock.monotonic()
        try:
            code, out = self.engine.exec_run(cid, list(hook.command), hook.options)
        except EngineUnavailable:
            raise
        except EngineError as exc:
            self.publish(
                "sync-exec",
                f"container {name}",
                f"{what} could not run: {exc}",
                "error",
                service=service,
                reason=reason,
            )
            return
        ms = (self.clock.monotonic() - started) * 1000
        if code != 0:
            last = quote_output(out, masked)
            message = f"{what} exited with status {code} after {ms:.0f} ms{last}"
        else:
            message = f"{what} done in {ms:.0f} ms"
        self.publish(
            "sync-exec",
            f"container {name}",
            f"{message} ({reason})",
            "error" if code != 0 else "done",
            service=service,
            reason=reason,
            exit_code=code,
            ms=round(ms, 1),
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


def _archive(files: Iterable[tuple[Path | str, str]]) -> tuple[bytes, list[str]]:
    """One tar of (source, container path); the container paths that made it in."""
    buf = io.BytesIO()
    copied: list[str] = []
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for src, dest in files:
            try:
                tar.add(str(src), arcname=dest.lstrip("/"), recursive=False)
            except OSError:
                continue  # vanished between the event and now: the next event says so
            copied.append(dest)
    return buf.getvalue(), copied
