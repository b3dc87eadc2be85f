"""The content of each config a spec's active services use (``[configs.NAME]``).

A ``file`` source is read as a regular file within ``MAX_CONFIG_BYTES`` (a FIFO
or a device in a cloned repository must not hang or flood ``up``); an
``environment`` source is a variable of the spec's environment (the process
environment over ``.env``, as for interpolation); ``content`` is the inline
text. A config that cannot be read is one clear SpecError (exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from envd.inputs.safefile import NotRegular, read_regular
from envd.spec.configs import MAX_CONFIG_BYTES
from envd.values.errors import SpecError, SpecProblem

if TYPE_CHECKING:
    from envd.spec.load import LoadedSpec


def used_configs(loaded: LoadedSpec) -> set[str]:
    """The names of the configs the active services use."""
    return {c.source for svc in loaded.active_services().values() for c in svc.configs}


def config_files(loaded: LoadedSpec) -> list[Path]:
    """The files the used configs are read from (watched and cached on)."""
    return [
        loaded.project_dir / loaded.spec.configs[n].file  # type: ignore[operator]
        for n in sorted(used_configs(loaded))
        if n in loaded.spec.configs and loaded.spec.configs[n].file is not None
    ]


def outside_project(loaded: LoadedSpec) -> frozenset[str]:
    """The used configs whose file lies outside the project (symlinks resolved)."""
    root = os.path.realpath(loaded.project_dir)
    out = set()
    for name in used_configs(loaded):
        cdef = loaded.spec.configs.get(name)
        if cdef is not None and cdef.file is not None:
            real = os.path.realpath(loaded.project_dir / cdef.file)
            if real != root and not real.startswith(root.rstrip("/") + "/"):
                out.add(name)
    return frozenset(out)


def read_configs(loaded: LoadedSpec, skip: frozenset[str] = frozenset()) -> dict[str, bytes]:
    """The content of every config the active services use (``skip``: names given as b"")."""
    problems: list[SpecProblem] = []
    values: dict[str, bytes] = {}
    for name in sorted(used_configs(loaded)):
        cdef = loaded.spec.configs.get(name)
        if cdef is None:  # the loader refuses an undefined config; be defensive
            continue
        if name in skip:
            values[name] = b""
            continue
        if cdef.content is not None:
            values[name] = cdef.content.encode()
        elif cdef.environment is not None:
            if cdef.environment not in loaded.variables:
                problems.append(
                    SpecProblem(
                        f"environment variable {cdef.environment} is not set",
                        path=f"configs.{name}.environment",
                    )
                )
                continue
            values[name] = loaded.variables[cdef.environment].encode()
        else:
            assert cdef.file is not None
            try:
                values[name] = read_regular(loaded.project_dir / cdef.file, MAX_CONFIG_BYTES)
            except NotRegular:
                problems.append(
                    SpecProblem(
                        f"cannot read file {cdef.file!r}: not a regular file of at most"
                        f" {MAX_CONFIG_BYTES} bytes",
                        path=f"configs.{name}.file",
                    )
                )
            except OSError as exc:
                problems.append(
                    SpecProblem(
                        f"cannot read file {cdef.file!r}: {exc.strerror}",
                        path=f"configs.{name}.file",
                    )
                )
    if problems:
        raise SpecError(problems)
    return values
