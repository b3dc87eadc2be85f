"""``json.loads`` and ``json.dumps`` for the lean entry's path, without importing ``json``.

The ``json`` package compiles its regular expressions at import, which pulls
in ``re`` and ``enum`` (~5 ms of a no-op ``up --once`` that has ~30 ms to
spend). Its C accelerator ``_json`` needs none of that: this module drives
the same scanner and encoder ``json`` itself uses, with ``json``'s own
defaults, so values read and text written are ``json``'s (a unit test
compares them); only UTF-8 is read (what the engine and envd write; anything
else is a ``ValueError``, a miss). Where ``_json`` is missing, ``json`` is used.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}

try:
    import _json

    class _Context:
        """What ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = _CONSTANTS.__getitem__

    _scan: Callable[[str, int], tuple[Any, int]] | None = _json.make_scanner(_Context())  # type: ignore[arg-type]
    # The accelerators are private: an interpreter whose differ falls back to json.
    if _scan is None or _scan('[1, "\\u00e9"]', 0) != ([1, "é"], 13):
        raise TypeError("another _json")
    _probe = _json.make_encoder(
        {}, str, _json.encode_basestring_ascii, None, ":", ",", True, False, True
    )
    if "".join(_probe({"b": ["é", 1.5], "a": None}, 0)) != '{"a":null,"b":["\\u00e9",1.5]}':
        raise TypeError("another _json")
except (ImportError, AttributeError, TypeError, ValueError, StopIteration):  # pragma: no cover
    _json = None  # type: ignore[assignment]
    _scan = None


def loads(data: bytes | str) -> Any:
    """``json.loads(data)`` for UTF-8 text; ``ValueError`` when it is not one JSON value."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    if text.startswith("\ufeff"):
        raise ValueError("Unexpected UTF-8 BOM")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("Expecting value") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError("Extra data")
    return value


def dumps(value: Any, *, canonical: bool = False) -> str:
    """``json.dumps(value)``; ``canonical``: as with ``sort_keys=True, separators=(",", ":"),
    default=str`` (the engine fingerprint's form)."""
    if _json is None:  # pragma: no cover
        import json

        if canonical:
            return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        return json.dumps(value)
    if isinstance(value, str):
        return str(_json.encode_basestring_ascii(value))
    sep = (",", ":") if canonical else (", ", ": ")
    encode = _json.make_encoder(
        {},
        str if canonical else _refuse,
        _json.encode_basestring_ascii,
        None,
        sep[1],
        sep[0],
        canonical,
        False,
        True,
    )
    return "".join(encode(value, 0))


def dumps_indented(value: Any, indent: int = 2) -> str:
    """``json.dumps(value, indent=indent)`` for what JSON decoding gives (dicts with
    string keys, lists, strings, numbers, booleans, None): ``json`` writes an
    indented text in Python, with ``re`` loaded for it."""
    out: list[str] = []
    _indent(value, " " * indent, "\n", out)
    return "".join(out)


def _indent(value: Any, step: str, newline: str, out: list[str]) -> None:
    if isinstance(value, dict) and value:
        inner = newline + step
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {key.__class__.__name__}")
            out.append(("," if i else "") + inner + dumps(key) + ": ")
            _indent(item, step, inner, out)
        out.append(newline + "}")
    elif isinstance(value, list | tuple) and value:
        inner = newline + step
        out.append("[")
        for i, item in enumerate(value):
            out.append(("," if i else "") + inner)
            _indent(item, step, inner, out)
        out.append(newline + "]")
    else:
        out.append(dumps(value))


def _refuse(value: object) -> object:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")
