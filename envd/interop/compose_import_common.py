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


class ComposeValueError(Exception):
    """A Compose value of the wrong kind, or a required key missing, at ``path``.

    Compose itself rejects such a file; ``import_compose`` turns this into a
    located ``SpecError`` (exit 2) instead of an internal error.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if value is None:
        return "nothing"
    return f"{str(value)!r}"


def as_map(path: str, value: Any) -> dict[Any, Any]:
    """``value`` as a mapping (nothing is an empty one), or a located error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ComposeValueError(path, f"expected a mapping, got {_kind(value)}")
    return value


def as_seq(path: str, value: Any) -> list[Any]:
    """``value`` as a list (nothing is an empty one), or a located error."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ComposeValueError(path, f"expected a list, got {_kind(value)}")
    return value


def as_int(path: str, value: Any) -> int:
    """An integer, or a string of digits, as an int; anything else a located error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ComposeValueError(path, f"expected an integer, got {_kind(value)}")


def as_mode(path: str, value: Any) -> int:
    """A file mode: an integer, or an octal string as Compose writes it ("0440")."""
    if isinstance(value, str):
        try:
            return int(value, 8)
        except ValueError:
            raise ComposeValueError(path, f"expected an octal mode, got {value!r}") from None
    return as_int(path, value)


def required(path: str, body: dict[Any, Any], key: str) -> Any:
    """``body[key]``, or a located error naming the missing key."""
    if body.get(key) is None:
        raise ComposeValueError(path, f"'{key}' is required")
    return body[key]
