"""``${VAR}`` interpolation over the raw spec, before validation.

Forms: ``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or empty),
``${VAR-default}`` (unset), ``${VAR:?message}`` / ``${VAR?message}`` (error),
``${VAR:+alt}`` / ``${VAR+alt}``, and ``$$`` for a literal ``$``. Defaults may
themselves contain interpolations, as in Compose, up to ``MAX_NESTING`` levels.

A plain ``$VAR`` or ``${VAR}`` whose variable is not set becomes ``""`` as in
Compose, which warns about it: callers pass ``unset`` to learn those names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A quoted .env value, optionally followed by a comment: KEY="a b"  # note
_QUOTED = re.compile(r"""^(?:"((?:\\.|[^"\\])*)"|'([^']*)')\s*(?:#.*)?$""")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
# Defaults inside defaults (``${A:-${B:-x}}``): a real spec needs two or three.
MAX_NESTING = 16


class InterpolationError(ValueError):
    """A variable was required (``:?``) or the syntax is broken."""


def interpolate(
    text: str,
    variables: Mapping[str, str],
    unset: list[str] | None = None,
    depth: int = 0,
) -> str:
    """Expand ``text``; names of plain references to unset variables go to ``unset``."""
    if depth > MAX_NESTING:
        raise InterpolationError(
            f"interpolations are nested more than {MAX_NESTING} levels deep; flatten the defaults"
        )
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
            out.append(_expand(text[i + 2 : end], variables, unset, depth))
            i = end + 1
            continue
        m = _NAME.match(text, i + 1)
        if m:
            out.append(_plain(m.group(0), variables, unset))
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


def _plain(name: str, variables: Mapping[str, str], unset: list[str] | None) -> str:
    value = variables.get(name)
    if value is None:
        if unset is not None:
            unset.append(name)
        return ""
    return value


def _expand(body: str, variables: Mapping[str, str], unset: list[str] | None, depth: int) -> str:
    m = _NAME.match(body)
    if not m:
        raise InterpolationError(f"invalid variable name in {_quoted('${' + body + '}')}")
    name = m.group(0)
    rest = body[m.end() :]
    value = variables.get(name)
    if not rest:
        return _plain(name, variables, unset)
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            colon = op.startswith(":")
            empty = value is None or (colon and value == "")
            if op.endswith("-"):
                return interpolate(arg, variables, unset, depth + 1) if empty else (value or "")
            if op.endswith("+"):
                return "" if empty else interpolate(arg, variables, unset, depth + 1)
            if empty:
                msg = interpolate(arg, variables, None, depth + 1) or f"variable {name} is required"
                raise InterpolationError(f"{name}: {_one_line(msg)}")
            return value or ""
    raise InterpolationError(f"invalid interpolation {_quoted('${' + body + '}')}")


def _quoted(text: str) -> str:
    """``'text'`` for a message, escaped as Python does so it stays one line."""
    return repr(text) if '"' in text or not text.isprintable() else f"'{text}'"


def _one_line(text: str) -> str:
    """A user's ``:?`` message as one line: control characters escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


def interpolate_tree(
    data: Any,
    variables: Mapping[str, str],
    path: tuple[Any, ...] = (),
    on_unset: Callable[[tuple[Any, ...], str], None] | None = None,
) -> Any:
    """Interpolate every string value (not keys) of a parsed TOML tree.

    Raises ``InterpolationError`` with ``.path`` set to where it happened;
    ``on_unset(path, name)`` hears of each plain reference to an unset variable.
    The tree's depth is the caller's to bound (``envd.spec.read`` does).
    """
    if isinstance(data, str):
        unset: list[str] = []
        try:
            value = interpolate(data, variables, unset)
        except InterpolationError as exc:
            exc.path = path  # type: ignore[attr-defined]
            raise
        if on_unset is not None:
            for name in dict.fromkeys(unset):
                on_unset(path, name)
        return value
    if isinstance(data, dict):
        return {k: interpolate_tree(v, variables, (*path, k), on_unset) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_tree(v, variables, (*path, i), on_unset) for i, v in enumerate(data)]
    return data


def parse_dotenv(
    text: str, environ: Mapping[str, str] | None = None, expand: bool = False
) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=VALUE``, ``export KEY=VALUE``, quotes, comments.

    With ``expand`` (a project's ``.env``, as Compose reads it) an unquoted or
    double-quoted value may refer to a variable defined earlier in the file
    (``B=${A}/x``), else to ``environ``; a single-quoted value is literal.
    ``env_file`` files are read without (their text is the container's).
    """
    result: dict[str, str] = {}
    outside = environ or {}
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
        literal = False
        if quoted:
            if quoted.group(1) is not None:  # double quotes: \n, \t, \" and \\ escapes
                value = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), quoted.group(1))
            else:  # single quotes: literal
                value, literal = quoted.group(2), True
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        if expand and not literal and "$" in value:
            try:
                value = interpolate(value, {**outside, **result})
            except InterpolationError:
                pass  # not an interpolation after all: keep the text as written
        result[key] = value
    return result
