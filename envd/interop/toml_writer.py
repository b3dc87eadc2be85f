"""A small TOML writer for ``envd import``: a stable layout, octal modes, quoted keys."""

from __future__ import annotations

import json
import re
from typing import Any

from envd.interop.compose_import_common import written

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else _string(key)


def _string(value: str) -> str:
    # JSON's escapes are TOML's, except that TOML forbids a raw DEL as well.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _scalar(value: Any, key: str = "") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"0o{value:o}" if key == "mode" else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        # envd interpolates string values: a resolved `$` is written `$$` (compose_interp).
        return _string(written(value))
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _inline(value: Any, key: str = "") -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_inline(v, k)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return _scalar(value, key)


def _is_section(value: Any) -> bool:
    """Tables that read better as [sections] than inline."""
    if not isinstance(value, dict):
        return False
    if not value:
        return True
    if any(isinstance(v, dict) for v in value.values()):
        return True
    return len(_inline(value)) > 60


def dump_toml(data: dict[str, Any]) -> str:
    """TOML in a stable layout: scalars and arrays first, then sub-tables as sections."""
    lines: list[str] = []

    def table(prefix: list[str], body: dict[str, Any]) -> None:
        simple = [(k, v) for k, v in body.items() if not _is_section(v)]
        nested = [(k, v) for k, v in body.items() if _is_section(v)]
        if prefix and (simple or not nested):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
        for k, v in simple:
            if isinstance(v, list) and v and len(_inline(v)) > 80:
                lines.append(f"{_key(k)} = [")
                lines.extend(f"  {_inline(item)}," for item in v)
                lines.append("]")
            else:
                lines.append(f"{_key(k)} = {_inline(v, k)}")
        for k, v in nested:
            table([*prefix, k], v)

    for key in ("project", "services", "volumes", "networks", "secrets", "configs"):
        if key not in data:
            continue
        if key == "project":
            table([key], data[key])
            continue
        for name, body in data[key].items():
            table([key, name], body)
    return "\n".join(lines) + "\n"
