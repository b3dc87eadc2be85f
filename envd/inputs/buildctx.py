"""Content digest of a build context, honouring ``.dockerignore``.

The digest decides whether a build service must be rebuilt: editing an
ignored file changes nothing. Matching uses the Docker SDK's own
``.dockerignore`` implementation. Importing the SDK costs ~0.2 s, so a stat
fingerprint of the tree is cached in ``.envd/`` and the SDK is only loaded
when some file's size or mtime moved.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


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
    from docker.utils.build import exclude_paths

    ignore_file = context / ".dockerignore"
    patterns: list[str] = []
    if ignore_file.is_file():
        for line in ignore_file.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                patterns.append(line)
    files = sorted(
        p
        for p in exclude_paths(str(context), patterns, dockerfile=dockerfile)
        if ((context / p).is_file() or (context / p).is_symlink())
        and not any(p == e or p.startswith(e.rstrip("/") + "/") for e in exclude)
    )
    return files


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
            cached = json.loads(cache_file.read_text())
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
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                data = json.loads(cache_file.read_text())
            except (OSError, ValueError):
                data = {}
            data[str(context)] = {"fingerprint": fingerprint, "digest": result}
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, cache_file)
        except OSError:
            pass
    return result
