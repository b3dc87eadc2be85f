"""The global flags the lean entry understands, read as click reads them.

``envd [-C DIR] [-f FILE] [--env NAME] [--profile P]... [--debug] COMMAND ...``:
the two lean answers (``_lean_up``, ``_lean_status``) share this reading, so
a flag one of them accepts means the same to the other. Anything else before
the command (an unknown flag, a value that looks like a flag, ``--opt=value``)
is None: the full path parses it and words any problem. So are the paths
both derive from those flags (the spec file, the project directory, the
daemon's socket), as strings. Stdlib only, and no ``dataclasses``, ``typing``,
``pathlib`` or ``collections.abc`` at run time.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc is not loaded at start-up: ~1 ms
    from collections.abc import Sequence

_VALUED = ("-C", "-f", "--file", "--env", "--profile")


def split_globals(
    argv: Sequence[str], command: str
) -> tuple[str | None, str | None, str | None, list[str], list[str]] | None:
    """(``-C``, ``-f``, ``--env``, the ``--profile`` values, the words after COMMAND), or None."""
    project_dir: str | None = None
    file: str | None = None
    environment: str | None = None
    profiles: list[str] = []
    i = 0
    while i < len(argv) and argv[i] != command:
        flag = argv[i]
        if flag == "--debug":
            i += 1
            continue
        if flag not in _VALUED or i + 1 >= len(argv):
            return None
        value = argv[i + 1]
        if not value or value.startswith("-"):
            return None
        if flag == "-C":
            project_dir = value
        elif flag in ("-f", "--file"):
            file = value
        elif flag == "--env":
            environment = value
        else:
            profiles.append(value)
        i += 2
    if i >= len(argv):
        return None
    return project_dir, file, environment, profiles, list(argv[i + 1 :])


def resolve_paths(project_dir: str | None, file: str | None) -> tuple[str, str] | None:
    """``envd.spec.paths.resolve_paths`` as strings, without pathlib: (spec file, project
    dir), or None for a path pathlib would respell (``.`` parts, doubled or trailing
    slashes). The desired-cache key covers these strings, so a spelling that differs
    from the full path's could only make a miss; a unit test keeps the common ones equal."""
    if project_dir == "." and file is None:
        project_dir = None  # `-C .`: the working directory
    if not all(_plain(p) for p in (project_dir, file) if p is not None):
        return None
    if file is not None:
        spec_file = file
        if project_dir is not None and not file.startswith("/"):
            spec_file = f"{project_dir}/{file}"
        base = project_dir if project_dir is not None else os.path.dirname(spec_file)
        return _absolute(spec_file), _absolute(base)
    base = _absolute(project_dir or "")
    return os.path.join(base, "envd.toml"), base


def _plain(path: str) -> bool:
    parts = path[1:].split("/") if path.startswith("/") else path.split("/")
    return bool(path) and "\0" not in path and all(p not in ("", ".") for p in parts)


def _absolute(path: str) -> str:
    """``Path(path).absolute()`` of a plain path ("" is the working directory)."""
    if path.startswith("/"):
        return path
    cwd = os.getcwd()
    return os.path.join(cwd, path) if path else cwd


def daemon_socket(project_dir: str, environment: str | None) -> str:
    """``envd.daemon.paths.StatePaths.for_project(...).socket`` as a string (a unit
    test keeps the two equal)."""
    base = os.path.join(project_dir, ".envd")
    return os.path.join(
        os.path.join(base, f"env-{environment}") if environment else base, "daemon.sock"
    )
