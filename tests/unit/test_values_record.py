"""``envd.values.record.value`` behaves as ``@dataclass(frozen=True)`` does."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from envd.values import types
from envd.values.record import value


@value
class Point:
    x: int
    y: int = 0
    secret: bytes = field(default=b"", repr=False, compare=False)
    note: str = field(default="", hash=False)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StdPoint:
    x: int
    y: int = 0
    secret: bytes = field(default=b"", repr=False, compare=False)
    note: str = field(default="", hash=False)
    tags: tuple[str, ...] = ()


@value
class Empty:
    pass


@value
class Own:
    x: int

    def __repr__(self) -> str:
        return "mine"

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


@value
class Node:
    name: str
    children: list[Any] = field(default_factory=list, hash=False)


SAMPLES = [
    dict(x=1),
    dict(x=1, y=2),
    dict(x=1, y=2, secret=b"s"),
    dict(x=1, y=2, secret=b"t"),
    dict(x=1, note="a"),
    dict(x=1, note="b"),
    dict(x=1, tags=("a", "b")),
]


@pytest.mark.parametrize("a", SAMPLES)
@pytest.mark.parametrize("b", SAMPLES)
def test_equality_hash_and_repr_are_the_generated_ones(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    """==, hash and repr give what a frozen dataclass of the same fields gives."""
    mine, theirs = (Point(**a), Point(**b)), (StdPoint(**a), StdPoint(**b))
    assert (mine[0] == mine[1]) == (theirs[0] == theirs[1])
    assert (mine[0] != mine[1]) == (theirs[0] != theirs[1])
    assert hash(mine[0]) == hash(theirs[0])
    assert repr(mine[0]) == repr(theirs[0]).replace("StdPoint(", "Point(")


def test_it_is_a_frozen_dataclass() -> None:
    """Fields, replace, asdict, match args, copies and pickles work; assigning raises."""
    p = Point(1, 2, b"s")
    assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "secret", "note", "tags"]
    assert dataclasses.replace(p, y=3) == Point(1, 3)
    assert dataclasses.asdict(p)["secret"] == b"s"
    assert Point.__match_args__ == ("x", "y", "secret", "note", "tags")
    assert copy.deepcopy(p) == p and pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del p.y  # type: ignore[misc]


def test_another_class_with_the_same_fields_is_not_equal() -> None:
    """Equality needs the very same class, as the generated __eq__ does."""
    assert Point(1) != StdPoint(1)
    assert Point(1).__eq__(StdPoint(1)) is NotImplemented
    assert Empty() == Empty() and hash(Empty()) == hash(()) and repr(Empty()) == "Empty()"


def test_methods_the_class_defines_are_kept() -> None:
    """A class body's own __repr__, __eq__ and __hash__ win, as with dataclasses."""
    a, b = Own(1), Own(2)
    assert repr(a) == "mine" and a == b and hash(a) != hash(b)


def test_a_recursive_repr_ends() -> None:
    """A value holding itself shows ``...`` where the generated repr would."""
    n = Node("a")
    n.children.append(n)
    assert repr(n) == "Node(name='a', children=[...])"


def test_unhashable_fields_fail_to_hash_as_before() -> None:
    """A mapping field makes the value unhashable, like the generated __hash__."""
    c = types.ContainerCreate(name="n", image="i", labels={"a": "b"})
    with pytest.raises(TypeError):
        hash(c)
    assert c == types.ContainerCreate(name="n", image="i", labels={"a": "b"})
    assert repr(types.SecretFile("/run/s", value=b"x")).find("x'") == -1


def test_an_undocumented_value_gets_a_short_doc() -> None:
    """A class without a docstring is documented by name (no signature is computed)."""
    assert Point.__doc__ == "A Point value."
    assert types.ContainerCreate.__doc__ is not None
    assert types.ContainerCreate.__doc__.startswith("Everything needed")
