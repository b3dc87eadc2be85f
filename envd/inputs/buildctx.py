"""Content digest of a build context, honouring ``.dockerignore``.

The digest decides whether a build service must be rebuilt: editing an
ignored file changes nothing. ``DockerIgnore`` is envd's one reading of
``.dockerignore`` (the daemon's file watcher asks it too), with the engine's
semantics: Go ``filepath.Match`` patterns, ``**`` for any number of
directories, ``!`` exceptions, the last matching line wins, and a pattern
that matches a directory matches everything under it. Hashing every file is
slow on a big tree, so a stat fingerprint of the tree is cached in ``.envd/``
and the contents are read only when some file's size or mtime moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from envd.inputs.safefile import own_dir, read_regular, write_replacing

IGNORE_FILE = ".dockerignore"
# One entry per build context is some 200 bytes; a bigger file is not ours.
_DIGESTS_CAP = 4 * 1024 * 1024


@dataclass(frozen=True)
class IgnoreRule:
    """One ``.dockerignore`` line: a cleaned, slash-separated pattern."""

    pattern: str
    exception: bool  # a "!pattern" line: puts back what earlier lines left out
    regex: re.Pattern[str]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go ``filepath.Match`` syntax plus ``**``, as a regular expression over a whole path."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                # "**" at the end takes everything; elsewhere any number of directories.
                out.append(".*" if i >= n else "(?:.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1 if pattern[i : i + 1] == "^" else i)
            if end < 0:
                out.append(re.escape(ch))
                continue
            body = pattern[i:end]
            negate = body.startswith("^")
            if negate:
                body = body[1:]
            chars: list[str] = []
            j = 0
            while j < len(body):
                c = body[j]
                if c == "\\" and j + 1 < len(body):
                    j += 1
                    c = body[j]
                    chars.append(re.escape(c))
                elif c == "-":
                    chars.append("-")
                else:
                    chars.append(re.escape(c))
                j += 1
            out.append("[" + ("^" if negate else "") + "".join(chars) + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
    try:
        return re.compile("".join(out) + r"\Z")
    except re.error:  # the engine refuses such a pattern; here it matches only itself
        return re.compile(re.escape(pattern) + r"\Z")


def _clean(pattern: str) -> str:
    """Go's ``filepath.Clean``, then relative to the context root."""
    cleaned = posixpath.normpath(pattern)
    if cleaned.startswith("//"):
        cleaned = cleaned[1:]  # POSIX keeps a leading "//"; Go does not
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned


def parse_dockerignore(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, as the engine reads them.

    A comment is a line whose first character is ``#``; other lines are
    trimmed, blank ones dropped, ``!`` kept in front of the cleaned pattern.
    """
    patterns: list[str] = []
    for line in text.removeprefix("\ufeff").splitlines():
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        if line:
            line = _clean(line)
        patterns.append(("!" if exception else "") + line)
    return patterns


class DockerIgnore:
    """Which paths of a build context ``.dockerignore`` leaves out.

    Paths are context-relative with ``/``. A path is judged from its top
    directory down, each level reusing which lines matched the level above,
    and an ignored directory is entered only when an exception line names
    something below it: the engine walks the context this way, and the two
    shortcuts change results (``keep/sub/x`` then ``!keep`` leaves
    ``keep/sub/x`` out).
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        rules: list[IgnoreRule] = []
        for raw in patterns:
            exception = raw.startswith("!")
            pattern = _clean(raw[1:].strip() if exception else raw.strip())
            if pattern in ("", "."):
                continue  # "." never matched anything, for historical reasons
            rules.append(IgnoreRule(pattern, exception, _pattern_regex(pattern)))
        self.rules = tuple(rules)
        self._exceptions = tuple(r.pattern + "/" for r in rules if r.exception)

    @classmethod
    def read(cls, context: Path) -> DockerIgnore:
        """The context's ``.dockerignore`` (none, or unreadable: nothing is ignored)."""
        try:
            data = (context / IGNORE_FILE).read_bytes()
        except OSError:
            return cls(())
        return cls(parse_dockerignore(data.decode("utf-8", errors="replace")))

    def _judge(self, rel: str, parent: tuple[bool, ...]) -> tuple[bool, tuple[bool, ...]]:
        """(ignored, which rules matched) for ``rel``, given which rules matched its directory."""
        ignored = False
        matched: list[bool] = []
        for index, rule in enumerate(self.rules):
            hit = bool(parent) and parent[index]
            if not hit:
                # An inclusion cannot change an ignored path, an exception a kept one.
                if rule.exception != ignored:
                    matched.append(False)
                    continue
                hit = rule.regex.match(rel) is not None
            matched.append(hit)
            if hit:
                ignored = not rule.exception
        return ignored, tuple(matched)

    def _enter(self, rel_dir: str) -> bool:
        """Whether an ignored directory may hold something an exception line puts back."""
        prefix = rel_dir + "/"
        return any(e.startswith(prefix) for e in self._exceptions)

    def ignored(self, rel: str) -> bool:
        """Whether the context-relative path ``rel`` is left out of the build context."""
        if not self.rules:
            return False
        parts = [p for p in rel.split("/") if p and p != "."]
        parent: tuple[bool, ...] = ()
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            ignored, parent = self._judge(path, parent)
            if depth == len(parts):
                return ignored
            if ignored and not self._enter(path):
                return True
        return False

    def files(self, context: Path) -> Iterator[str]:
        """Every kept file and symlink under ``context``, context-relative, unsorted."""
        pending: list[tuple[str, tuple[bool, ...]]] = [("", ())]
        while pending:
            rel_dir, parent = pending.pop()
            try:
                entries = list(os.scandir(context / rel_dir if rel_dir else context))
            except OSError:
                continue
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                ignored, matched = self._judge(rel, parent) if self.rules else (False, ())
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if not ignored or self._enter(rel):
                        pending.append((rel, matched))
                elif not ignored and (entry.is_symlink() or entry.is_file(follow_symlinks=False)):
                    yield rel


@dataclass(frozen=True)
class BuildInputs:
    """What one build service's image digest is computed from."""

    context: str  # absolute
    dockerfile: str
    args: tuple[tuple[str, str], ...]
    target: str
    exclude: tuple[str, ...]  # context-relative paths a sync rule keeps out

    def digest(self, cache_dir: Path | None = None) -> str:
        return context_digest(
            Path(self.context),
            self.dockerfile,
            dict(self.args),
            self.target,
            cache_dir=cache_dir,
            exclude=self.exclude,
        )


def _fingerprint(context: Path) -> str:
    h = hashlib.sha256()
    for root, dirs, files in os.walk(context):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            rel = os.path.relpath(full, context)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode}\n".encode())
    return h.hexdigest()


def _included_files(context: Path, dockerfile: str, exclude: tuple[str, ...] = ()) -> list[str]:
    kept = set(DockerIgnore.read(context).files(context))
    # The engine always receives the Dockerfile and .dockerignore, so editing
    # either must rebuild even when .dockerignore names it.
    for always in (dockerfile, IGNORE_FILE):
        rel = _clean(always)
        if (context / rel).is_symlink() or (context / rel).is_file():
            kept.add(rel)
    return sorted(
        p for p in kept if not any(p == e or p.startswith(e.rstrip("/") + "/") for e in exclude)
    )


def context_digest(
    context: Path,
    dockerfile: str = "Dockerfile",
    args: Mapping[str, str] | None = None,
    target: str = "",
    cache_dir: Path | None = None,
    exclude: tuple[str, ...] = (),
) -> str:
    """sha256 over the included files' paths, modes and contents, plus build inputs.

    ``exclude``: context-relative paths kept out (files a ``sync`` rule copies live).
    """
    inputs = json.dumps(
        {
            "dockerfile": dockerfile,
            "args": dict(sorted((args or {}).items())),
            "target": target,
            "exclude": sorted(exclude),
        },
        sort_keys=True,
    )
    fingerprint = ""
    cache_file: Path | None = None
    if cache_dir is not None:
        fingerprint = hashlib.sha256(
            (_fingerprint(context) + inputs + str(context)).encode()
        ).hexdigest()
        cache_file = cache_dir / "build-digests.json"
        try:
            cached = json.loads(read_regular(cache_file, _DIGESTS_CAP, follow=False, own=True))
            if cached.get(str(context), {}).get("fingerprint") == fingerprint:
                return str(cached[str(context)]["digest"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    h = hashlib.sha256()
    h.update(inputs.encode())
    for rel in _included_files(context, dockerfile, exclude):
        full = context / rel
        st = os.lstat(full)
        h.update(rel.encode() + b"\0" + str(st.st_mode & 0o111).encode() + b"\0")
        if full.is_symlink():
            h.update(b"link:" + os.readlink(full).encode())
        else:
            with open(full, "rb") as fh:
                h.update(
                    hashlib.file_digest(fh, "sha256").digest()
                    if hasattr(hashlib, "file_digest")
                    else hashlib.sha256(fh.read()).digest()
                )
        h.update(b"\n")
    result = h.hexdigest()
    if cache_file is not None:
        try:
            own_dir(cache_file.parent)
            try:
                data = json.loads(read_regular(cache_file, _DIGESTS_CAP, follow=False, own=True))
            except (OSError, ValueError):
                data = {}
            data[str(context)] = {"fingerprint": fingerprint, "digest": result}
            text = json.dumps(data, indent=1, sort_keys=True)
            write_replacing(cache_file, text.encode(), 0o600)
        except OSError:
            pass
    return result
