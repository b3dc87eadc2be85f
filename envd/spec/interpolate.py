"""``${VAR}`` interpolation over the raw spec, before validation.

Forms: ``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or empty),
``${VAR-default}`` (unset), ``${VAR:?message}`` / ``${VAR?message}`` (error),
``${VAR:+alt}`` / ``${VAR+alt}``, and ``$$`` for a literal ``$``. Defaults may
themselves contain interpolations, as in Compose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A quoted .env value, optionally followed by a comment: KEY="a b"  # note
_QUOTED = re.compile(r"""^(?:"((?:\\.|[^"\\])*)"|'([^']*)')\s*(?:#.*)?$""")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


class InterpolationError(ValueError):
    """A variable was required (``:?``) or the syntax is broken."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        if i + 1 < n and text[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if i + 1 < n and text[i + 1] == "{":
            end = _matching_brace(text, i + 1)
            if end < 0:
                raise InterpolationError(f"unclosed '${{' in {text!r}")
            out.append(_expand(text[i + 2 : end], variables))
            i = end + 1
            continue
        m = _NAME.match(text, i + 1)
        if m:
            out.append(variables.get(m.group(0), ""))
            i = m.end()
            continue
        out.append("$")
        i += 1
    return "".join(out)


def _matching_brace(text: str, open_at: int) -> int:
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _expand(body: str, variables: Mapping[str, str]) -> str:
    m = _NAME.match(body)
    if not m:
        raise InterpolationError(f"invalid variable name in '${{{body}}}'")
    name = m.group(0)
    rest = body[m.end() :]
    value = variables.get(name)
    if not rest:
        return value or ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            colon = op.startswith(":")
            unset = value is None or (colon and value == "")
            if op.endswith("-"):
                return interpolate(arg, variables) if unset else (value or "")
            if op.endswith("+"):
                return "" if unset else interpolate(arg, variables)
            if unset:
                msg = interpolate(arg, variables) or f"variable {name} is required"
                raise InterpolationError(f"{name}: {msg}")
            return value or ""
    raise InterpolationError(f"invalid interpolation '${{{body}}}'")


def interpolate_tree(data: Any, variables: Mapping[str, str], path: tuple[Any, ...] = ()) -> Any:
    """Interpolate every string value (not keys) of a parsed TOML tree.

    Raises ``InterpolationError`` with ``.path`` set to where it happened.
    """
    if isinstance(data, str):
        try:
            return interpolate(data, variables)
        except InterpolationError as exc:
            exc.path = path  # type: ignore[attr-defined]
            raise
    if isinstance(data, dict):
        return {k: interpolate_tree(v, variables, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_tree(v, variables, (*path, i)) for i, v in enumerate(data)]
    return data


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=VALUE``, ``export KEY=VALUE``, quotes, comments."""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        if "=" not in line:
            # Compose: a bare name means "take it from the environment"; in a
            # .env file it has no value to offer, so skip it.
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        value = value.strip()
        quoted = _QUOTED.match(value)
        if quoted:
            if quoted.group(1) is not None:  # double quotes: \n, \t, \" and \\ escapes
                value = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), quoted.group(1))
            else:  # single quotes: literal
                value = quoted.group(2)
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        result[key] = value
    return result
