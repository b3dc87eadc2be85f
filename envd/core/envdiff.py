"""``envd diff A B``: what the overlays make different between two environments."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from envd.spec.load import LoadedSpec

BASE_NAMES = ("base", "default", "-")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaves; lists are leaves (overlays replace them whole)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in sorted(value):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(value[key], path))
        return out
    return {prefix: value}


def resolved(loaded: LoadedSpec) -> dict[str, Any]:
    # The project name differs per environment by construction: not an overlay's doing.
    return loaded.spec.model_dump(mode="json", exclude={"environments", "project"})


def written(loaded: LoadedSpec) -> dict[str, Any]:
    """The resolved spec without fields left at their defaults (how a new table reads)."""
    return loaded.spec.model_dump(
        mode="json", exclude={"environments", "project"}, exclude_defaults=True
    )


def diff(a: LoadedSpec, b: LoadedSpec) -> list[tuple[str, Any, Any]]:
    """(path, value in a, value in b) for every leaf that differs; MISSING when absent.

    A table only one side has (a service an overlay adds) is one row holding
    the fields it sets, not one row per defaulted field.
    """
    rows: list[tuple[str, Any, Any]] = []
    _walk(resolved(a), resolved(b), written(a), written(b), "", rows)
    return rows


def _at(tree: Any, key: str) -> Any:
    return tree.get(key, {}) if isinstance(tree, Mapping) else {}


def _walk(va: Any, vb: Any, wa: Any, wb: Any, path: str, rows: list[tuple[str, Any, Any]]) -> None:
    if not (isinstance(va, Mapping) and isinstance(vb, Mapping)):
        if va != vb:
            rows.append((path, va, vb))
        return
    for key in sorted(set(va) | set(vb)):
        sub = f"{path}.{key}" if path else str(key)
        if key in va and key in vb:
            _walk(va[key], vb[key], _at(wa, key), _at(wb, key), sub, rows)
        elif key in va:
            rows.append((sub, _at(wa, key) if isinstance(va[key], Mapping) else va[key], MISSING))
        else:
            rows.append((sub, MISSING, _at(wb, key) if isinstance(vb[key], Mapping) else vb[key]))


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


def json_value(value: Any) -> Any:
    return None if value is MISSING else value


def render_value(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    return json.dumps(value)
