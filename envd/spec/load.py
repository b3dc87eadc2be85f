"""Load ``envd.toml``: read → parse → overlay → interpolate → validate → cross-check.

A pure pipeline over the file system (no Docker, no clock). Every problem is a
``SpecProblem`` with ``file:line:col`` and a field path; all problems found in
one pass are reported together.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from envd.spec.compose_words import COMPOSE_SYNONYMS
from envd.spec.interpolate import InterpolationError, interpolate_tree, parse_dotenv
from envd.spec.locate import Locator
from envd.spec.models import Service, Spec
from envd.spec.paths import resolve_paths
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
        line, col = _locate_with_env(locator, path, environment)
        raise SpecError(SpecProblem(str(exc), display, line, col, _dotted(path))) from None
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, data, locator, display, environment))
        raise SpecError(_sorted(problems)) from None
    name = spec.project.name or sanitize_project_name(base.name)
    project = f"{name}-{sanitize_project_name(environment)}" if environment else name
    env_files: dict[str, dict[str, str]] = {}
    problems.extend(cross_check(spec, base, locator, display, environment, env_files, swarm))
    if problems:
        raise SpecError(_sorted(problems))
    return LoadedSpec(
        spec=spec,
        file=spec_file,
        project_dir=base,
        project=project,
        environment=environment,
        variables=dict(variables),
        env_files=env_files,
        profiles=frozenset(profiles),
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


def did_you_mean(word: str, candidates: Any) -> str:
    if word in COMPOSE_SYNONYMS:
        return (
            f" (did you mean {COMPOSE_SYNONYMS[word]!r}?)"
            if not COMPOSE_SYNONYMS[word].startswith("(")
            else f" {COMPOSE_SYNONYMS[word]}"
        )
    close = difflib.get_close_matches(word, [str(c) for c in candidates], n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    # A misspelled Compose word ("enviroment") still deserves the envd name.
    compose = difflib.get_close_matches(word, list(COMPOSE_SYNONYMS), n=1, cutoff=0.75)
    if compose and not COMPOSE_SYNONYMS[compose[0]].startswith("("):
        return f" (did you mean {COMPOSE_SYNONYMS[compose[0]]!r}?)"
    return ""


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


def _pydantic_problems(
    exc: ValidationError,
    data: dict[str, Any],
    locator: Locator,
    display: str,
    environment: str | None,
) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors(include_url=False):
        path = _data_path(tuple(err["loc"]), data)
        msg = _message(err, path)
        key = (path, msg)
        if key in seen:
            continue
        seen.add(key)
        line, col = _locate_with_env(locator, path, environment)
        problems.append(SpecProblem(msg, display, line, col, _dotted(path)))
    return problems


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


def _dotted(path: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        else:
            out += ("." if out else "") + str(elem)
    return out


def _locate_with_env(
    locator: Locator, path: tuple[Any, ...], environment: str | None
) -> tuple[int, int]:
    """Where a field's value was written: the active overlay or the base spec.

    The overlay wins when it spells out the field at least as deeply as the
    base does (it replaced or added the value); otherwise the base placed it.
    """
    base, base_depth = locator.find(list(path))
    if environment:
        over, over_depth = locator.find(["environments", environment, *path])
        over_depth -= 2
        if over_depth > 0 and over_depth >= base_depth:
            return over
    return base


def _sorted(problems: list[SpecProblem]) -> list[SpecProblem]:
    return sorted(problems, key=lambda p: (p.line or 10**9, p.column, p.path))


def _display(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


# --------------------------------------------------------------------------- cross checks


def cross_check(
    spec: Spec,
    base: Path,
    locator: Locator,
    display: str,
    environment: str | None,
    env_files: dict[str, dict[str, str]],
    swarm: bool = False,
) -> list[SpecProblem]:
    """Checks across fields. ``swarm``: the routing mesh lets replicas share a port."""
    problems: list[SpecProblem] = []

    def add(msg: str, *path: str | int) -> None:
        line, col = _locate_with_env(locator, tuple(path), environment)
        problems.append(SpecProblem(msg, display, line, col, _dotted(path)))

    services = spec.services
    for name, svc in services.items():
        for dep in svc.depends_on:
            if dep not in services:
                add(
                    f"service {name!r} depends on unknown service {dep!r}{did_you_mean(dep, services)}",
                    "services",
                    name,
                    "depends_on",
                    dep,
                )
            elif dep == name:
                add(f"service {name!r} depends on itself", "services", name, "depends_on")
        for i, mount in enumerate(svc.volumes):
            if mount.type == "volume" and mount.source and mount.source not in spec.volumes:
                add(
                    f"service {name!r} mounts undefined volume {mount.source!r}"
                    f"{did_you_mean(mount.source, spec.volumes)}; declare it under [volumes.{mount.source}]",
                    "services",
                    name,
                    "volumes",
                    i,
                )
            if mount.type == "bind":
                src = Path(os.path.expanduser(mount.source))
                if not src.is_absolute():
                    src = base / src
                if not src.exists():
                    add(
                        f"service {name!r} binds {mount.source!r}, which does not exist",
                        "services",
                        name,
                        "volumes",
                        i,
                    )
        targets: dict[str, str] = {}
        for i, sec in enumerate(svc.secrets):
            if sec.path in targets:
                add(
                    f"service {name!r}: secrets {targets[sec.path]!r} and {sec.source!r} both"
                    f" target {sec.path}",
                    "services",
                    name,
                    "secrets",
                    i,
                )
            targets.setdefault(sec.path, sec.source)
            if sec.source not in spec.secrets:
                add(
                    f"service {name!r} uses undefined secret {sec.source!r}{did_you_mean(sec.source, spec.secrets)}",
                    "services",
                    name,
                    "secrets",
                    i,
                )
        for net in svc.networks:
            if net != "default" and net not in spec.networks:
                add(
                    f"service {name!r} joins undefined network {net!r}{did_you_mean(net, spec.networks)}",
                    "services",
                    name,
                    "networks",
                    net,
                )
        merged: dict[str, str] = {}
        for i, env_file in enumerate(svc.env_file):
            path = base / env_file
            try:
                merged.update(parse_dotenv(path.read_text(encoding="utf-8")))
            except FileNotFoundError:
                add(
                    f"service {name!r}: env_file {env_file!r} does not exist",
                    "services",
                    name,
                    "env_file",
                    i,
                )
            except OSError as exc:
                add(
                    f"service {name!r}: cannot read env_file {env_file!r}: {exc.strerror}",
                    "services",
                    name,
                    "env_file",
                    i,
                )
        env_files[name] = merged
        if svc.build is not None:
            ctx = base / svc.build.context
            if not ctx.is_dir():
                add(
                    f"service {name!r}: build context {svc.build.context!r} is not a directory",
                    "services",
                    name,
                    "build",
                    "context",
                )
            elif not (ctx / svc.build.dockerfile).is_file():
                add(
                    f"service {name!r}: Dockerfile {svc.build.dockerfile!r} not found in the build context",
                    "services",
                    name,
                    "build",
                    "dockerfile",
                )
        for i, rule in enumerate(svc.watch):
            if not (base / rule.path).exists():
                add(
                    f"service {name!r}: watch path {rule.path!r} does not exist",
                    "services",
                    name,
                    "watch",
                    i,
                )
            if rule.action == "rebuild" and svc.build is None:
                add(
                    f"service {name!r}: a 'rebuild' watch rule needs a 'build' section",
                    "services",
                    name,
                    "watch",
                    i,
                )
        fixed = [p for p in svc.ports if p.published]
        if svc.replicas > 1 and fixed and not swarm:
            add(
                f"service {name!r} has {svc.replicas} replicas but publishes fixed host port"
                f" {fixed[0].published}; only one container can bind it",
                "services",
                name,
                "ports",
            )
    problems.extend(_port_clashes(spec, add))
    for name, sdef in spec.secrets.items():
        if sdef.file is not None and not (base / sdef.file).is_file():
            add(f"secret {name!r}: file {sdef.file!r} does not exist", "secrets", name, "file")
    # A service depending on itself is reported above, not as a cycle too.
    graph = {n: [d for d in s.depends_on if d != n] for n, s in services.items()}
    cycle = find_cycle(graph)
    if cycle:
        add("dependency cycle: " + " -> ".join(cycle), "services", cycle[0], "depends_on")
    return problems


_WILDCARD_IPS = ("", "0.0.0.0", "::")


def _port_clashes(spec: Spec, add: Any) -> list[SpecProblem]:
    """Two services publishing one host port (a wildcard address clashes with any)."""
    owners: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for name, svc in spec.services.items():
        reported = False
        for port in svc.ports:
            if not port.published:
                continue
            taken = owners.setdefault((port.published, port.protocol), [])
            for ip, other in taken:
                wildcard = ip in _WILDCARD_IPS or port.host_ip in _WILDCARD_IPS
                same_ip = wildcard or ip == port.host_ip
                both_in_profiles = set(svc.profiles) and set(spec.services[other].profiles)
                if other != name and same_ip and not both_in_profiles and not reported:
                    add(
                        f"services {other!r} and {name!r} both publish host port {port.published}",
                        "services",
                        name,
                        "ports",
                    )
                    reported = True
            taken.append((port.host_ip, name))
    return []


def find_cycle(graph: Mapping[str, list[str]]) -> list[str]:
    """A dependency cycle as a path (first node repeated at the end), or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []
