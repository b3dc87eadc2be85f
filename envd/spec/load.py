"""Load ``envd.toml``: read → parse → overlay → interpolate (``read``) → validate → cross-check.

A pure pipeline over the file system (no Docker, no clock). Every problem is a
``SpecProblem`` with ``file:line:col`` and a field path; all problems found in
one pass are reported together. This module reads, overlays and interpolates;
``diagnose`` turns validation errors into located problems, ``checks`` makes
the checks across fields.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from envd.spec.checks import cross_check
from envd.spec.diagnose import pydantic_problems, sort_problems
from envd.spec.models import Service, Spec
from envd.spec.paths import bind_source, build_context
from envd.spec.read import RawSpec, read_spec, read_spec_text
from envd.spec.read import deep_merge as deep_merge
from envd.values.errors import SpecError, SpecProblem


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
    # Plain references to variables that are not set (they became "").
    warnings: tuple[SpecProblem, ...] = ()

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
    environ = os.environ if environ is None else environ
    raw = read_spec(project_dir, file, environment, environ)
    return _validate(raw, environment, frozenset(profiles), swarm)


def load_text(
    text: str,
    spec_file: Path,
    base: Path,
    environment: str | None,
    environ: Mapping[str, str],
    profiles: frozenset[str] = frozenset(),
    swarm: bool = False,
) -> LoadedSpec:
    raw = read_spec_text(text, spec_file, base, environment, environ)
    return _validate(raw, environment, profiles, swarm)


def _validate(
    raw: RawSpec, environment: str | None, profiles: frozenset[str], swarm: bool
) -> LoadedSpec:
    display, locator, data, base = raw.display, raw.locator, raw.data, raw.base
    problems: list[SpecProblem] = []
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, data, locator, display, environment))
        raise SpecError(sort_problems(problems)) from None
    if not spec.services:
        raise SpecError(
            SpecProblem(
                'the spec defines no services; add one, e.g. [services.web] with image = "nginx"',
                display,
            )
        )
    if raw.unset and spec.project.strict_variables:
        raise SpecError(raw.unset_errors())
    name = spec.project.name or sanitize_project_name(base.name)
    project = f"{name}-{sanitize_project_name(environment)}" if environment else name
    env_files: dict[str, dict[str, str]] = {}
    problems.extend(
        cross_check(spec, base, locator, display, environment, env_files, swarm, project)
    )
    if problems:
        raise SpecError(sort_problems(problems))
    return LoadedSpec(
        spec=spec,
        file=raw.file,
        project_dir=base,
        project=project,
        environment=environment,
        variables=dict(raw.variables),
        env_files=env_files,
        profiles=frozenset(profiles),
        warnings=tuple(raw.warnings),
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
