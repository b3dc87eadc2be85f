"""Map a field path (``services.api.ports``) to its ``line:col`` in TOML text.

tomllib gives values without positions, so this scans the source for table
headers and keys. It is deliberately forgiving: when a path cannot be placed
exactly, the nearest enclosing key or table is good enough for a message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property

_HEADER = re.compile(r"^\s*\[\[?\s*(?P<key>[^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(
    r"^(?P<indent>\s*)(?P<key>(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
    r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
_DOTTED_PART = re.compile(r"\s*(?:([A-Za-z0-9_-]+)|\"([^\"]*)\"|'([^']*)')\s*")


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


class Locator:
    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def _lines(self) -> list[str]:
        return self.text.splitlines()

    @cached_property
    def _index(self) -> dict[tuple[str, ...], tuple[int, int]]:
        index: dict[tuple[str, ...], tuple[int, int]] = {}
        table: tuple[str, ...] = ()
        depth = 0  # bracket depth of multi-line arrays: keys inside are not top-level
        for lineno, line in enumerate(self._lines, start=1):
            stripped = line.strip()
            if depth == 0:
                header = _HEADER.match(line)
                if header and not stripped.startswith('["'):
                    table = split_dotted(header.group("key"))
                    index.setdefault(table, (lineno, line.index("[") + 1))
                    continue
                key = _KEY.match(line)
                if key:
                    path = table + split_dotted(key.group("key"))
                    index.setdefault(path, (lineno, len(key.group("indent")) + 1))
                    # Dotted keys also define their parents here.
                    for cut in range(len(table) + 1, len(path)):
                        index.setdefault(path[:cut], (lineno, len(key.group("indent")) + 1))
            depth += _bracket_delta(line)
            depth = max(depth, 0)
        return index

    def offset_of(self, line: int, col: int) -> int:
        return sum(len(x) + 1 for x in self._lines[: line - 1]) + col - 1

    def position(self, line: int, col: int) -> tuple[int, int]:
        return line, col

    def locate(self, path: Sequence[str | int]) -> tuple[int, int]:
        """Best ``(line, col)`` for a path; ``(0, 0)`` when nothing matches."""
        keys = [p for p in path if isinstance(p, str)]
        for cut in range(len(keys), 0, -1):
            found = self._index.get(tuple(keys[:cut]))
            if found is None:
                continue
            if cut == len(keys):
                return found
            # The rest lives inside an inline table or array: look for the
            # next key textually after the enclosing one.
            return self._search_after(found, keys[cut:])
        return (0, 0)

    def _search_after(self, start: tuple[int, int], keys: list[str]) -> tuple[int, int]:
        offset = self.offset_of(*start)
        best = start
        for key in keys:
            pattern = re.compile(r"(?<![A-Za-z0-9_-])" + re.escape(key) + r"\s*=")
            m = pattern.search(self.text, offset)
            if not m:
                break
            # Stay within a reasonable distance: an inline table is one line,
            # a multi-line array a few.
            line = self.text.count("\n", 0, m.start()) + 1
            if line - best[0] > 30:
                break
            col = m.start() - (self.text.rfind("\n", 0, m.start()) + 1) + 1
            best = (line, col)
            offset = m.end()
        return best


def _bracket_delta(line: str) -> int:
    delta = 0
    in_str: str | None = None
    i = 0
    # Skip the key part of "key = [" lines: only count brackets in values.
    eq = line.find("=")
    if eq >= 0 and _KEY.match(line):
        i = eq + 1
    elif line.lstrip().startswith("["):
        return 0 if _HEADER.match(line) else _count(line, 0)
    return _count(line, i) if delta == 0 and in_str is None else delta


def _count(line: str, start: int) -> int:
    delta = 0
    in_str: str | None = None
    i = start
    while i < len(line):
        ch = line[i]
        if in_str:
            if ch == "\\" and in_str == '"':
                i += 2
                continue
            if ch == in_str:
                in_str = None
        elif ch in "\"'":
            in_str = ch
        elif ch == "#":
            break
        elif ch == "[":
            delta += 1
        elif ch == "]":
            delta -= 1
        i += 1
    return delta
