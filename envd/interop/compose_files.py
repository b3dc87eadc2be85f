"""Which Compose files ``envd import`` reads, and their merged model, as Compose v2 builds it.

``-f`` files in order, else ``COMPOSE_FILE`` (split on ``COMPOSE_PATH_SEPARATOR``,
from the environment or ``.env``), else ``compose.yaml`` / ``compose.yml`` /
``docker-compose.yml`` / ``docker-compose.yaml`` in the working directory or
the nearest parent holding one, plus the first ``compose.override.yml`` /
``compose.override.yaml`` / ``docker-compose.override.yml`` /
``docker-compose.override.yaml`` beside it. The directory of the first file
is the project directory: ``.env`` is read there (``--env-file`` replaces it,
the process environment wins over both) and relative paths of every ``-f``
file are relative to it. Each file is read within ``compose_yaml``'s limits,
interpolated on its own (``compose_interp``), its ``include`` and
``extends`` resolved (``compose_refs``), then merged onto the ones before it
(``compose_merge``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envd.interop.compose_import_common import ComposeValueError, printable
from envd.interop.compose_merge import merge, strip, unique
from envd.interop.compose_yaml import MAX_BYTES, decode, load_yaml
from envd.spec.interpolate import parse_dotenv
from envd.values.errors import SpecError, SpecProblem, UsageError

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)
# Files one import may read (includes and extends count): a chain of
# includes that fans out must not read the same files without end.
MAX_FILES = 100


def display_path(path: Path, cwd: Path | None = None) -> str:
    """``path`` relative to the directory envd import runs in, unless that climbs out of it."""
    base = cwd or Path.cwd()
    rel = os.path.relpath(path, base)
    return str(path) if rel.startswith("..") else rel


@dataclass
class Reading:
    """What one import has read so far: the budget, the notes, the include chain."""

    project_dir: Path
    notes: list[str] = field(default_factory=list)
    cwd: Path | None = None
    files: int = 0
    outside: set[Path] = field(default_factory=set)
    # Files named by `extends.file`, read and interpolated once.
    extended: dict[Path, dict[str, Any]] = field(default_factory=dict)
    # False for text handed over without a file (`import_compose`): no other file is read.
    disk: bool = True

    def note(self, message: str) -> None:
        self.notes.append(printable(message))

    def show(self, path: Path) -> str:
        return display_path(path, self.cwd)


@dataclass
class ComposeModel:
    """The merged Compose model of one or more files, and what the import should know of it."""

    doc: dict[str, Any]
    project_dir: Path
    files: list[Path]
    variables: dict[str, str]
    notes: list[str]
    keep_references: bool


def read_file(path: Path, name: str) -> bytes:
    """The bytes of a regular file, at most one more than the cap (a FIFO or a device is refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"cannot read {name}: not a regular file")
        return fh.read(MAX_BYTES + 1)


def read_env_file(path: Path, cwd: Path | None) -> dict[str, str]:
    """A ``.env``-style file's variables (UTF-8, within the YAML size cap),
    expanded as Compose reads them (``B=${A}/x``)."""
    name = display_path(path, cwd)
    return parse_dotenv(decode(read_file(path, name), name), expand=True)


def parse(path: Path, reading: Reading) -> dict[str, Any]:
    """One Compose file as a mapping (merge tags still in), within the limits, or a located error."""
    if not reading.disk:
        raise ComposeValueError(
            reading.show(path), "refers to another file; import from disk with envd import -f FILE"
        )
    reading.files += 1
    if reading.files > MAX_FILES:
        raise SpecError(
            SpecProblem(
                f"more than {MAX_FILES} Compose files read through include and extends; refused",
                reading.show(path),
            )
        )
    resolved = path.resolve()
    if not resolved.is_relative_to(reading.project_dir.resolve()) and resolved not in (
        reading.outside
    ):
        reading.outside.add(resolved)
        reading.note(
            f"{reading.show(path)}: outside the project directory"
            f" {reading.show(reading.project_dir)}; read, as Compose does"
        )
    name = reading.show(path)
    doc = load_yaml(decode(read_file(path, name), name), name)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SpecError(SpecProblem("not a Compose file: the top level must be a mapping", name))
    return doc


def located(path: Path, exc: ComposeValueError, reading: Reading) -> SpecError:
    return SpecError(SpecProblem(str(exc), reading.show(path)))


def find_files(
    files: Sequence[str],
    cwd: Path,
    environ: Mapping[str, str],
    notes: list[str],
    env_files: Sequence[str] = (),
) -> list[Path]:
    """The Compose files to read, as Compose picks them (module docstring)."""
    if files:
        chosen = [cwd / f for f in files]
        if len(chosen) == 1:
            beside = [chosen[0].parent / n for n in OVERRIDE_FILES]
            present = [p for p in beside if p.is_file() and p != chosen[0]]
            if chosen[0].name in DEFAULT_FILES and present:
                notes.append(
                    printable(
                        f"{display_path(present[0], cwd)} was not read: Compose reads an override"
                        " file only when no -f is given; pass -f for each file to merge it"
                    )
                )
        return chosen
    # COMPOSE_FILE comes from the environment, else --env-file (which replaces .env), else .env.
    variables = project_variables(cwd, env_files, cwd, environ)
    if variables.get("COMPOSE_FILE"):
        sep = variables.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        names = [n for n in variables["COMPOSE_FILE"].split(sep) if n]
        if names:
            notes.append(printable(f"COMPOSE_FILE: reading {', '.join(names)}"))
            return [cwd / n for n in names]
    here = cwd.absolute()
    while True:
        found = [here / n for n in DEFAULT_FILES if (here / n).is_file()]
        if found:
            if len(found) > 1:
                notes.append(
                    printable(
                        f"several Compose files in {display_path(here, cwd)}"
                        f" ({', '.join(p.name for p in found)}); using {found[0].name}, as Compose does"
                    )
                )
            overrides = [here / n for n in OVERRIDE_FILES if (here / n).is_file()]
            return [found[0], *overrides[:1]]
        if here.parent == here:
            break
        here = here.parent
    raise UsageError(
        f"no Compose file found in {display_path(cwd, cwd)} or its parents"
        f" (looked for {', '.join(DEFAULT_FILES)}); pass -f FILE"
    )


def project_variables(
    project_dir: Path, env_files: Sequence[str], cwd: Path, environ: Mapping[str, str]
) -> dict[str, str]:
    """The variables of the project: ``--env-file`` files (else ``.env``), the environment over them."""
    variables: dict[str, str] = {}
    if env_files:
        for name in env_files:
            path = cwd / name
            if not path.is_file():
                raise UsageError(f"--env-file {name}: no such file")
            variables.update(read_env_file(path, cwd))
    elif (project_dir / ".env").is_file():
        variables.update(read_env_file(project_dir / ".env", cwd))
    variables.update(environ)
    return variables


def load_compose(
    files: Sequence[str],
    env_files: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ComposeModel:
    """Find, read, interpolate, resolve and merge the Compose files of one project."""
    from envd.interop.compose_refs import load_model

    environ = dict(os.environ if environ is None else environ)
    cwd = (cwd or Path.cwd()).absolute()
    notes: list[str] = []
    paths = find_files(files, cwd, environ, notes, env_files)
    project_dir = paths[0].parent.absolute()
    variables = project_variables(project_dir, env_files, cwd, environ)
    # References stay in envd.toml only where envd resolves them the same way:
    # from the project's .env and the environment, not from --env-file files.
    keep = not env_files
    reading = Reading(project_dir, notes, cwd)
    doc = load_model(paths, project_dir, variables, keep, reading, ())
    if env_files:
        reading.note(
            "--env-file: variables were resolved at import and envd.toml holds their values"
            " (envd reads .env and the environment only)"
        )
    return ComposeModel(doc, project_dir, paths, variables, reading.notes, keep)


def merge_into(
    model: dict[str, Any], doc: dict[str, Any], path: Path, reading: Reading
) -> dict[str, Any]:
    """``doc`` (one file, resolved) merged onto ``model`` by Compose's rules, one entry per key."""
    try:
        merged = merge(model, doc) if model else strip(doc)
        return unique(merged)  # type: ignore[no-any-return]
    except ComposeValueError as exc:
        raise located(path, exc, reading) from None
