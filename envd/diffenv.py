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


def diff(a: LoadedSpec, b: LoadedSpec) -> list[tuple[str, Any, Any]]:
    """(path, value in a, value in b) for every leaf that differs; _MISSING when absent."""
    fa, fb = flatten(resolved(a)), flatten(resolved(b))
    rows = []
    for path in sorted(set(fa) | set(fb)):
        va, vb = fa.get(path, MISSING), fb.get(path, MISSING)
        if va != vb:
            rows.append((path, va, vb))
    return rows


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
