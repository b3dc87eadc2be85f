"""``value``: ``@dataclass(frozen=True)`` with equality, hash and repr written once.

A frozen dataclass gets six methods compiled from source text when its class
is made (``__init__``, ``__setattr__``, ``__delattr__``, ``__eq__``,
``__hash__``, ``__repr__``): about a millisecond per class on a busy machine,
and every ``envd up`` makes ~50 of them before it talks to the engine.
``value`` lets ``dataclasses`` compile only what depends on the fields (the
constructor and the frozen guards) and gives the class the three others from
here, with the same meaning as the generated ones:

* ``==`` holds between instances of the very same class whose fields with
  ``compare=True`` are equal, in order (``NotImplemented`` for anything else);
* the hash is that of the tuple of the fields ``dataclasses`` would hash
  (``hash=True``, or ``hash=None`` and ``compare=True``);
* ``repr`` is ``Name(field=value, ...)`` over the fields with ``repr=True``.

A method the class body defines itself is kept, as ``dataclasses`` keeps it;
an undocumented class is documented as "A <name> value." rather than with the
signature ``dataclasses`` would compute.
``dataclasses.fields``, ``replace`` and ``asdict`` work as on any dataclass.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # only type checkers read the marker (typing has it from 3.11 on)

    def dataclass_transform(**_: object) -> Callable[[T], T]:
        return lambda decorated: decorated


T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def value(cls: type[T]) -> type[T]:
    """The class as a frozen dataclass (see the module's docstring)."""
    body = cls.__dict__
    own = {name for name in ("__eq__", "__repr__") if name in body}
    # Python sets ``__hash__ = None`` for a body defining ``__eq__`` alone: not a hash of its own.
    if "__hash__" in body and not (body["__hash__"] is None and "__eq__" in body):
        own.add("__hash__")
    if not cls.__doc__:
        # dataclasses would write one from inspect.signature (a tenth of the class's cost).
        cls.__doc__ = f"A {cls.__name__} value."
    made = dataclasses.dataclass(cls, frozen=True, eq=False, repr=False)
    fields = dataclasses.fields(cast(Any, made))
    compared = _getter([f.name for f in fields if f.compare])
    hashed = _getter([f.name for f in fields if (f.compare if f.hash is None else f.hash)])
    shown = [f.name for f in fields if f.repr]

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return bool(compared(self) == compared(other))
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(hashed(self))

    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({inner})"

    for name, method in (("__eq__", __eq__), ("__hash__", __hash__), ("__repr__", __repr__)):
        if name not in own:
            method.__qualname__ = f"{made.__qualname__}.{name}"
            setattr(made, name, method)
    return made


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The named attributes of an object, always as a tuple (as the generated code builds)."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)
