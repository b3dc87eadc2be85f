"""Load ``envd.toml``: read → parse → overlay → interpolate → validate → cross-check.

A pure pipeline over the file system (no Docker, no clock). Every problem is a
``SpecProblem`` with ``file:line:col`` and a field path; all problems found in
one pass are reported together. This module reads, overlays and interpolates;
``diagnose`` turns validation errors into located problems, ``checks`` makes
the checks across fields.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from envd.spec.checks import cross_check
from envd.spec.diagnose import (
    did_you_mean,
    dotted,
    locate_with_env,
    pydantic_problems,
    sort_problems,
)
from envd.spec.interpolate import InterpolationError, interpolate_tree, parse_dotenv
from envd.spec.locate import Locator
from envd.spec.models import Service, Spec
from envd.spec.paths import bind_source, build_context, resolve_paths
from envd.values.errors import SpecError, SpecProblem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec plus what was resolved around it."""

    spec: Spec
    file: Path
    project_dir: Path
    project: str  # the engine-side project name (environment included)
    environment: str | None
    # Variables for env passthrough: process env over .env. Not secrets.
    variables: Mapping[str, str] = field(repr=False)
    env_files: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    profiles: frozenset[str] = frozenset()
    # Host paths, resolved here so the pure core never touches the file
    # system: bind mount source as written -> absolute path, and build
    # context as written -> resolved directory.
    bind_sources: Mapping[str, str] = field(default_factory=dict, repr=False)
    build_contexts: Mapping[str, str] = field(default_factory=dict, repr=False)

    def active_services(self) -> dict[str, Service]:
        """Services enabled by the active profiles (no profiles: always on)."""
        return {
            name: svc
            for name, svc in self.spec.services.items()
            if not svc.profiles or self.profiles.intersection(svc.profiles)
        }


def sanitize_project_name(name: str) -> str:
    clean = re.sub(r"[^a-z0-9_-]", "", name.lower())
    clean = clean.lstrip("-_")
    return clean or "default"


def load(
    project_dir: str | Path | None = None,
    file: str | Path | None = None,
    environment: str | None = None,
    environ: Mapping[str, str] | None = None,
    profiles: frozenset[str] | set[str] = frozenset(),
    swarm: bool = False,
) -> LoadedSpec:
    spec_file, base = resolve_paths(project_dir, file)
    display = _display(spec_file)
    try:
        text = spec_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            SpecProblem(f"no spec found (looked for {display}); create one or pass -f FILE")
        ) from None
    except OSError as exc:
        raise SpecError(
            SpecProblem(f"cannot read the spec: {exc.strerror}", file=display)
        ) from None
    environ = os.environ if environ is None else environ
    return load_text(text, spec_file, base, environment, environ, frozenset(profiles), swarm)


def load_text(
    text: str,
    spec_file: Path,
    base: Path,
    environment: str | None,
    environ: Mapping[str, str],
    profiles: frozenset[str] = frozenset(),
    swarm: bool = False,
) -> LoadedSpec:
    display = _display(spec_file)
    locator = Locator(text)
    raw = parse_toml(text, display)
    variables = _variables(base, environ, display)
    data = apply_environment(raw, environment, locator, display)
    problems: list[SpecProblem] = []
    try:
        # Only the selected environment is interpolated: a `${X:?}` in an
        # overlay nobody asked for must not break the base spec.
        overlays = data.pop("environments", {})
        data = interpolate_tree(data, variables)
        data["environments"] = overlays
    except InterpolationError as exc:
        path = getattr(exc, "path", ())
        line, col = locate_with_env(locator, path, environment)
        raise SpecError(SpecProblem(str(exc), display, line, col, dotted(path))) from None
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, data, locator, display, environment))
        raise SpecError(sort_problems(problems)) from None
    name = spec.project.name or sanitize_project_name(base.name)
    project = f"{name}-{sanitize_project_name(environment)}" if environment else name
    env_files: dict[str, dict[str, str]] = {}
    problems.extend(cross_check(spec, base, locator, display, environment, env_files, swarm))
    if problems:
        raise SpecError(sort_problems(problems))
    return LoadedSpec(
        spec=spec,
        file=spec_file,
        project_dir=base,
        project=project,
        environment=environment,
        variables=dict(variables),
        env_files=env_files,
        profiles=frozenset(profiles),
        bind_sources={
            m.source: bind_source(base, m.source)
            for svc in spec.services.values()
            for m in svc.volumes
            if m.type == "bind"
        },
        build_contexts={
            svc.build.context: build_context(base, svc.build.context)
            for svc in spec.services.values()
            if svc.build is not None
        },
    )


def parse_toml(text: str, display: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
        return data
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if "(at end of document)" in msg:
            lines = text.rstrip("\n").split("\n")
            line, col = len(lines), len(lines[-1]) + 1
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg) or "invalid TOML"
        raise SpecError(SpecProblem(f"invalid TOML: {msg}", display, line, col)) from None


def _variables(base: Path, environ: Mapping[str, str], display: str) -> dict[str, str]:
    dotenv = base / ".env"
    values: dict[str, str] = {}
    if dotenv.is_file():
        try:
            values.update(parse_dotenv(dotenv.read_text(encoding="utf-8")))
        except OSError as exc:
            raise SpecError(SpecProblem(f"cannot read .env: {exc.strerror}", display)) from None
    values.update(environ)  # the process environment wins over .env
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


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel
