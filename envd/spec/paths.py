"""Where a project's spec and directory are, from ``-C`` and ``-f`` alone.

Kept apart from the loader so that finding a project's daemon does not import
pydantic and the spec models.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_FILE = "envd.toml"


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a user would type it here: relative to the working directory,
    unless that climbs out of it (then as given)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def resolve_paths(project_dir: str | Path | None, file: str | Path | None) -> tuple[Path, Path]:
    """(spec file, project dir). ``-f`` alone makes its directory the project."""
    if file is not None:
        spec_file = Path(file)
        if project_dir is not None and not spec_file.is_absolute():
            spec_file = Path(project_dir) / spec_file
        base = Path(project_dir) if project_dir is not None else spec_file.parent
        return spec_file.absolute(), base.absolute()
    base = Path(project_dir or ".").absolute()
    return base / DEFAULT_FILE, base


def bind_source(base: Path, source: str) -> str:
    """The host path of a bind mount's ``source``: ``~`` expanded, relative to
    the project dir, normalised (symlinks left as written, as Docker does)."""
    src = Path(os.path.expanduser(source))
    if not src.is_absolute():
        src = base / src
    return os.path.normpath(str(src))


def build_context(base: Path, context: str) -> str:
    """The absolute build context directory, symlinks resolved."""
    return str((base / context).resolve())
