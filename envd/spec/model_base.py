"""The building blocks of the spec models: the frozen, strict base model and
the scalar types every section shares (durations, string maps, commands).
"""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    WithJsonSchema,
)

from envd.spec.durations import PATTERN as DURATION_PATTERN
from envd.spec.durations import parse_duration

SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
RESOURCE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class SpecModel(BaseModel):
    """Frozen, and unknown fields are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ],
            "description": "A duration like '500ms', '5s' or '1m30s' (a bare number is seconds).",
        }
    ),
]


def _scalar_str(value: Any) -> Any:
    """TOML gives ints, floats and bools; env values and args are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _str_map(value: Any) -> Any:
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, str):
                raise ValueError("list entries must be strings of the form KEY=VALUE")
            key, sep, val = item.partition("=")
            out[key] = val if sep else None
        return out
    if isinstance(value, dict):
        return {k: _scalar_str(v) for k, v in value.items()}
    return value


# A table of plain values, or a list of KEY=VALUE strings (Compose's two forms).
_MAP_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
            },
            {"type": "array", "items": {"type": "string"}},
        ]
    }
)

StrMap = Annotated[
    dict[str, str],
    BeforeValidator(_str_map),
    _MAP_SCHEMA,
]

# Env values may be None: ``["KEY"]`` passes KEY through from envd's environment.
EnvMap = Annotated[
    dict[str, str | None],
    BeforeValidator(_str_map),
    _MAP_SCHEMA,
]


def _command(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command string: {exc}") from None
    return value


Command = Annotated[
    list[str],
    BeforeValidator(_command),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


def _str_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StrList = Annotated[
    list[str],
    BeforeValidator(_str_list),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
