"""What a service's sync rules copy: the working-tree files, ignores and exclusions applied.

A file under a sync rule's path is left out when it matches the rule's
``ignore`` patterns, editor droppings or tool directories (``ignored``), the
``.dockerignore`` of the service's build context (so sync and the build
digest agree), or when it is one of the spec's secret files, ``.env`` or
``env_file``s (``protected_files``) and the rule's path does not name the
file itself.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from envd.core.desired import DesiredProject
from envd.core.syncplan import FileStat
from envd.inputs.buildctx import IGNORE_FILE, DockerIgnore
from envd.spec.load import LoadedSpec
from envd.spec.models import WatchRule
from envd.spec.service_parts import SYNC_ACTIONS
from envd.values.events import Phase

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
        if pat.startswith("**/"):
            # `**/node_modules`: that directory at any depth, the top included, and all below it.
            tail = pat[3:].rstrip("/")
            for i in range(len(parts)):
                prefix = "/".join(parts[: i + 1])
                if fnmatch.fnmatch(prefix, tail) or fnmatch.fnmatch(prefix, "*/" + tail):
                    return True
    return False


class FileMatcher:
    """``ignored`` for a file whose directories were already judged, compiled once per walk.

    With every parent directory kept, ``ignored(rel, patterns)`` can only
    match on the file's own name or its whole path: one regex for each.
    """

    def __init__(self, patterns: list[str]) -> None:
        names = [*ALWAYS_IGNORED, *patterns]
        names += [p[3:] for p in (*ALWAYS_IGNORED, *patterns) if p.startswith("**/")]
        paths = [*ALWAYS_IGNORED, *patterns]
        paths += [p.rstrip("/") for p in (*ALWAYS_IGNORED, *patterns)]
        tails = [p[3:].rstrip("/") for p in patterns if p.startswith("**/")]
        paths += [*tails, *("*/" + t for t in tails)]
        self._name = re.compile("|".join(fnmatch.translate(p) for p in names))
        self._path = re.compile("|".join(fnmatch.translate(p) for p in paths))

    def ignored(self, rel: str, name: str) -> bool:
        return name in IGNORED_DIRS or bool(self._name.match(name) or self._path.match(rel))


class Publish(Protocol):
    """Reconciler.publish: one event onto the daemon's hub."""

    def __call__(
        self, kind: str, resource: str, message: str, phase: Phase, **extra: object
    ) -> None: ...


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


def file_stat(st: os.stat_result) -> FileStat:
    return FileStat(st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))


class DockerIgnores:
    """The ``.dockerignore`` matchers of build contexts, re-read when the file changes."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self._matchers: dict[Path, tuple[int, DockerIgnore]] = {}

    def ignored(self, desired: DesiredProject, service: str, path: Path) -> bool:
        """Excluded by the ``.dockerignore`` of the service's build context (else the project's)."""
        base, matcher = self.matcher(desired, service)
        if matcher is None:
            return False
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            return False
        return rel != IGNORE_FILE and matcher.ignored(rel)  # the engine always gets the file

    def matcher(self, desired: DesiredProject, service: str) -> tuple[Path, DockerIgnore | None]:
        """The service's build context (else the project directory) and its ``.dockerignore``."""
        build = desired.services[service].build
        base = Path(build.context) if build is not None else self.project_dir.resolve()
        try:
            mtime = (base / IGNORE_FILE).stat().st_mtime_ns
        except OSError:
            return base, None
        cached = self._matchers.get(base)
        if cached is None or cached[0] != mtime:
            cached = (mtime, DockerIgnore.read(base))
            self._matchers[base] = cached
        return base, cached[1] if cached[1].rules else None


@dataclass
class Tree:
    """The files a service's sync rules would copy: container path -> stat and source."""

    stats: dict[str, FileStat] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # container path -> host path
    targets: list[str] = field(default_factory=list)
    # container path -> index of the rule it came from (sync+exec runs per rule)
    rule_of: dict[str, int] = field(default_factory=dict)


def walk(
    project_dir: Path,
    desired: DesiredProject,
    service: str,
    rules: Sequence[WatchRule],
    protected: frozenset[Path],
    dockerignores: DockerIgnores,
    withhold: Callable[[str, Path], None],
) -> Tree:
    """What the service's sync rules would copy now (ignores and exclusions applied).

    Stats are taken here, before any file is read for the copy: an edit
    racing the copy changes the stat, so the file is sent again next time.
    """
    tree = Tree()
    guarded = {str(p) for p in protected}
    base, docker = dockerignores.matcher(desired, service)
    prefix_of_base = str(base) + os.sep
    for index, rule in enumerate(rules):
        if rule.action not in SYNC_ACTIONS:
            continue
        target = rule.target.rstrip("/") or "/"
        tree.targets.append(target)
        root = (project_dir / rule.path).resolve()
        try:
            st = root.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            # A rule naming one file copies it, secret or not: the user named it.
            tree.stats[target] = file_stat(st)
            tree.sources[target] = str(root)
            tree.rule_of[target] = index
            continue
        files = FileMatcher(rule.ignore)
        dest_root = target.rstrip("/")
        pending = [("", str(root))]
        while pending:
            reldir, absdir = pending.pop()
            try:
                entries = list(os.scandir(absdir))
            except OSError:
                continue
            for entry in entries:
                rel = f"{reldir}/{entry.name}" if reldir else entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if entry.name not in IGNORED_DIRS and not ignored(rel, rule.ignore):
                        pending.append((rel, entry.path))
                    continue
                if files.ignored(rel, entry.name):
                    continue
                if docker is not None and entry.path.startswith(prefix_of_base):
                    ctx_rel = entry.path[len(prefix_of_base) :].replace(os.sep, "/")
                    if ctx_rel != IGNORE_FILE and docker.ignored(ctx_rel):
                        continue
                try:
                    fst = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # gone meanwhile: its delete event follows
                is_link = stat.S_ISLNK(fst.st_mode)
                if not (stat.S_ISREG(fst.st_mode) or is_link):
                    continue
                if entry.path in guarded or (is_link and Path(entry.path).resolve() in protected):
                    withhold(service, Path(entry.path))
                    continue
                dest = f"{dest_root}/{rel}"
                tree.stats[dest] = file_stat(fst)
                tree.sources[dest] = entry.path
                tree.rule_of[dest] = index
    return tree
