"""What the parts of ``envd import`` share: the notes they write and Compose value coercions."""

from __future__ import annotations

from typing import Any

from envd.spec.compose_words import CONTAINER_NAMES

WHY_NOT = {
    "container_name": CONTAINER_NAMES,
    "expose": "services reach each other on every port of the project network; nothing to expose",
    "links": "services reach each other by name on the project network",
    "network_mode": "envd always uses its project networks",
    "extends": "merge the extended service into this one by hand",
    "configs": "use a bind mount (volumes) or a secret",
}


def as_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def str_map(value: Any) -> dict[str, str | None]:
    if isinstance(value, list):
        out: dict[str, str | None] = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            out[key] = val if sep else None
        return out
    if isinstance(value, dict):
        return {str(k): (None if v is None else as_str(v)) for k, v in value.items()}
    return {}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Notes:
    """The notes of one import: one line per thing envd cannot express, by its path."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, path: str, message: str) -> None:
        self.notes.append(f"{path}: {message}")

    def unsupported(self, path: str, why: str = "") -> None:
        self.note(path, "not supported by envd" + (f" ({why})" if why else "") + "; left out")
