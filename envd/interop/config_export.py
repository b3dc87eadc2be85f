"""Configs (Compose's ``configs``: read-only files) in Compose and stack files.

A service's reference is a bare name when it has the defaults (target
``/NAME``, root-owned, mode 0444), the long form otherwise. Top-level configs
keep their source; a stack (``docker stack deploy``) reads only files, so an
inline or environment config becomes an external one created beforehand.
"""

from __future__ import annotations

from typing import Any

from envd.spec.configs import CONFIG_MODE
from envd.spec.models import ServiceConfig, Spec


def config_ref(c: ServiceConfig) -> str | dict[str, Any]:
    """A bare name when the reference has the defaults, the long form otherwise."""
    default_target = c.path == f"/{c.source}"
    if default_target and c.uid == "0" and c.gid == "0" and c.mode == CONFIG_MODE:
        return c.source
    out: dict[str, Any] = {"source": c.source}
    if not default_target:
        out["target"] = c.path
    out.update({"uid": c.uid, "gid": c.gid, "mode": c.mode})
    return out


def compose_configs(spec: Spec, notes: list[str]) -> dict[str, Any]:
    """Top-level configs for Compose (``content``/``environment`` need Compose ≥ 2.23.1)."""
    out: dict[str, Any] = {}
    for key, cdef in spec.configs.items():
        if cdef.file is not None:
            out[key] = {"file": cdef.file}
        elif cdef.content is not None:
            # Final text: the export's escape_dollars keeps Compose from interpolating it.
            out[key] = {"content": cdef.content}
            notes.append(f"configs.{key}: inline content needs Compose ≥ 2.23.1")
        else:
            out[key] = {"environment": cdef.environment}
            notes.append(f"configs.{key}: a config from the environment needs Compose ≥ 2.23.1")
    return out


def stack_configs(spec: Spec, project: str, notes: list[str]) -> dict[str, Any]:
    """Top-level configs for a stack: files as they are, the others created beforehand."""
    out: dict[str, Any] = {}
    for key, cdef in spec.configs.items():
        if cdef.file is not None:
            out[key] = {"file": cdef.file}
            continue
        name = f"{project}_{key}"
        out[key] = {"external": True, "name": name}
        how = f"${cdef.environment}" if cdef.environment else "'<its content>'"
        notes.append(
            f"configs.{key}: a stack reads configs from files; create it first:"
            f" printf %s {how} | docker config create {name} -"
        )
    return out
