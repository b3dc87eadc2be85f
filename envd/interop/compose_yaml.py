"""Reading a Compose file's YAML as hostile input: bounded in size, depth and alias expansion.

``yaml.safe_load`` builds no objects from tags, but a 500-byte file of nested
aliases ("billion laughs") still expands to billions of nodes once the
importer walks it, deep nesting overflows the recursive composer, and a
repeated key silently shadows the one a reviewer read. This loader refuses
each with a located ``SpecError`` (exit 2). Mapping keys are kept as written
(``NO:`` is the variable ``NO``, not ``False``, as Compose reads it) and dates
stay strings, because Compose's YAML has no timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


from envd.values.errors import SpecError, SpecProblem

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
# Nodes after aliases are expanded: far above any real Compose file (a 4 MiB
# file holds a few hundred thousand), far below what exhausts memory.
MAX_NODES = 500_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Limit(yaml.MarkedYAMLError):
    """A limit of this loader, at a place in the file."""


class _Loader(Composer, _Parser, SafeConstructor, Resolver):
    """Safe loading that counts nodes as aliases expand them and bounds nesting.

    libyaml parses when it is there (eight times faster); the composer is
    always PyYAML's Python one, because that is where the limits are counted.
    """

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event: Any = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise _Limit(None, None, "an alias refers to its own anchor", event.start_mark)
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        start: Any = self.peek_event()
        mark = start.start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Limit(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        before = self._nodes
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, mark)
        if node is not None:
            self._sizes[id(node)] = self._nodes - before
        return node

    def _count(self, size: int, mark: Any) -> None:
        self._nodes += size
        if self._nodes > MAX_NODES:
            raise _Limit(
                None,
                None,
                f"expands to more than {MAX_NODES} nodes (aliases repeat what they point to)",
                mark,
            )

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):  # `!!set [a]`: the tag on a list
            raise _Limit(
                None, None, "a !!set or !!map tag on a value that is not a mapping", node.start_mark
            )
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag.endswith(":null"):
                raise _Limit(None, None, "a mapping key must be a string", key_node.start_mark)
            if key_node.value in seen:
                raise _Limit(
                    None, None, f"the key {key_node.value!r} is repeated", key_node.start_mark
                )
            seen.add(key_node.value)
        self.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            # The key as written: YAML 1.1 would read `NO:` or `1:` as False or 1.
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key is None:
                raise _Limit(None, None, "a mapping key must be a string", key_node.start_mark)
            out[key] = self.construct_object(value_node, deep=deep)
        return out

    def construct_scalar(self, node: Node) -> Any:
        value = super().construct_scalar(node)  # type: ignore[arg-type]
        if isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value):
            # An escaped lone surrogate ("\ud800") is no character: TOML and UTF-8 cannot hold it.
            raise _Limit(None, None, "a string holds a lone surrogate escape", node.start_mark)
        return value

    def construct_yaml_int(self, node: ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            raise _Limit(None, None, "a number too large", node.start_mark) from None


# --- merge tags (Compose's `!reset` and `!override`, read by compose_merge)


class Reset:
    """``!reset``: the value of this key in the files before this one is dropped."""

    def __repr__(self) -> str:
        return "!reset"


@dataclass(frozen=True)
class Override:
    """``!override VALUE``: this value replaces the earlier files' one instead of merging."""

    value: Any


def _reset(loader: _Loader, node: Node) -> Reset:
    return Reset()


def _override(loader: _Loader, node: Node) -> Override:
    if isinstance(node, MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    # A scalar is read as YAML would have read it untagged (`!override 5` is the number 5).
    assert isinstance(node, ScalarNode)
    tag: str = loader.resolve(ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
    plain = ScalarNode(tag, node.value, node.start_mark, node.end_mark, node.style)
    return Override(loader.construct_object(plain, deep=True))


_Loader.add_constructor("!reset", _reset)  # type: ignore[type-var]
_Loader.add_constructor("!override", _override)  # type: ignore[type-var]

_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)  # type: ignore[type-var]
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)  # type: ignore[type-var]
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}


def decode(data: bytes, source: str) -> str:
    """UTF-8 text of a Compose file, or a SpecError naming the file and the bad byte."""
    if len(data) > MAX_BYTES:
        raise SpecError(
            SpecProblem(f"larger than {MAX_BYTES // (1024 * 1024)} MiB; refused", source)
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start
        line = data.count(b"\n", 0, offset) + 1
        column = len(data[data.rfind(b"\n", 0, offset) + 1 : offset].decode("utf-8", "replace"))
        raise SpecError(
            SpecProblem(
                f"not valid UTF-8: byte {offset} (0x{data[offset]:02x}); save the file as UTF-8",
                source,
                line,
                column + 1,
            )
        ) from None


def load_yaml(text: str, source: str) -> Any:
    """The one YAML document in ``text``, within this module's limits, or a located SpecError."""
    if len(text) > MAX_BYTES:
        raise SpecError(
            SpecProblem(f"larger than {MAX_BYTES // (1024 * 1024)} MiB; refused", source)
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecError(
            SpecProblem(f"not valid Unicode: character {exc.start} is a lone surrogate", source)
        ) from None
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except _Limit as exc:
        mark = exc.problem_mark
        assert mark is not None
        raise SpecError(
            SpecProblem(f"{exc.problem}; refused", source, mark.line + 1, mark.column + 1)
        ) from None
    except yaml.reader.ReaderError as exc:
        # libyaml counts bytes of the UTF-8 text; the pure reader counts characters.
        data = text.encode("utf-8")
        before = (
            data[: exc.position].decode("utf-8", "replace")
            if len(data) != len(text)
            else text[: exc.position]
        )
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise SpecError(
            SpecProblem(
                f"invalid YAML: character #x{exc.character:04x} is not allowed in YAML",
                source,
                line,
                column,
            )
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            SpecProblem(f"invalid YAML: {_one_line(problem)}", source, line, col)
        ) from None
    finally:
        loader.dispose()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
