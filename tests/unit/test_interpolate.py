"""``${VAR}`` interpolation, ``.env`` parsing, and how both reach the loader."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from envd.spec.interpolate import (
    InterpolationError,
    interpolate,
    interpolate_tree,
    parse_dotenv,
)
from envd.spec.load import load
from envd.values.errors import SpecError

VARS: Mapping[str, str] = {"A": "a", "EMPTY": "", "HOST": "db", "PORT": "5432"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # plain text and $-forms
        ("no variables", "no variables"),
        ("$A", "a"),
        ("$A-suffix", "a-suffix"),
        ("pre$A/post", "prea/post"),
        ("$UNSET", ""),
        ("${A}", "a"),
        ("${A}b", "ab"),
        ("$Ab", ""),  # $Ab names the variable Ab, which is unset
        ("${HOST}:${PORT}", "db:5432"),
        # :- (unset or empty) and - (unset only)
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${A:-d}", "a"),
        ("${UNSET-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${A-d}", "a"),
        ("${UNSET:-}", ""),
        ("${UNSET:-a b c}", "a b c"),
        ("${UNSET:-http://x:80/}", "http://x:80/"),
        # :+ and + (alternative when set)
        ("${A:+x}", "x"),
        ("${EMPTY:+x}", ""),
        ("${UNSET:+x}", ""),
        ("${A+x}", "x"),
        ("${EMPTY+x}", "x"),
        ("${UNSET+x}", ""),
        # :? and ? pass the value through when set
        ("${A:?must be set}", "a"),
        ("${EMPTY?must be set}", ""),
        # $$ escapes
        ("$$", "$"),
        ("$$A", "$A"),
        ("$$$A", "$a"),
        ("$${A}", "${A}"),
        ("price: 5$", "price: 5$"),
        ("$1", "$1"),
        ("$ A", "$ A"),
        # nested defaults
        ("${UNSET:-${A}}", "a"),
        ("${UNSET:-${OTHER:-deep}}", "deep"),
        ("${UNSET:-${OTHER:-${HOST}:${PORT}}}", "db:5432"),
        ("${A:+${HOST}}", "db"),
        ("${UNSET:-$$literal}", "$literal"),
        ("${UNSET:-x}}", "x}"),
    ],
)
def test_interpolate_forms(text: str, expected: str) -> None:
    """Every documented interpolation form expands as in Compose."""
    assert interpolate(text, VARS) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${UNSET:?set UNSET first}", "UNSET: set UNSET first"),
        ("${EMPTY:?cannot be empty}", "EMPTY: cannot be empty"),
        ("${UNSET?is required}", "UNSET: is required"),
        ("${UNSET:?}", "variable UNSET is required"),
        ("${UNSET?}", "variable UNSET is required"),
        ("${UNSET:?needs ${HOST}}", "UNSET: needs db"),
        ("${UNSET:-${INNER:?inner missing}}", "INNER: inner missing"),
        ("${A", "unclosed '${'"),
        ("x ${A:-${B}", "unclosed '${'"),
        ("${}", "invalid variable name"),
        ("${1A}", "invalid variable name"),
        ("${-x}", "invalid variable name"),
        ("${A:x}", "invalid interpolation"),
        ("${A B}", "invalid interpolation"),
    ],
)
def test_interpolate_errors(text: str, fragment: str) -> None:
    """Required variables and broken syntax raise InterpolationError naming the problem."""
    with pytest.raises(InterpolationError) as info:
        interpolate(text, VARS)
    assert fragment in str(info.value)


def test_error_form_does_not_fire_when_unused_branch() -> None:
    """A ``:?`` inside a default that is not taken is never evaluated."""
    assert interpolate("${A:-${UNSET:?never}}", VARS) == "a"


def test_interpolate_tree_touches_string_values_only() -> None:
    """Strings in tables and arrays are interpolated; keys, numbers and bools are kept."""
    tree = {
        "services": {
            "$A": {"image": "img:${A}", "ports": ["${PORT}:5432", 80], "init": True},
        },
        "n": 1.5,
    }
    out = interpolate_tree(tree, VARS)
    assert out == {
        "services": {"$A": {"image": "img:a", "ports": ["5432:5432", 80], "init": True}},
        "n": 1.5,
    }
    assert tree["services"]["$A"]["image"] == "img:${A}"  # the input is not mutated


def test_interpolate_tree_error_carries_path() -> None:
    """An interpolation error records the path of the value, for a file:line message."""
    tree = {"services": {"api": {"command": ["run", "${TOKEN:?no token}"]}}}
    with pytest.raises(InterpolationError) as info:
        interpolate_tree(tree, VARS)
    assert info.value.path == ("services", "api", "command", 1)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- .env


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("A=1", {"A": "1"}),
        ("A = spaced ", {"A": "spaced"}),
        ("export B=two", {"B": "two"}),
        ("export   B = two", {"B": "two"}),
        ('C="x y"', {"C": "x y"}),
        ("D='x y'", {"D": "x y"}),
        ("E=", {"E": ""}),
        ('E=""', {"E": ""}),
        ("F=a=b=c", {"F": "a=b=c"}),
        ("G=plain # a comment", {"G": "plain"}),
        ("G=url#fragment", {"G": "url#fragment"}),
        ('H="quoted" # a comment', {"H": "quoted"}),
        ("H='quoted'   # a comment", {"H": "quoted"}),
        ('I="has # hash"', {"I": "has # hash"}),
        ('J="line\\nnext\\ttab"', {"J": "line\nnext\ttab"}),
        ('J="say \\"hi\\""', {"J": 'say "hi"'}),
        ('J="back\\\\slash"', {"J": "back\\slash"}),
        ('J="back\\\\nope"', {"J": "back\\nope"}),
        ("K='no $escapes \\n here'", {"K": "no $escapes \\n here"}),
        ("L='C:\\dir\\'", {"L": "C:\\dir\\"}),
        ('M="unterminated', {"M": '"unterminated'}),
        ("N=${NOT_EXPANDED}", {"N": "${NOT_EXPANDED}"}),  # without expand: as written
        ("BARE_NAME", {}),
        ("# A=commented", {}),
        ("   ", {}),
    ],
)
def test_parse_dotenv_lines(line: str, expected: dict[str, str]) -> None:
    """Each ``.env`` line form parses like Compose's: quotes, escapes, export, comments."""
    assert parse_dotenv(line) == expected


def test_parse_dotenv_later_lines_win() -> None:
    """A key set twice in one ``.env`` takes its last value."""
    assert parse_dotenv("A=1\nB=2\r\nA=3\n") == {"A": "3", "B": "2"}


# --------------------------------------------------------------------------- through load


SPEC = """\
[project]
name = "demo"

[services.app]
image = "busybox:${TAG:-latest}"
env = { FROM_DOTENV = "${ONLY_IN_DOTENV}", BOTH = "${IN_BOTH}", ESCAPED = "$$HOME" }
"""


def _project(tmp_path: Path, spec: str = SPEC, dotenv: str | None = None) -> Path:
    (tmp_path / "envd.toml").write_text(spec)
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    return tmp_path


def test_process_env_wins_over_dotenv(tmp_path: Path) -> None:
    """A variable set in both the process environment and ``.env`` takes the process value."""
    _project(tmp_path, dotenv="IN_BOTH=from-dotenv\nONLY_IN_DOTENV=dot\nTAG=1.0\n")
    loaded = load(tmp_path, environ={"IN_BOTH": "from-process"})
    app = loaded.spec.services["app"]
    assert app.env == {"FROM_DOTENV": "dot", "BOTH": "from-process", "ESCAPED": "$HOME"}
    assert app.image == "busybox:1.0"


def test_dotenv_is_optional(tmp_path: Path) -> None:
    """Without a ``.env`` file, unset variables expand to empty strings or their defaults."""
    _project(tmp_path)
    loaded = load(tmp_path, environ={})
    app = loaded.spec.services["app"]
    assert app.image == "busybox:latest"
    assert app.env["FROM_DOTENV"] == ""


def test_empty_process_value_still_wins(tmp_path: Path) -> None:
    """An empty process variable overrides ``.env``, and ``:-`` then takes the default."""
    _project(tmp_path, dotenv="TAG=from-dotenv\n")
    loaded = load(tmp_path, environ={"TAG": ""})
    assert loaded.spec.services["app"].image == "busybox:latest"


def test_loaded_variables_merge_both_sources(tmp_path: Path) -> None:
    """``LoadedSpec.variables`` (used for env passthrough) is ``.env`` overlaid by the process."""
    _project(tmp_path, dotenv="X=dot\nY=dot\n")
    loaded = load(tmp_path, environ={"Y": "proc"})
    assert loaded.variables["X"] == "dot"
    assert loaded.variables["Y"] == "proc"


def test_required_variable_error_is_located(tmp_path: Path) -> None:
    """A ``:?`` error through ``load`` names the file, line, column and field path."""
    spec = '[services.app]\nimage = "busybox"\ncommand = ["run", "${TOKEN:?set TOKEN}"]\n'
    _project(tmp_path, spec)
    with pytest.raises(SpecError) as info:
        load(tmp_path, environ={})
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (3, 19)
    assert problem.path == "services.app.command[1]"
    assert "TOKEN: set TOKEN" in problem.message
    assert problem.file.endswith("envd.toml")


def test_required_variable_satisfied_by_dotenv(tmp_path: Path) -> None:
    """A ``:?`` variable defined only in ``.env`` satisfies the requirement."""
    spec = '[services.app]\nimage = "busybox:${TAG:?set TAG}"\n'
    _project(tmp_path, spec, dotenv="TAG=9\n")
    assert load(tmp_path, environ={}).spec.services["app"].image == "busybox:9"


@pytest.mark.parametrize(
    ("text", "unset"),
    [
        ("$NOPE ${NOPE2} ${A}", ["NOPE", "NOPE2"]),
        ("${NOPE:-x} ${NOPE-x} ${NOPE:+x} ${NOPE+x} $$NOPE", []),
        ("${EMPTY} $EMPTY", []),
        ("${NOPE:-$ALSO}", ["ALSO"]),
        ("${A:-$ALSO}", []),
    ],
)
def test_plain_references_to_unset_variables_are_reported(text: str, unset: list[str]) -> None:
    """Only a plain $VAR/${VAR} of an unset variable is reported; defaults, $$ and empty values are not."""
    found: list[str] = []
    interpolate(text, VARS, found)
    assert found == unset


def test_interpolate_tree_reports_each_unset_name_once_per_value_with_its_path() -> None:
    """on_unset hears (path, name) once per string value, keys untouched."""
    heard: list[tuple[tuple[object, ...], str]] = []
    tree = {"services": {"web": {"command": ["$X $X", "${Y}"], "$K": "v"}}}
    out = interpolate_tree(tree, VARS, on_unset=lambda path, name: heard.append((path, name)))
    assert out["services"]["web"] == {"command": [" ", ""], "$K": "v"}
    assert heard == [
        (("services", "web", "command", 0), "X"),
        (("services", "web", "command", 1), "Y"),
    ]


def test_a_projects_dotenv_expands_earlier_variables_as_compose_does(tmp_path: Path) -> None:
    """The project's `.env` is read as Compose reads it: `URL=http://${HOST}:${PORT:-80}`
    uses HOST from above it, and the spec sees the expanded value."""
    from envd.spec.read import read_variables

    (tmp_path / ".env").write_text("HOST=db\nURL=http://${HOST}:${PORT:-80}\nRAW='${HOST}'\n")
    values = read_variables(tmp_path, {})
    assert values["URL"] == "http://db:80" and values["RAW"] == "${HOST}"
    assert read_variables(tmp_path, {"PORT": "5"})["URL"] == "http://db:5"
