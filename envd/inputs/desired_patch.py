"""A spec edit that changed only some services' ``env``, applied to the cached desired state.

Loading a spec the full way costs ~0.1 s before any work, most of it
importing pydantic and building the spec models; validating and hashing 50
services is a few milliseconds of it. So when ``.envd/desired.cache`` misses
only because the spec's bytes changed (every other input the same: ``.env``,
the lock file, the environment, the files it points at), the spec is parsed
(TOML only, no models) and compared with the parsed spec the cached state was
built from, section by section and service by service, as canonical JSON
(which tells ``1`` from ``1.0`` from ``true``, and keeps order).

The edit is applied here only when the answer is certain to be what the full
load gives: every top-level section but ``services`` is unchanged, the same
services in the same order, and each changed service differs only in an
``env`` table of plain values (strings, numbers, booleans; no ``$``, so
interpolation would leave them as written) while it has no ``env_file`` and
the selected environment's overlay does not touch it. Then its container env
is that table, exactly as ``envd.core.service_env`` makes it. Anything else —
a new service, a renamed network, a variable reference, a depends_on, an
invalid value — returns None and the caller loads the spec the full way, which
also gives the proper error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The only service fields this path rebuilds; each needs its rule below.
_PATCHABLE = frozenset({"env"})


@dataclass(frozen=True)
class RawSections:
    """The parsed spec as canonical JSON: each top-level section but
    ``services``, and each service's table, in the spec's order."""

    top: Mapping[str, str]
    services: Mapping[str, str]


def sections(data: Mapping[str, Any]) -> RawSections | None:
    """``data`` (a parsed spec) split into sections; None when JSON cannot say
    it exactly (TOML dates) or ``services`` is not a table of tables."""
    services = data.get("services", {})
    if not isinstance(services, dict) or not all(isinstance(t, dict) for t in services.values()):
        return None
    try:
        return RawSections(
            top={k: _canon(v) for k, v in data.items() if k != "services"},
            services={name: _canon(table) for name, table in services.items()},
        )
    except (TypeError, ValueError):  # a date, or a float JSON cannot carry
        return None


def _canon(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def changed_envs(
    before: RawSections,
    data: Mapping[str, Any],
    environment: str | None,
) -> tuple[RawSections, dict[str, tuple[tuple[str, str], ...]]] | None:
    """The new sections and, per changed service, its container env (sorted
    pairs); None unless the edit is one this path applies exactly."""
    after = sections(data)
    if after is None or after.top != before.top:
        return None
    if list(after.services) != list(before.services):
        return None
    overlay_services: Mapping[str, Any] = {}
    if environment is not None:
        overlay = data.get("environments", {}).get(environment)
        if not isinstance(overlay, dict):
            return None
        overlay_services = overlay.get("services", {})
        if not isinstance(overlay_services, dict):
            return None
    envs: dict[str, tuple[tuple[str, str], ...]] = {}
    for name, text in after.services.items():
        if text == before.services[name]:
            continue
        if name in overlay_services:
            return None
        old: dict[str, Any] = json.loads(before.services[name])
        new: dict[str, Any] = data["services"][name]
        differing = {
            key
            for key in old.keys() | new.keys()
            if key not in old or key not in new or _canon(old[key]) != _canon(new[key])
        }
        if not differing <= _PATCHABLE or "env_file" in new:
            return None
        env = _plain_env(new.get("env", {}))
        if env is None:
            return None
        envs[name] = tuple(sorted(env.items()))
    return after, envs


def _plain_env(value: object) -> dict[str, str] | None:
    """An ``env`` table as the spec model reads it, when that is certain."""
    if not isinstance(value, dict):
        return None  # the list form can pass variables through: the full load knows
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, int | float):
            text = str(item)
        elif isinstance(item, str):
            text = item
        else:
            return None  # a table or an array: the full load words the error
        if "$" in text:
            return None  # interpolation (and `$$`): the full load's
        out[key] = text
    return out
