"""Every bad input to the loader ends as a SpecError (exit 2) with one located
sentence: bytes that are not UTF-8, a spec with no services, nesting beyond the
limits, a file beyond the size cap; unset variables are warned about (or, when
strict, refused) with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.spec import read
from envd.spec.interpolate import MAX_NESTING, InterpolationError, interpolate
from envd.spec.load import load
from envd.spec.read import MAX_DEPTH, parse_toml, preflight, render_warning
from envd.values.errors import SpecError, SpecProblem

GOOD = '[services.web]\nimage = "busybox"\n'


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in the project directory, so messages name ``envd.toml`` as a user sees it."""
    monkeypatch.chdir(tmp_path)


def project(root: Path, spec: str | bytes, **files: str | bytes) -> Path:
    """A project directory with ``envd.toml`` and any other files (``dot_env`` is ``.env``)."""
    for name, content in {"envd.toml": spec, **files}.items():
        path = root / (".env" if name == "dot_env" else name)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def problems(root: Path, **kw: object) -> list[SpecProblem]:
    """The problems loading the project raises (the test fails if it loads)."""
    with pytest.raises(SpecError) as caught:
        load(root, environ={}, **kw)  # type: ignore[arg-type]
    return caught.value.problems


# --------------------------------------------------------------------------- not UTF-8


def test_a_spec_that_is_not_utf8_names_the_byte_offset_line_and_column(tmp_path: Path) -> None:
    """Latin-1 bytes in envd.toml are a located SpecError, not an internal UnicodeDecodeError."""
    root = project(tmp_path, b'[services.web]\nimage = "caf\xe9"\n')
    [problem] = problems(root)
    assert (problem.file, problem.line, problem.column) == ("envd.toml", 2, 13)
    assert "not valid UTF-8: byte 27 (0xe9)" in problem.message
    assert problem.render().startswith("envd.toml:2:13: not valid UTF-8")


def test_a_dotenv_that_is_not_utf8_names_the_dotenv(tmp_path: Path) -> None:
    """A .env in Latin-1 is a SpecError that names .env and where the bad byte is."""
    root = project(tmp_path, GOOD, dot_env=b"A=1\nB=\xff\n")
    [problem] = problems(root)
    assert problem.file.endswith(".env") and (problem.line, problem.column) == (2, 3)
    assert "byte 6" in problem.message


def test_an_env_file_that_is_not_utf8_names_that_file(tmp_path: Path) -> None:
    """A service's env_file in Latin-1 is a SpecError located in that file."""
    root = project(tmp_path, GOOD + 'env_file = ["web.env"]\n', **{"web.env": b"X=\xe9t\xe9\n"})
    [problem] = problems(root)
    assert problem.file.endswith("web.env") and (problem.line, problem.column) == (1, 3)
    assert "not valid UTF-8" in problem.message


def test_a_spec_beyond_the_size_cap_is_refused(tmp_path: Path) -> None:
    """A spec larger than the cap (4 MiB) is refused before it is parsed."""
    root = project(tmp_path, GOOD + "# " + "x" * read.MAX_FILE_BYTES + "\n")
    [problem] = problems(root)
    assert "larger than" in problem.message and problem.file == "envd.toml"


# --------------------------------------------------------------------------- no services


@pytest.mark.parametrize(
    "spec",
    ["", "\n# nothing yet\n", '[project]\nname = "shop"\n', "[volumes.data]\n"],
    ids=["empty", "comment", "project-only", "volumes-only"],
)
def test_a_spec_with_no_services_is_an_error_saying_what_to_add(tmp_path: Path, spec: str) -> None:
    """A spec without services fails (it converged "0 service(s)" with exit 0 before)."""
    [problem] = problems(project(tmp_path, spec))
    assert "defines no services" in problem.message and "[services." in problem.message


def test_an_overlay_can_supply_the_services(tmp_path: Path) -> None:
    """The no-services check runs after the environment overlay is applied."""
    root = project(tmp_path, '[environments.dev.services.web]\nimage = "busybox"\n')
    assert "defines no services" in problems(root)[0].message
    assert set(load(root, environment="dev", environ={}).spec.services) == {"web"}


def test_no_service_selected_when_every_service_waits_for_a_profile(tmp_path: Path) -> None:
    """Profiles that leave nothing to run are refused by the pre-flight, naming the profiles."""
    root = project(tmp_path, GOOD + 'profiles = ["debug"]\n')
    with pytest.raises(SpecError) as caught:
        preflight(root, None, None, frozenset(), environ={})
    assert "no service selected" in str(caught.value) and "debug" in str(caught.value)
    assert preflight(root, None, None, frozenset({"debug"}), environ={}) == []
    assert preflight(root, None, None, frozenset(), environ={}, select=False) == []


# --------------------------------------------------------------------------- nesting


def test_deeply_nested_defaults_are_refused_not_a_recursion_error(tmp_path: Path) -> None:
    """3000 nested ${X:-...} are an interpolation error located at the field."""
    deep = "${X:-" * 3000 + "}" * 3000
    [problem] = problems(project(tmp_path, f'[services.web]\nimage = "{deep}"\n'))
    assert problem.path == "services.web.image" and problem.line == 2
    assert "nested more than" in problem.message


def test_defaults_nested_up_to_the_limit_still_expand() -> None:
    """Nesting up to MAX_NESTING levels works as in Compose; one more is an error."""
    ok = "${X:-" * MAX_NESTING + "end" + "}" * MAX_NESTING
    assert interpolate(ok, {}) == "end"
    with pytest.raises(InterpolationError):
        interpolate("${X:-" + ok + "}", {})


@pytest.mark.parametrize(
    "spec",
    [
        GOOD + "labels = { a = " + "[" * 3000 + "]" * 3000 + " }\n",
        GOOD + "x = " + "{ a = " * 3000 + "1" + " }" * 3000 + "\n",
        GOOD + "[" + ".".join(["t"] * 3000) + "]\n",
        GOOD + "[a]\n" + ".".join(["k"] * 40) + " = 1\n",
    ],
    ids=["arrays", "inline-tables", "table-header", "dotted-key"],
)
def test_deep_toml_nesting_is_a_located_error(tmp_path: Path, spec: str) -> None:
    """Tables and arrays nested beyond MAX_DEPTH fail with a line (not RecursionError)."""
    [problem] = problems(project(tmp_path, spec))
    assert "nested more than" in problem.message and problem.line >= 3


def test_nesting_up_to_the_limit_parses() -> None:
    """MAX_DEPTH levels of arrays (inside the top-level key) are fine TOML."""
    data = parse_toml("a = " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n", "x.toml")
    assert "a" in data


def test_brackets_inside_strings_and_comments_do_not_count() -> None:
    """Only real brackets count towards the depth: strings and comments may hold any."""
    deep = "[" * 100
    text = f"a = \"{deep}\"\nb = '{deep}'\nc = '''{deep}'''\n# {deep}\n"
    assert parse_toml(text, "x.toml")["a"] == deep


# --------------------------------------------------------------------------- unset variables


def test_an_unset_variable_is_a_warning_at_the_reference(tmp_path: Path) -> None:
    """$D with D unset becomes "" with a warning naming D, the field and the column of $D."""
    root = project(tmp_path, GOOD + 'command = ["sh", "-c", "echo $$X $D"]\n')
    loaded = load(root, environ={})
    assert loaded.spec.services["web"].command == ["sh", "-c", "echo $X "]
    [warning] = loaded.warnings
    assert (warning.line, warning.column, warning.path) == (3, 34, "services.web.command[2]")
    assert '"D" is not set' in warning.message and "use $$ for a literal $" in warning.message
    assert render_warning(warning).startswith("envd.toml:3:34: warning: services.web.command[2]: ")


def test_defaults_set_variables_and_dotenv_do_not_warn(tmp_path: Path) -> None:
    """Only a plain reference to a variable set nowhere warns: defaults and .env do not."""
    spec = GOOD + 'command = "${A:-x} ${B-y} ${C:+z} $E ${F}"\n'
    root = project(tmp_path, spec, dot_env="E=1\n")
    assert load(root, environ={"F": ""}).warnings == ()


def test_unset_inside_a_default_warns(tmp_path: Path) -> None:
    """${A:-$B} with both unset warns about B (the value used), not A."""
    root = project(tmp_path, GOOD + 'command = "${A:-$B}"\n')
    assert ['"B"' in w.message for w in load(root, environ={}).warnings] == [True]


def test_an_unset_variable_in_an_overlay_is_located_in_the_overlay(tmp_path: Path) -> None:
    """The warning points at the overlay line that wrote the reference."""
    spec = GOOD + '[environments.ci.services.web]\ncommand = "echo $CI_ONLY"\n'
    root = project(tmp_path, spec)
    assert load(root, environ={}).warnings == ()
    [warning] = load(root, environment="ci", environ={}).warnings
    assert warning.line == 4 and "CI_ONLY" in warning.message


def test_strict_variables_in_the_spec_make_unset_an_error(tmp_path: Path) -> None:
    """[project] strict_variables = true turns each unset-variable warning into an error."""
    spec = "[project]\nstrict_variables = true\n" + GOOD + 'command = "echo $D"\n'
    [problem] = problems(project(tmp_path, spec))
    assert (problem.line, problem.path) == (5, "services.web.command")
    assert '"D" is not set' in problem.message and "strict" in problem.message
    assert load(tmp_path, environ={"D": "1"}).warnings == ()


def test_strict_preflight_refuses_what_a_lenient_one_warns_about(tmp_path: Path) -> None:
    """preflight(strict=True) raises on an unset variable; without it, returns the warning."""
    root = project(tmp_path, GOOD + 'command = "echo $D"\n')
    assert len(preflight(root, None, None, frozenset(), environ={})) == 1
    with pytest.raises(SpecError, match='"D" is not set'):
        preflight(root, None, None, frozenset(), environ={}, strict=True)


# --------------------------------------------------------------------------- found by the fuzz test


def test_depends_on_list_of_non_strings_is_a_spec_error(tmp_path: Path) -> None:
    """depends_on = [[]] is a located SpecError (it was an internal TypeError: unhashable list)."""
    [problem] = problems(project(tmp_path, GOOD + "depends_on = [[]]\n"))
    assert problem.path == "services.web.depends_on" and "service names" in problem.message


def test_a_key_with_a_newline_keeps_the_problem_on_one_line(tmp_path: Path) -> None:
    """A service named "\\n" is reported with its key quoted, so the message stays one line."""
    root = project(tmp_path, GOOD + '[services."a\\nb"]\nimage = "x"\n')
    [problem] = problems(root)
    assert "\n" not in problem.render() and problem.path == 'services."a\\u000ab"'


@pytest.mark.parametrize(
    "value",
    ["${\\n}", "${A:?first\\nsecond}", "${A\\t!}"],
    ids=["bad-name", "required-message", "bad-operator"],
)
def test_interpolation_errors_with_control_characters_stay_on_one_line(
    tmp_path: Path, value: str
) -> None:
    """A newline or tab inside ${...} is escaped in the message (it split the problem over lines)."""
    [problem] = problems(project(tmp_path, GOOD + f'command = "{value}"\n'))
    assert "\n" not in problem.render() and "\t" not in problem.render()
    assert problem.path == "services.web.command"


@pytest.mark.parametrize("number", ["inf", "-inf", "nan"])
def test_a_duration_must_be_finite(tmp_path: Path, number: str) -> None:
    """interval = inf is a SpecError (it loaded, and formatting it for a plan raised OverflowError)."""
    spec = GOOD + f'healthcheck = {{ test = ["CMD", "true"], interval = {number} }}\n'
    [problem] = problems(project(tmp_path, spec))
    assert problem.path == "services.web.healthcheck.interval"


@pytest.mark.parametrize(
    "line",
    [
        'volumes = ["./' + "x" * 300 + ':/data"]',
        'env_file = ["' + "x" * 300 + '"]',
        'env_file = ["a\\u0000b"]',
        'build = "' + "x" * 300 + '"',
        'watch = [{ path = "' + "x" * 300 + '", action = "restart" }]',
    ],
    ids=["bind-source", "env-file", "env-file-nul", "build-context", "watch-path"],
)
def test_a_host_path_the_system_refuses_is_a_spec_error(tmp_path: Path, line: str) -> None:
    """A path with a 300-character name or a NUL byte is reported (Path.exists raised OSError)."""
    spec = GOOD.replace('image = "busybox"\n', 'image = "busybox"\n' + line + "\n")
    [problem] = problems(project(tmp_path, spec))
    assert problem.path.startswith("services.web.") and "\n" not in problem.render()


def test_a_secret_file_name_the_system_refuses_is_a_spec_error(tmp_path: Path) -> None:
    """A secret file with a name too long to look up is reported as missing, not raised."""
    spec = GOOD + f'secrets = ["pw"]\n[secrets.pw]\nfile = "{"x" * 300}"\n'
    [problem] = problems(project(tmp_path, spec))
    assert problem.path == "secrets.pw.file"


def test_preflight_skips_the_parse_only_when_nothing_can_be_found(tmp_path: Path) -> None:
    """Without $ and profiles the pre-flight is a byte scan; bad bytes still fail it."""
    root = project(tmp_path, GOOD)
    assert preflight(root, None, None, frozenset(), environ={}) == []
    project(tmp_path, GOOD.encode() + b"# caf\xe9\n")
    with pytest.raises(SpecError, match="not valid UTF-8"):
        preflight(root, None, None, frozenset(), environ={})


# --------------------------------------------------------------------------- sizes


def test_thousands_of_problems_are_capped_with_a_count(tmp_path: Path) -> None:
    """8000 wrong list entries give the first problems and a count (locating all took over a minute)."""
    spec = GOOD + "profiles = [" + ", ".join(["1"] * 8000) + "]\n"
    found = problems(project(tmp_path, spec))
    assert len(found) == 51
    assert found[-1].message.startswith("7950 more problem(s) not shown")


def test_a_table_or_array_beyond_the_item_cap_is_refused(tmp_path: Path) -> None:
    """An array of more than MAX_ITEMS entries is refused before validation, located at its key."""
    spec = GOOD + "profiles = [" + ", ".join(['"p"'] * (read.MAX_ITEMS + 1)) + "]\n"
    [problem] = problems(project(tmp_path, spec))
    assert (problem.line, problem.path) == (3, "services.web.profiles")
    assert "more than" in problem.message


def test_port_clashes_are_still_found_across_services_and_addresses(tmp_path: Path) -> None:
    """The indexed clash check reports the first earlier owner, by address and wildcard."""
    spec = (
        '[services.a]\nimage = "i"\nports = ["127.0.0.1:80:80", "127.0.0.2:81:81"]\n'
        '[services.b]\nimage = "i"\nports = ["127.0.0.3:80:80", "81:81"]\n'
        '[services.c]\nimage = "i"\nports = ["127.0.0.1:80:80"]\n'
    )
    messages = [p.message for p in problems(project(tmp_path, spec))]
    assert messages == [
        "services 'a' and 'b' both publish host port 81",
        "services 'a' and 'c' both publish host port 80",
    ]
