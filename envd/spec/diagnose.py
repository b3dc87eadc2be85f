"""Problems a user can act on: pydantic's validation errors turned into
messages with the file, line and dotted path of what was written, and the
"did you mean" hints (close names, Compose spellings).
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from envd.spec.hints import did_you_mean
from envd.spec.locate import Locator, dotted, locate_with_env
from envd.spec.models import Spec
from envd.values.errors import SpecProblem

# --------------------------------------------------------------------------- pydantic errors


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[str | int, ...]:
    """Drop pydantic's type tags from a loc, keeping only real keys/indexes."""
    path: list[str | int] = []
    current = data
    for i, elem in enumerate(loc):
        in_dict = isinstance(current, dict) and elem in current
        in_list = isinstance(current, list) and isinstance(elem, int) and 0 <= elem < len(current)
        if in_dict or in_list:
            path.append(elem)
            current = current[elem]
        elif i == len(loc) - 1 and isinstance(elem, str) and not _is_tag(elem):
            path.append(elem)  # a missing field
    return tuple(path)


def _is_tag(elem: str) -> bool:
    return (
        "[" in elem
        or elem in {"str", "int", "float", "bool", "list", "dict", "none"}
        or (elem[:1].isupper())
    )


def _model_at(path: tuple[str | int, ...]) -> type[BaseModel] | None:
    model: Any = Spec
    for elem in path:
        if model is None:
            return None
        if isinstance(model, type) and issubclass(model, BaseModel):
            if isinstance(elem, str) and elem in model.model_fields:
                model = _unwrap(model.model_fields[elem].annotation)
                continue
            return None
        if isinstance(model, tuple) and model[0] == "map":
            model = model[1]
            continue
        if isinstance(model, tuple) and model[0] == "list" and isinstance(elem, int):
            model = model[1]
            continue
        return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                found = _unwrap(arg)
                if found is not None:
                    return found
        return None
    if origin is dict:
        return ("map", _unwrap(typing.get_args(annotation)[1]))
    if origin is list:
        return ("list", _unwrap(typing.get_args(annotation)[0]))
    return annotation


def pydantic_problems(
    exc: ValidationError,
    data: dict[str, Any],
    locator: Locator,
    display: str,
    environment: str | None,
) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    seen: set[tuple[Any, ...]] = set()
    errors = exc.errors(include_url=False)
    for done, err in enumerate(errors):
        if len(problems) >= MAX_PROBLEMS:
            problems.append(more_problems(len(errors) - done, display))
            break
        path = _data_path(tuple(err["loc"]), data)
        msg = _message(err, path)
        key = (path, msg)
        if key in seen:
            continue
        seen.add(key)
        line, col = locate_with_env(locator, path, environment)
        problems.append(SpecProblem(msg, display, line, col, dotted(path)))
    return problems


# Locating a problem scans the text, so thousands of them (a long list of
# wrong types) would take minutes; the first ones are what a user fixes first.
MAX_PROBLEMS = 50


def more_problems(count: int, display: str) -> SpecProblem:
    return SpecProblem(f"{count} more problem(s) not shown; fix the ones above first", display)


def _message(err: Any, path: tuple[str | int, ...]) -> str:
    kind = err["type"]
    msg: str = err["msg"]
    if kind == "extra_forbidden" and path and isinstance(path[-1], str):
        parent = _model_at(path[:-1])
        fields = list(parent.model_fields) if parent else []
        return f"unknown field {path[-1]!r}{did_you_mean(path[-1], fields)}"
    if kind == "missing":
        return "this field is required"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        got = err.get("input")
        hint = ""
        if isinstance(got, str):
            options = re.findall(r"'([^']*)'", expected)
            hint = did_you_mean(got, options)
        return f"invalid value {got!r}: expected {expected}{hint}"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, ") :]
    else:
        msg = msg[0].lower() + msg[1:]
    return msg


def sort_problems(problems: list[SpecProblem]) -> list[SpecProblem]:
    return sorted(problems, key=lambda p: (p.line or 10**9, p.column, p.path))
