"""What the parts of ``envd import`` share: the notes they write and Compose value coercions."""

from __future__ import annotations

import re
import shlex
from typing import Any

WHY_NOT = {
    "links": "services reach each other by name on the project network",
    "extends": "merge the extended service into this one by hand",
}


_SCALARS = (str, int, float)


# --- resolved strings that remember their text (see compose_interp) --------


class Raw(str):
    """A string as Compose resolved it that remembers the text it was written as."""

    raw: str

    def __new__(cls, value: str, raw: str) -> Raw:
        obj = super().__new__(cls, value)
        obj.raw = raw
        return obj

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return (str(self), self.raw)


def reference(text: str) -> Raw:
    """A variable reference the importer writes on purpose (``${NAME}``), kept as it is."""
    return Raw(text, text)


def written(value: str) -> str:
    """The text envd.toml gets for ``value``: the written form of a Raw, else ``$`` escaped."""
    if isinstance(value, Raw):
        return value.raw
    return value.replace("$", "$$")


def as_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    # A string is returned as itself: a resolved one keeps the text it was written as.
    return value if isinstance(value, str) else str(value)


def as_text(path: str, value: Any) -> str:
    """A string where Compose wants one; a number is read as its text, anything else is an error."""
    if isinstance(value, _SCALARS) and not isinstance(value, bool):
        return as_str(value)
    raise ComposeValueError(path, f"expected a string, got {_kind(value)}")


def as_bool(path: str, value: Any) -> bool:
    """A boolean, or the strings 'true' and 'false' as Compose accepts them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ComposeValueError(path, f"expected true or false, got {_kind(value)}")


def as_scalar(path: str, value: Any) -> str:
    """A string, number or boolean as text (environment values, labels, command words)."""
    if isinstance(value, _SCALARS):
        return as_str(value)
    raise ComposeValueError(path, f"expected a string, got {_kind(value)}")


def text_list(path: str, value: Any) -> list[str]:
    """A list of strings (numbers read as text), or a located error naming the bad item."""
    return [as_text(f"{path}[{i}]", item) for i, item in enumerate(as_seq(path, value))]


_OPERATORS = frozenset({"&&", "||", ";", "|", "&", ";;", "|&"})


def compose_words_of(text: str) -> tuple[list[str], str]:
    """A command string split as Compose splits it (shell words, stopping at the
    first unquoted shell operator, as its go-shellwords parser does): the words,
    and the operator it stopped at ("" when it ran to the end)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    try:
        for token in lexer:
            if token in _OPERATORS and lexer.token == "" and not _quoted(text, token):
                return words, token
            words.append(token)
    except ValueError:  # unbalanced quotes: the model's own split says so
        return [], ""
    return words, ""


def _quoted(text: str, token: str) -> bool:
    """Whether every occurrence of ``token`` in ``text`` sits inside quotes."""
    outside = re.sub(r"'[^']*'|\"(?:\\.|[^\"\\])*\"", "", text)
    return token not in outside


def as_command(path: str, value: Any) -> str | list[str]:
    """A command as Compose writes it: one string (for a shell) or a list of words."""
    if isinstance(value, list):
        return [as_scalar(f"{path}[{i}]", v) for i, v in enumerate(value)]
    return as_scalar(path, value)


def str_map(path: str, value: Any) -> dict[str, str | None]:
    """``KEY=value`` list or mapping form (environment, labels, args) as a mapping; None: no value."""
    if value is None:
        return {}
    if isinstance(value, list):
        out: dict[str, str | None] = {}
        for i, item in enumerate(value):
            text = as_scalar(f"{path}[{i}]", item)
            key, sep, val = text.partition("=")
            out[key] = _value_part(text, key, val) if sep else None
        return out
    if isinstance(value, dict):
        return {
            str(k): (None if v is None else as_scalar(f"{path}.{k}", v)) for k, v in value.items()
        }
    raise ComposeValueError(path, f"expected a mapping or a list, got {_kind(value)}")


def _value_part(text: str, key: str, value: str) -> str:
    """The ``value`` of ``KEY=value``, keeping its written form when the key was written plainly."""
    if isinstance(text, Raw) and text.raw.startswith(key + "="):
        return Raw(value, text.raw[len(key) + 1 :])
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Notes:
    """The notes of one import: one line per thing envd cannot express, by its path."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, path: str, message: str) -> None:
        self.notes.append(printable(f"{path}: {message}"))

    def unsupported(self, path: str, why: str = "") -> None:
        self.note(path, "not supported by envd" + (f" ({why})" if why else "") + "; left out")


class ComposeValueError(Exception):
    """A Compose value of the wrong kind, or a required key missing, at ``path``.

    Compose itself rejects such a file; ``import_compose`` turns this into a
    located ``SpecError`` (exit 2) instead of an internal error.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(printable(f"{path}: {message}"))


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {_short(repr(value))}"
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return _short(repr(value))
    return f"a YAML {type(value).__name__}"


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def printable(text: str) -> str:
    """``text`` with control and line-breaking characters escaped, so a hostile key prints as one line."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


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


INT_MAX = 2**31 - 1


def as_int(path: str, value: Any, low: int = 0, high: int = INT_MAX) -> int:
    """An integer, or a string of digits, in [low, high]; anything else a located error."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,12}\s*", value):
        number = int(value)
    else:
        raise ComposeValueError(path, f"expected an integer, got {_kind(value)}")
    if not low <= number <= high:
        raise ComposeValueError(path, f"{number} is out of range ({low} to {high})")
    return number


def as_mode(path: str, value: Any) -> int:
    """A file mode: an integer, or an octal string as Compose writes it ("0440")."""
    if isinstance(value, str):
        if not re.fullmatch(r"\s*(0o)?[0-7]{1,6}\s*", value):
            raise ComposeValueError(path, f"expected an octal mode, got {value!r}")
        value = int(value.strip().removeprefix("0o"), 8)
    return as_int(path, value, 0, 0o7777)


def required(path: str, body: dict[Any, Any], key: str) -> Any:
    """``body[key]``, or a located error naming the missing key."""
    if body.get(key) is None:
        raise ComposeValueError(path, f"'{key}' is required")
    return body[key]
