"""Where a project's spec and directory are, from ``-C`` and ``-f`` alone.

Kept apart from the loader so that finding a project's daemon does not import
pydantic and the spec models.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_FILE = "envd.toml"


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
