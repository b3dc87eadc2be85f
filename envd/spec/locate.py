"""Map a field path (``services.api.ports[1]``) to its ``line:col`` in TOML text.

tomllib gives values without positions, so this scans the source: table
headers (``[a.b]``, ``[[a.b]]``) and ``key = value`` lines build an index of
where each key is; inside a value (inline tables, arrays, multi-line arrays) a
small tokenizer walks to the element or key the path names. It is deliberately
forgiving: when a path cannot be placed exactly, the nearest enclosing key or
table is good enough for a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

_KEY_PART = r"(?:[A-Za-z0-9_-]+|\"(?:\\.|[^\"\\\n])*\"|'[^'\n]*')"
_DOTTED_KEY = _KEY_PART + r"(?:[ \t]*\.[ \t]*" + _KEY_PART + r")*"
_HEADER = re.compile(
    r"^[ \t]*(?P<open>\[\[?)[ \t]*(?P<key>" + _DOTTED_KEY + r")[ \t]*\]\]?[ \t]*(?:#.*)?\r?$"
)
_KEY = re.compile(r"^(?P<indent>[ \t]*)(?P<key>" + _DOTTED_KEY + r")[ \t]*=[ \t]*")
_INLINE_KEY = re.compile(r"(?P<key>" + _DOTTED_KEY + r")[ \t]*=[ \t]*")
_DOTTED_PART = re.compile(r"[ \t]*(?:([A-Za-z0-9_-]+)|\"((?:\\.|[^\"\\])*)\"|'([^']*)')[ \t]*")

PathKey = tuple["str | int", ...]
# Deeper paths than this are refused (``read.MAX_DEPTH``); indexing a key of
# thousands of dotted parts would cost time quadratic in its length.
MAX_KEY_PARTS = 64


def split_dotted(key: str) -> tuple[str, ...]:
    parts: list[str] = []
    pos = 0
    while pos < len(key):
        m = _DOTTED_PART.match(key, pos)
        if not m or m.end() == pos:
            break
        parts.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
        if pos < len(key) and key[pos] == ".":
            pos += 1
    return tuple(parts)


@dataclass(frozen=True)
class _Entry:
    offset: int  # where the key (or table header) starts
    value: int = -1  # where its value starts; -1 for tables


class Locator:
    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def _lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def _starts(self) -> list[int]:
        starts = [0]
        for line in self._lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        return starts

    @cached_property
    def _entries(self) -> dict[PathKey, _Entry]:
        index: dict[PathKey, _Entry] = {}
        counts: dict[PathKey, int] = {}  # elements seen so far of each array of tables
        table: PathKey = ()
        lineno = 0
        while lineno < len(self._lines):
            line = self._lines[lineno]
            start = self._starts[lineno]
            header = _HEADER.match(line)
            if header:
                keys = split_dotted(header.group("key"))[:MAX_KEY_PARTS]
                at = _Entry(start + line.index("["))
                # Implicitly defined parents point at the first header below them.
                for parent_path in _table_prefixes(keys[:-1], counts):
                    index.setdefault(parent_path, at)
                if header.group("open") == "[[":
                    parent = _table_path(keys[:-1], counts) + keys[-1:]
                    n = counts.get(parent, 0)
                    counts[parent] = n + 1
                    index.setdefault(parent, at)
                    table = (*parent, n)
                else:
                    table = _table_path(keys, counts)
                index.setdefault(table, at)
                lineno += 1
                continue
            key = _KEY.match(line)
            if key:
                path = table + split_dotted(key.group("key"))[:MAX_KEY_PARTS]
                key_at = start + len(key.group("indent"))
                value = start + key.end()
                index.setdefault(path, _Entry(key_at, value))
                # Dotted keys also define their parents here.
                for cut in range(len(table) + 1, len(path)):
                    index.setdefault(path[:cut], _Entry(key_at))
                # Skip the lines a multi-line value spans: keys in there are not ours.
                end = _skip_value(self.text, value)
                lineno = max(lineno + 1, self._position(max(end - 1, value))[0])
                continue
            lineno += 1
        return index

    @property
    def _index(self) -> dict[PathKey, tuple[int, int]]:
        """Every key and table path (not array elements) with its ``(line, col)``."""
        return {path: self._position(e.offset) for path, e in self._entries.items()}

    def offset_of(self, line: int, col: int) -> int:
        return self._starts[line - 1] + col - 1

    def position(self, line: int, col: int) -> tuple[int, int]:
        return line, col

    def position_of(self, offset: int) -> tuple[int, int]:
        """``(line, col)`` of a character offset into the text."""
        return self._position(offset)

    def _position(self, offset: int) -> tuple[int, int]:
        lo, hi = 0, len(self._starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self._starts[lo] + 1

    def find(self, path: Sequence[str | int]) -> tuple[tuple[int, int], int]:
        """(best ``(line, col)``, how many leading path elements that place covers)."""
        path = tuple(path)
        for cut in range(len(path), 0, -1):
            entry = self._entries.get(path[:cut])
            if entry is None:
                continue
            if cut == len(path) or entry.value < 0:
                return self._position(entry.offset), cut
            offset, placed = _walk(self.text, entry.value, path[cut:], entry.offset)
            return self._position(offset), cut + placed
        return (0, 0), 0

    def locate(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Best ``(line, col)`` for a path; ``(0, 0)`` when nothing matches."""
        return self.find(path)[0]

    def has(self, path: Sequence[str | int]) -> bool:
        """Whether the text spells out this exact path."""
        return len(path) > 0 and self.find(path)[1] == len(path)


def _table_path(keys: Sequence[str], counts: dict[PathKey, int]) -> PathKey:
    """A header's path, entering the latest element of any array of tables on the way."""
    prefixes = _table_prefixes(keys, counts)
    return prefixes[-1] if prefixes else ()


def _table_prefixes(keys: Sequence[str], counts: dict[PathKey, int]) -> list[PathKey]:
    """``_table_path`` of ``keys[:1]``, ``keys[:2]``, … in one pass."""
    out: list[str | int] = []
    prefixes: list[PathKey] = []
    for key in keys:
        out.append(key)
        n = counts.get(tuple(out))
        if n:
            out.append(n - 1)
        prefixes.append(tuple(out))
    return prefixes


# --------------------------------------------------------------------------- a value tokenizer


def _skip_ws(text: str, i: int) -> int:
    """Skip blanks, newlines and comments (as allowed between array elements)."""
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        else:
            break
    return i


def _skip_string(text: str, i: int) -> int:
    """The offset just after the string starting at ``i``."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        end = text.find(quote * 3, i + 3)
        if end < 0:
            return len(text)
        end += 3
        while end < len(text) and text[end] == quote:  # """a"""" ends with a quote
            end += 1
        return end
    j = i + 1
    while j < len(text) and text[j] != "\n":
        if text[j] == "\\" and quote == '"':
            j += 2
            continue
        if text[j] == quote:
            return j + 1
        j += 1
    return j


def _skip_value(text: str, i: int) -> int:
    """The offset just after the value starting at ``i`` (always ``> i`` unless at the end)."""
    n = len(text)
    if i >= n:
        return i
    ch = text[i]
    if ch in "\"'":
        return _skip_string(text, i)
    if ch == "[":
        j = _skip_ws(text, i + 1)
        while j < n and text[j] != "]":
            if text[j] in ",}":
                j = _skip_ws(text, j + 1)
                continue
            j = _skip_ws(text, _skip_value(text, j))
        return min(j + 1, n)
    if ch == "{":
        j = _skip_ws(text, i + 1)
        while j < n and text[j] != "}":
            m = _INLINE_KEY.match(text, j)
            if not m:  # not TOML we understand: give up at the end of the line
                end = text.find("\n", j)
                return n if end < 0 else end
            j = _skip_ws(text, _skip_value(text, m.end()))
            if j < n and text[j] == ",":
                j = _skip_ws(text, j + 1)
        return min(j + 1, n)
    j = i
    while j < n and text[j] not in ",]}\n#":
        j += 1
    return max(j, i + 1)


def _inline_pairs(text: str, i: int) -> Iterator[tuple[int, tuple[str, ...], int]]:
    """(key offset, dotted key parts, value offset) of each pair of the inline table at ``i``."""
    n = len(text)
    j = _skip_ws(text, i + 1)
    while j < n and text[j] != "}":
        m = _INLINE_KEY.match(text, j)
        if not m:
            return
        yield j, split_dotted(m.group("key")), m.end()
        j = _skip_ws(text, _skip_value(text, m.end()))
        if j < n and text[j] == ",":
            j = _skip_ws(text, j + 1)
        elif j >= n or text[j] != "}":
            return


def _array_element(text: str, i: int, index: int) -> int:
    """The offset of element ``index`` of the array at ``i``, or -1."""
    n = len(text)
    j = _skip_ws(text, i + 1)
    k = 0
    while j < n and text[j] != "]":
        if k == index:
            return j
        j = _skip_ws(text, _skip_value(text, j))
        if j < n and text[j] == ",":
            j = _skip_ws(text, j + 1)
        elif j >= n or text[j] != "]":
            return -1
        k += 1
    return -1


def _walk(text: str, i: int, rest: Sequence[str | int], key_at: int) -> tuple[int, int]:
    """Follow ``rest`` into the value at ``i``: (offset to report, elements placed).

    An array element is reported where it starts; a key of an inline table
    where the key starts (as top-level keys are).
    """
    placed = 0
    last = key_at
    while placed < len(rest) and i < len(text):
        want = rest[placed]
        if isinstance(want, int) and text[i] == "[":
            found = _array_element(text, i, want)
            if found < 0:
                break
            i = last = found
            placed += 1
            continue
        if isinstance(want, str) and text[i] == "{":
            best: tuple[int, int, int, int] | None = None  # common, key, value, len(parts)
            for key_off, parts, value_off in _inline_pairs(text, i):
                common = 0
                while (
                    common < len(parts)
                    and placed + common < len(rest)
                    and rest[placed + common] == parts[common]
                ):
                    common += 1
                if common and (best is None or common > best[0]):
                    best = (common, key_off, value_off, len(parts))
                    if common == len(parts):
                        break
            if best is None:
                break
            common, key_off, value_off, nparts = best
            placed += common
            last = key_off
            if common < nparts:
                break  # the path ends (or diverges) inside a dotted key
            i = value_off
            continue
        break
    return last, placed


# --------------------------------------------------------------------------- paths in messages


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def dotted(path: Sequence[object]) -> str:
    """``services.web.ports[1]``; a key that is not a bare TOML key is quoted
    (``labels."a.b"``), so the path stays one unambiguous line."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        else:
            key = str(elem)
            if not _BARE_KEY.fullmatch(key):
                key = quote_key(key)
            out += ("." if out else "") + key
    return out


def quote_key(key: str) -> str:
    """A TOML basic-string key: quotes, backslashes and control characters escaped."""
    escaped = "".join(
        "\\" + ch
        if ch in '"\\'
        else f"\\u{ord(ch):04x}"
        if ord(ch) < 0x20 or ord(ch) == 0x7F
        else ch
        for ch in key
    )
    return f'"{escaped}"'


def locate_with_env(
    locator: Locator, path: tuple[str | int, ...], environment: str | None
) -> tuple[int, int]:
    """Where a field's value was written: the active overlay or the base spec.

    The overlay wins when it spells out the field at least as deeply as the
    base does (it replaced or added the value); otherwise the base placed it.
    """
    base, base_depth = locator.find(list(path))
    if environment:
        over, over_depth = locator.find(["environments", environment, *path])
        over_depth -= 2
        if over_depth > 0 and over_depth >= base_depth:
            return over
    return base
