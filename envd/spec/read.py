"""The first half of loading, without pydantic: read → decode → parse → bound
the nesting → overlay → interpolate.

``load`` goes on to validate what this returns. ``preflight`` is this half on
its own, for commands that may be served from the desired-state cache (which
skips ``load``) yet must still show the warnings about unset variables, honour
strictness and refuse a selection of no services.

Every bad input ends as a ``SpecError`` (exit 2) with one located sentence:
a file too big, bytes that are not UTF-8, TOML nested beyond ``MAX_DEPTH``,
interpolations nested beyond ``interpolate.MAX_NESTING``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envd.spec.paths import display_path, resolve_paths
from envd.values.errors import SpecError, SpecProblem

if TYPE_CHECKING:
    from envd.spec.locate import Locator

# The TOML parser, the interpolation, the locator and the hints are imported
# where they are used: a cached `envd up` reads the spec only to patch an
# edited `env` (TOML alone) or not at all, and pays for no more (start-up time).

# A spec is written by hand: 4 MiB is far beyond any real one, and a bound
# keeps a stray binary or a generated monster from exhausting memory.
MAX_FILE_BYTES = 4 * 1024 * 1024
# Tables and arrays inside each other; a real spec needs about six.
MAX_DEPTH = 32
# Entries of one table or array: far beyond a real spec, and it bounds the
# work (and memory) of validating and checking a generated monster.
MAX_ITEMS = 10_000


@dataclass
class RawSpec:
    """A spec read, overlaid and interpolated, not yet validated."""

    file: Path
    base: Path
    display: str
    locator: Locator
    # Overlaid and interpolated; "environments" holds the overlays as written.
    data: dict[str, Any]
    variables: dict[str, str] = field(repr=False)
    # (name, where) of each plain reference to a variable that is not set.
    unset: list[tuple[str, SpecProblem]] = field(default_factory=list)

    @property
    def warnings(self) -> list[SpecProblem]:
        """What a lenient load says about the unset variables (they became "")."""
        return [replace(p, message=unset_message(name)) for name, p in self.unset]

    def unset_errors(self) -> list[SpecProblem]:
        """The same, worded as the errors a strict load makes of them."""
        return [replace(p, message=unset_message(name, strict=True)) for name, p in self.unset]

    @property
    def strict(self) -> bool:
        """``[project] strict_variables = true``: an unset variable is an error."""
        project = self.data.get("project")
        return isinstance(project, dict) and project.get("strict_variables") is True


def read_text(path: Path, display: str) -> str:
    """The file's text; OSError (missing, unreadable) is the caller's to word."""
    with path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(
            SpecProblem(
                f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; is it the right file?",
                display,
            )
        )
    return decode(data, display)


def decode(data: bytes, display: str) -> str:
    """UTF-8 text, or a SpecError naming the first bad byte's offset, line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start
        line_start = data.rfind(b"\n", 0, offset) + 1
        line = data.count(b"\n", 0, offset) + 1
        column = len(data[line_start:offset].decode("utf-8", "replace")) + 1
        raise SpecError(
            SpecProblem(
                f"not valid UTF-8: byte {offset} (0x{data[offset]:02x}); save the file as UTF-8",
                display,
                line,
                column,
            )
        ) from None


def parse_toml(text: str, display: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    try:
        data: dict[str, Any] = tomllib.loads(text)
    except RecursionError:
        # tomllib recurses once per level of brackets; a scan finds where.
        from envd.spec.locate import Locator

        deep = _too_deep_at(text)
        line, col = Locator(text).position_of(deep) if deep >= 0 else (0, 0)
        raise SpecError(SpecProblem(_DEPTH_MESSAGE, display, line, col)) from None
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if "(at end of document)" in msg:
            lines = text.rstrip("\n").split("\n")
            line, col = len(lines), len(lines[-1]) + 1
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg) or "invalid TOML"
        raise SpecError(SpecProblem(f"invalid TOML: {msg}", display, line, col)) from None
    found = _too_big(data)
    if found is not None:
        from envd.spec.locate import Locator, dotted

        path, message = found
        line, col = Locator(text).locate(path)
        raise SpecError(SpecProblem(message, display, line, col, dotted(path)))
    return data


_DEPTH_MESSAGE = f"tables and arrays are nested more than {MAX_DEPTH} levels deep"
_ITEMS_MESSAGE = f"more than {MAX_ITEMS} entries in one table or array"


def _too_deep_at(text: str) -> int:
    """The offset of the first bracket beyond ``MAX_DEPTH``, or -1.

    Brackets are counted outside strings and comments. Only run when tomllib
    overflowed: a scan in Python costs milliseconds on every load.
    """
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        m = _SPECIAL.search(text, i)
        if m is None:
            return -1
        i = m.start()
        ch = text[i]
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return i
        elif ch in "]}":
            depth = max(depth - 1, 0)
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        else:
            i = _string_end(text, i)
            continue
        i += 1
    return -1


_SPECIAL = re.compile(r"[\[\]{}#\"']")


def _string_end(text: str, i: int) -> int:
    quote = text[i]
    if text.startswith(quote * 3, i):
        end = text.find(quote * 3, i + 3)
        return len(text) if end < 0 else end + 3
    j = i + 1
    while j < len(text) and text[j] not in "\n" + quote:
        j += 2 if text[j] == "\\" and quote == '"' else 1
    return j + 1


def _too_big(
    data: Any, path: tuple[str | int, ...] = ()
) -> tuple[tuple[str | int, ...], str] | None:
    """(path, message) of the first value nested beyond ``MAX_DEPTH`` (dotted
    keys nest too) or with more than ``MAX_ITEMS`` entries."""
    if len(path) > MAX_DEPTH:
        return path, _DEPTH_MESSAGE
    if not isinstance(data, (dict, list)):
        return None
    if len(data) > MAX_ITEMS:
        return path, _ITEMS_MESSAGE
    items: Any = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        found = _too_big(value, (*path, key))
        if found is not None:
            return found
    return None


def read_variables(base: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """``.env`` under the process environment (which wins)."""
    dotenv = base / ".env"
    values: dict[str, str] = {}
    if dotenv.is_file():
        from envd.spec.interpolate import parse_dotenv

        display = display_path(dotenv)
        try:
            values.update(parse_dotenv(read_text(dotenv, display), environ, expand=True))
        except OSError as exc:
            raise SpecError(SpecProblem(f"cannot read .env: {exc.strerror}", display)) from None
    values.update(environ)
    return values


def deep_merge(base: Any, overlay: Any) -> Any:
    """Tables merge key by key; lists and scalars replace."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return overlay


def apply_environment(
    raw: dict[str, Any], environment: str | None, locator: Locator, display: str
) -> dict[str, Any]:
    overlays = raw.get("environments", {})
    if not isinstance(overlays, dict):
        line, col = locator.locate(["environments"])
        raise SpecError(
            SpecProblem("must be a table of overlays", display, line, col, "environments")
        )
    data = {k: v for k, v in raw.items() if k != "environments"}
    if environment is None:
        return {**data, "environments": overlays}
    if environment not in overlays:
        from envd.spec.hints import did_you_mean

        hint = did_you_mean(environment, overlays)
        known = ", ".join(sorted(overlays)) or "none are defined"
        raise SpecError(
            SpecProblem(f"unknown environment {environment!r}{hint} (known: {known})", display)
        )
    overlay = overlays[environment]
    if not isinstance(overlay, dict):
        line, col = locator.locate(["environments", environment])
        raise SpecError(
            SpecProblem(
                "an environment must be a table", display, line, col, f"environments.{environment}"
            )
        )
    if "environments" in overlay:
        line, col = locator.locate(["environments", environment, "environments"])
        raise SpecError(SpecProblem("environments cannot be nested", display, line, col))
    merged = deep_merge(data, overlay)
    return {**merged, "environments": overlays}


def read_spec(
    project_dir: str | Path | None,
    file: str | Path | None,
    environment: str | None,
    environ: Mapping[str, str],
) -> RawSpec:
    spec_file, base = resolve_paths(project_dir, file)
    display = display_path(spec_file)
    try:
        text = read_text(spec_file, display)
    except FileNotFoundError:
        raise SpecError(
            SpecProblem(f"no spec found (looked for {display}); create one or pass -f FILE")
        ) from None
    except OSError as exc:
        raise SpecError(
            SpecProblem(f"cannot read the spec: {exc.strerror}", file=display)
        ) from None
    return read_spec_text(text, spec_file, base, environment, environ)


def read_spec_text(
    text: str,
    spec_file: Path,
    base: Path,
    environment: str | None,
    environ: Mapping[str, str],
) -> RawSpec:
    from envd.spec.interpolate import InterpolationError, interpolate_tree
    from envd.spec.locate import Locator, dotted, locate_with_env

    display = display_path(spec_file)
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(
            SpecProblem(f"the spec is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", display)
        )
    locator = Locator(text)
    raw = parse_toml(text, display)
    variables = read_variables(base, environ)
    data = apply_environment(raw, environment, locator, display)
    unset: list[tuple[str, SpecProblem]] = []

    def on_unset(path: tuple[Any, ...], name: str) -> None:
        line, col = _reference_at(locator, locate_with_env(locator, path, environment), name)
        unset.append((name, SpecProblem("", display, line, col, dotted(path))))

    try:
        # Only the selected environment is interpolated: a `${X:?}` in an
        # overlay nobody asked for must not break the base spec.
        overlays = data.pop("environments", {})
        data = interpolate_tree(data, variables, on_unset=on_unset)
        data["environments"] = overlays
    except InterpolationError as exc:
        path = getattr(exc, "path", ())
        line, col = locate_with_env(locator, path, environment)
        raise SpecError(SpecProblem(str(exc), display, line, col, dotted(path))) from None
    return RawSpec(spec_file, base, display, locator, data, variables, unset)


def _reference_at(locator: Locator, at: tuple[int, int], name: str) -> tuple[int, int]:
    """Narrow a value's position to where ``$NAME`` or ``${NAME`` is written on its line."""
    line, col = at
    if not line:
        return at
    text = locator.text.split("\n", line)[line - 1] if line else ""
    ref = re.compile(r"(?<!\$)(?:\$\$)*\$\{?" + re.escape(name) + r"(?![A-Za-z0-9_])")
    m = ref.search(text, col - 1)
    if m is None:
        return at
    return line, m.end() - len(name) - (2 if m.group(0).endswith("{" + name) else 1) + 1


def unset_message(name: str, strict: bool = False) -> str:
    if strict:
        return (
            f'the variable "{name}" is not set (strict variables); set it,'
            f" use ${{{name}:-}} for an empty value, or $$ for a literal $"
        )
    return (
        f'the variable "{name}" is not set, so it becomes an empty string'
        f" (use $$ for a literal $, or ${{{name}:-}} for an intended empty value)"
    )


def render_warning(problem: SpecProblem) -> str:
    """``file:line:col: warning: path: message``, as compilers print warnings."""
    where, _, rest = problem.render().partition(": ")
    return f"{where}: warning: {rest}"


def preflight(
    project_dir: str | Path | None,
    file: str | Path | None,
    environment: str | None,
    profiles: frozenset[str],
    environ: Mapping[str, str] | None = None,
    strict: bool = False,
    select: bool = True,
) -> list[SpecProblem]:
    """The warnings about unset variables; raises SpecError when they are
    errors (``strict`` or the spec's ``strict_variables``), and, with
    ``select``, when the active profiles leave no service to run."""
    spec_file, _ = resolve_paths(project_dir, file)
    if _plain_text(spec_file, select):
        return []
    raw = read_spec(project_dir, file, environment, os.environ if environ is None else environ)
    if raw.unset and (strict or raw.strict):
        raise SpecError(raw.unset_errors())
    services = raw.data.get("services")
    if select and isinstance(services, dict) and services:
        problem = no_service_selected(services, profiles, raw.display)
        if problem is not None:
            raise SpecError(problem)
    return raw.warnings + _api_warnings(raw, environment)


def _api_warnings(raw: RawSpec, environment: str | None) -> list[SpecProblem]:
    """Fields an older engine ignores (issue 12: healthcheck.start_interval)."""
    from envd.spec.host_checks import START_INTERVAL_WARNING, start_interval_paths
    from envd.spec.locate import dotted, locate_with_env

    out: list[SpecProblem] = []
    for path in start_interval_paths(raw.data):
        line, col = locate_with_env(raw.locator, path, environment)
        out.append(SpecProblem(START_INTERVAL_WARNING, raw.display, line, col, dotted(path)))
    return out


def _plain_text(spec_file: Path, select: bool) -> bool:
    """Whether the spec cannot have warnings nor an empty selection: no ``$``
    and (when selecting) no ``profiles``. Spares a cached ``up`` the parse."""
    try:
        with spec_file.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        return False  # read_spec words the problem
    if b"$" in data or (select and b"profiles" in data) or b"start_interval" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(data) <= MAX_FILE_BYTES


def no_service_selected(
    services: Mapping[str, Any], profiles: frozenset[str], display: str
) -> SpecProblem | None:
    """A problem when every service sits behind a profile that is not active."""
    named: set[str] = set()
    for svc in services.values():
        wanted = svc.get("profiles") if isinstance(svc, dict) else None
        if not isinstance(wanted, list) or not wanted:
            return None
        if profiles.intersection(str(p) for p in wanted):
            return None
        named.update(str(p) for p in wanted)
    active = ", ".join(sorted(profiles)) or "none"
    return SpecProblem(
        f"no service selected: every service has a profile and none is active"
        f" (active: {active}); pass --profile with one of {', '.join(sorted(named))}",
        display,
    )
