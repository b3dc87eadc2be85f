"""Fuzzing the loader: thousands of generated and mutated specs, zero internal errors.

Seeds are the valid specs of the repository (examples/, envd.toml.example).
Three sources of bad input go through ``load`` and the ``preflight`` of
plan/up: byte-level mutations of a seed (slices dropped, tokens such as
``$``, ``${``, ``:-``, brackets, quotes, unicode and raw bytes spliced in),
tree-level mutations (keys dropped, values replaced by other types, deep
nesting) written back as TOML, and trees generated from the spec's own
vocabulary. Whatever comes in, the only exceptions allowed are SpecError and
UsageError, and every problem renders as ``file[:line:col]: [path: ]message``
on one line.

Kept to a few seconds: ``ENVD_FUZZ_EXAMPLES`` raises the count for a long
local run; under CI the run is derandomized so a failure reproduces.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envd.spec.load import load
from envd.spec.read import preflight
from envd.values.errors import SpecError, UsageError
from tests.helpers import toml_string

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
SEEDS = {
    "quickstart": ROOT / "examples" / "quickstart",
    "webapp": ROOT / "examples" / "webapp",
    "example": ROOT / "envd.toml.example",
}
CI = bool(os.environ.get("CI"))
# Per test (the byte-level one runs twice as many): 1200 specs, each through
# load and preflight, in a few seconds; a long local run raises it.
EXAMPLES = int(os.environ.get("ENVD_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=CI,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# What a problem looks like on the terminal: file, maybe line:col, maybe a path, a message.
RENDERED = re.compile(r"^[^\n]+?(:\d+:\d+)?: \S[^\n]*$")
ENVIRON = {"GREETING": "hi", "SET": "1", "EMPTY": ""}
TOKENS = [
    "$",
    "$$",
    "${",
    "}",
    ":-",
    ":?",
    ":+",
    "${X:-${Y:-z}}",
    "$UNSET",
    "${SET}",
    "[",
    "]",
    "{",
    "}",
    "[[",
    "]]",
    '"',
    "'",
    '"""',
    "'''",
    "=",
    ".",
    ",",
    "#",
    "\n",
    "\r\n",
    "\t",
    "\\",
    "\\u0000",
    "é",
    "日本",
    "\U0001f600",
    "\u202e",
    "0",
    "-1",
    "1e400",
    "nan",
    "true",
    "1979-05-27",
    "[services.x]",
    "[environments.dev]",
    'profiles = ["p"]',
    'image = "busybox"',
    'depends_on = { web = "healthy" }',
    'ports = ["99999:1"]',
]
TOKEN = st.sampled_from(TOKENS)
RAW_BYTES = [b"\xff", b"\xc3", b"\xe9", b"\x00", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\x80"]
KEYS = [
    "services",
    "project",
    "name",
    "volumes",
    "networks",
    "secrets",
    "environments",
    "web",
    "db",
    "image",
    "build",
    "context",
    "command",
    "entrypoint",
    "env",
    "env_file",
    "ports",
    "depends_on",
    "healthcheck",
    "test",
    "interval",
    "profiles",
    "replicas",
    "restart",
    "labels",
    "watch",
    "path",
    "action",
    "file",
    "external",
    "strict_variables",
    "x",
    "",
]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One writable copy of each seed's project directory."""
    out: dict[str, Path] = {}
    for name, source in SEEDS.items():
        target = tmp_path_factory.mktemp(f"fuzz-{name}")
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy(source, target / "envd.toml")
        out[name] = target
    return out


def seed_text(name: str) -> str:
    source = SEEDS[name]
    path = source / "envd.toml" if source.is_dir() else source
    return path.read_text(encoding="utf-8")


def check(
    directory: Path,
    data: bytes,
    environment: str | None,
    profiles: frozenset[str],
    dotenv: bytes | None = None,
) -> None:
    """Load and pre-flight ``data`` as envd.toml (and ``dotenv`` as .env): only envd errors,
    each rendered on one line."""
    (directory / "envd.toml").write_bytes(data)
    if dotenv is None:
        (directory / ".env").unlink(missing_ok=True)
    else:
        (directory / ".env").write_bytes(dotenv)
    for attempt in (
        lambda: load(directory, environment=environment, environ=ENVIRON, profiles=profiles),
        lambda: preflight(directory, None, environment, profiles, environ=ENVIRON),
    ):
        try:
            attempt()
        except SpecError as exc:
            assert exc.problems, "a SpecError without problems"
            for problem in exc.problems:
                assert problem.message.strip(), exc
                line = problem.render()
                assert RENDERED.match(line), f"badly rendered problem: {line!r}"
                assert "Traceback" not in line and "pydantic" not in line.lower(), line
        except UsageError:
            pass


# --------------------------------------------------------------------------- byte-level mutations


@st.composite
def mutated_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(seed_text(name).encode("utf-8"))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["drop", "token", "text", "bytes", "dup", "nest"]))
        if kind == "drop":
            data[at : at + draw(st.integers(1, 80))] = b""
        elif kind == "token":
            data[at:at] = draw(TOKEN).encode("utf-8")
        elif kind == "text":
            data[at:at] = draw(st.text(max_size=20)).encode("utf-8", "surrogatepass")
        elif kind == "bytes":
            data[at:at] = draw(st.sampled_from(RAW_BYTES) | st.binary(max_size=8))
        elif kind == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 200))]
        else:
            depth = draw(st.sampled_from([5, 40, 400, 3000]))
            opener, closer = draw(st.sampled_from([("[", "]"), ("{ a = ", " }"), ("${X:-", "}")]))
            data[at:at] = (opener * depth + closer * depth).encode()
    return name, bytes(data)


DOTENV = (
    st.none()
    | st.lists(
        st.sampled_from(["A=1", "export B='x y'", 'C="a\\nb"', "D", "#", "=", "E= #c"])
        | TOKEN
        | st.text(max_size=12),
        max_size=6,
    ).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))
    | st.binary(max_size=24)
)


@settings(FUZZ, max_examples=EXAMPLES * 2)
@given(
    case=mutated_bytes(),
    environment=st.sampled_from([None, "dev", "ci", "prod", "staging"]),
    dotenv=DOTENV,
)
def test_mutated_bytes_never_crash_the_loader(
    projects: dict[str, Path],
    case: tuple[str, bytes],
    environment: str | None,
    dotenv: bytes | None,
) -> None:
    """Byte-level mutations of every seed spec (and odd .env files) end as SpecError/UsageError, never an internal error."""
    name, data = case
    check(projects[name], data, environment, frozenset({"debug"}), dotenv)


# --------------------------------------------------------------------------- tree-level mutations


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.lists(
            st.sampled_from(TOKENS) | st.characters(exclude_categories=("Cs",)), max_size=8
        ).map("".join),
        st.sampled_from(TOKENS),
        st.dates(),
        st.datetimes(),
        st.times(),
    )


def values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


SCALARS = scalars()
VALUES = values()


def paths(tree: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a parsed TOML tree (dict keys and list indexes)."""
    yield prefix
    items: Any = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else ()
    )
    for key, value in items:
        yield from paths(value, (*prefix, key))


def get(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


@st.composite
def mutated_trees(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    tree: dict[str, Any] = tomllib.loads(seed_text(name))
    for _ in range(draw(st.integers(1, 5))):
        inside = list(paths(tree))[1:]
        if not inside:
            break
        path = inside[draw(st.integers(0, len(inside) - 1))]
        parent, last = get(tree, path[:-1]), path[-1]
        kind = draw(st.sampled_from(["drop", "replace", "deep", "dollar"]))
        if kind == "drop":
            del parent[last]
        elif kind == "replace":
            parent[last] = draw(VALUES)
        elif kind == "deep":
            value: Any = draw(SCALARS)
            for _ in range(draw(st.sampled_from([3, 33, 200]))):
                value = [value] if draw(st.booleans()) else {"k": value}
            parent[last] = value
        else:
            parent[last] = "".join(draw(st.lists(TOKEN, max_size=8)))
    return name, tree


@FUZZ
@given(case=mutated_trees(), environment=st.sampled_from([None, "dev", "ci", "staging"]))
def test_mutated_trees_never_crash_the_loader(
    projects: dict[str, Path], case: tuple[str, dict[str, Any]], environment: str | None
) -> None:
    """Seed specs with keys dropped and values replaced by other types or nested deep: only SpecError."""
    name, tree = case
    check(projects[name], to_toml(tree).encode("utf-8"), environment, frozenset())


@FUZZ
@given(
    tree=st.dictionaries(st.sampled_from(KEYS), values(20), max_size=5),
    profiles=st.frozensets(st.sampled_from(["debug", "p", ""]), max_size=2),
)
def test_generated_trees_never_crash_the_loader(
    projects: dict[str, Path], tree: dict[str, Any], profiles: frozenset[str]
) -> None:
    """Trees built from the spec's own words (any shape, any type) load or fail as SpecError."""
    check(projects["example"], to_toml(tree).encode("utf-8"), None, profiles)


# --------------------------------------------------------------------------- a small TOML writer


def to_toml(tree: dict[str, Any]) -> str:
    """Every top-level key as ``key = value`` with inline tables: valid TOML for any tree."""
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in tree.items())


def _key(key: Any) -> str:
    return toml_string(str(key))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def test_the_writer_round_trips_the_seeds() -> None:
    """The fuzz test's TOML writer gives back each seed tree unchanged (so mutations are what reach load)."""
    for name in SEEDS:
        tree = tomllib.loads(seed_text(name))
        assert tomllib.loads(to_toml(tree)) == tree
