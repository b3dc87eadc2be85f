"""``include`` and ``extends``: Compose files that pull in other files, resolved as Compose v2 does.

An ``include`` entry is its own project: its files are merged, relative
paths in them are relative to its ``project_directory`` (the first file's
directory unless given), its variables come from its ``env_file`` (default:
the ``.env`` of that directory) under the including project's, and its
services, volumes, networks, secrets and configs are added to the model (a
resource the including file defines too is merged, the including file's
values winning). ``extends`` merges a base service (of the same file, or of
``file:``) under the service by the merge rules. Paths an included or
extended file holds are rewritten relative to the including file's project
directory, so the merged model reads as one project. Cycles are refused.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from envd.interop.compose_files import Reading, located, merge_into, parse, read_env_file
from envd.interop.compose_import_common import ComposeValueError, as_text
from envd.interop.compose_interp import interpolate_doc
from envd.interop.compose_merge import merge, strip
from envd.values.errors import SpecError, SpecProblem

_RESOURCES = ("services", "volumes", "networks", "secrets", "configs")
_NO_DISK = "names another file; import from disk with `envd import -f FILE`"


def load_model(
    paths: list[Path],
    base_dir: Path,
    variables: dict[str, str],
    keep: bool,
    reading: Reading,
    chain: tuple[Path, ...],
) -> dict[str, Any]:
    """The files ``paths`` of one project merged in order, their includes and extends resolved."""
    model: dict[str, Any] = {}
    for path in paths:
        doc = load_file(path, base_dir, variables, keep, reading, chain)
        model = merge_into(model, doc, path, reading)
    return model


def load_file(
    path: Path,
    base_dir: Path,
    variables: dict[str, str],
    keep: bool,
    reading: Reading,
    chain: tuple[Path, ...],
) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in chain:
        names = " includes ".join(reading.show(p) for p in (*chain, resolved))
        raise SpecError(
            SpecProblem(
                f"include cycle: {names}; refused", reading.show(chain[-1] if chain else path)
            )
        )
    doc = parse(path, reading)
    try:
        doc = dict(interpolate_doc(doc, variables, keep))
        includes = doc.pop("include", None)
        if includes is not None:
            _include(doc, includes, path, base_dir, variables, reading, (*chain, resolved))
        extend_services(doc, path, base_dir, variables, keep, reading)
    except ComposeValueError as exc:
        raise located(path, exc, reading) from None
    return doc


# --- include ----------------------------------------------------------------


def _include(
    doc: dict[str, Any],
    includes: Any,
    path: Path,
    base_dir: Path,
    variables: dict[str, str],
    reading: Reading,
    chain: tuple[Path, ...],
) -> None:
    if not isinstance(includes, list):
        raise ComposeValueError("include", "expected a list of files")
    if not reading.disk:
        raise ComposeValueError("include", _NO_DISK)
    for i, entry in enumerate(strip(includes)):
        where = f"include[{i}]"
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or entry.get("path") is None:
            raise ComposeValueError(where, "expected a path, or a mapping with 'path'")
        for key in entry:
            if key not in ("path", "project_directory", "env_file"):
                raise ComposeValueError(f"{where}.{key}", "unknown include key")
        files = [base_dir / _text(f"{where}.path", p) for p in _strings(entry["path"])]
        if not files:
            raise ComposeValueError(f"{where}.path", "expected a file")
        if entry.get("project_directory") is not None:
            project = base_dir / _text(f"{where}.project_directory", entry["project_directory"])
        else:
            project = files[0].parent
        for f in files:
            if not f.is_file():
                raise ComposeValueError(f"{where}.path", f"{reading.show(f)}: no such file")
        own: dict[str, str] = {}
        env_files = _strings(entry.get("env_file"))
        if env_files:
            for name in env_files:
                text = _text(f"{where}.env_file", name)
                if text == "/dev/null":
                    continue
                env_path = base_dir / text
                if not env_path.is_file():
                    raise ComposeValueError(
                        f"{where}.env_file", f"{reading.show(env_path)}: no such file"
                    )
                own.update(read_env_file(env_path, reading.cwd))
        elif (project / ".env").is_file():
            own.update(read_env_file(project / ".env", reading.cwd))
        # The including project's variables win over the included one's own.
        included = load_model(files, project, {**own, **variables}, False, reading, chain)
        _rebase_model(included, project, base_dir)
        for kind in _RESOURCES:
            theirs = included.get(kind)
            if not isinstance(theirs, dict):
                continue
            ours = doc.setdefault(kind, {})
            if not isinstance(ours, dict):
                raise ComposeValueError(kind, "expected a mapping")
            for name, body in theirs.items():
                ours[name] = body if name not in ours else merge(body, ours[name], (kind, name))


def _strings(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(where: str, value: Any) -> str:
    return os.path.expanduser(as_text(where, value))


# --- extends ----------------------------------------------------------------


def extend_services(
    doc: dict[str, Any],
    path: Path,
    base_dir: Path,
    variables: dict[str, str],
    keep: bool,
    reading: Reading,
) -> None:
    services = doc.get("services")
    if not isinstance(services, dict):
        return
    for name in list(services):
        services[name] = _service(name, services, path, base_dir, variables, keep, reading, ())


def _service(
    name: str,
    services: dict[str, Any],
    path: Path,
    base_dir: Path,
    variables: dict[str, str],
    keep: bool,
    reading: Reading,
    seen: tuple[tuple[Path, str], ...],
) -> Any:
    body = services[name]
    if not isinstance(body, dict) or "extends" not in body:
        return body
    where = f"services.{name}.extends"
    ext = strip(body["extends"])
    if isinstance(ext, str):
        ext = {"service": ext}
    if not isinstance(ext, dict) or ext.get("service") is None:
        raise ComposeValueError(where, "expected a service name, or a mapping with 'service'")
    for key in ext:
        if key not in ("service", "file"):
            raise ComposeValueError(f"{where}.{key}", "unknown extends key")
    ref = as_text(f"{where}.service", ext["service"])
    me = (path.resolve(), name)
    if me in seen:
        steps = " extends ".join(s for _, s in (*seen, me))
        raise ComposeValueError(where, f"extends cycle: {steps}; refused")
    if ext.get("file") is not None:
        if not reading.disk:
            raise ComposeValueError(f"{where}.file", _NO_DISK)
        ref_path = base_dir / _text(f"{where}.file", ext["file"])
        if not ref_path.is_file():
            raise ComposeValueError(f"{where}.file", f"{reading.show(ref_path)}: no such file")
        ref_doc = _extended_file(ref_path, variables, keep, reading)
        ref_services = ref_doc.get("services")
        if not isinstance(ref_services, dict) or ref not in ref_services:
            raise ComposeValueError(where, f"service {ref!r} not found in {reading.show(ref_path)}")
        try:
            base = _service(
                ref, ref_services, ref_path, ref_path.parent, variables, keep, reading, (*seen, me)
            )
        except ComposeValueError as exc:
            raise located(ref_path, exc, reading) from None
        ref_services[ref] = base
        base = copy.deepcopy(base)
        if isinstance(base, dict):
            _rebase_service(base, ref_path.parent, base_dir)
    else:
        if ref not in services:
            raise ComposeValueError(where, f"service {ref!r} not found")
        base = _service(ref, services, path, base_dir, variables, keep, reading, (*seen, me))
        services[ref] = base
        base = copy.deepcopy(base)
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise ComposeValueError(f"services.{ref}", "expected a mapping")
    own = {k: v for k, v in body.items() if k != "extends"}
    merged = merge(strip(base), own, ("services", name))
    merged.pop("extends", None)
    return merged


def _extended_file(
    ref_path: Path, variables: dict[str, str], keep: bool, reading: Reading
) -> dict[str, Any]:
    """A file named by ``extends.file``, read and interpolated once per import."""
    key = ref_path.resolve()
    cached = reading.extended.get(key)
    if cached is None:
        doc = parse(ref_path, reading)
        try:
            cached = interpolate_doc(doc, variables, keep)
        except ComposeValueError as exc:
            raise located(ref_path, exc, reading) from None
        reading.extended[key] = cached
    return cached


# --- paths ------------------------------------------------------------------


def rebase(text: str, src: Path, dst: Path) -> str:
    """A relative path written in ``src`` as a path relative to ``dst``."""
    if src == dst or not text or text.startswith(("/", "~")) or "://" in text:
        return text
    rel = os.path.relpath(os.path.normpath(src / text), dst)
    return rel if rel.startswith(".") else f"./{rel}"


def _rebase_model(model: dict[str, Any], src: Path, dst: Path) -> None:
    if src.resolve() == dst.resolve():
        return
    for body in (model.get("services") or {}).values():
        if isinstance(body, dict):
            _rebase_service(body, src, dst)
    for kind in ("secrets", "configs"):
        for body in (model.get(kind) or {}).values():
            if isinstance(body, dict) and isinstance(body.get("file"), str):
                body["file"] = rebase(body["file"], src, dst)


def _rebase_service(body: dict[str, Any], src: Path, dst: Path) -> None:
    if src.resolve() == dst.resolve():
        return
    build = body.get("build")
    if isinstance(build, str):
        body["build"] = _context(build, src, dst)
    elif isinstance(build, dict) and isinstance(build.get("context", "."), str):
        build["context"] = _context(build.get("context", "."), src, dst)
    for key in ("env_file", "label_file"):
        value = body.get(key)
        if isinstance(value, str):
            body[key] = rebase(value, src, dst)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    value[i] = rebase(item, src, dst)
                elif isinstance(item, dict) and isinstance(item.get("path"), str):
                    item["path"] = rebase(item["path"], src, dst)
    volumes = body.get("volumes")
    if isinstance(volumes, list):
        for i, item in enumerate(volumes):
            if isinstance(item, str) and item.startswith("."):
                source, sep, rest = item.partition(":")
                volumes[i] = rebase(source, src, dst) + sep + rest
            elif (
                isinstance(item, dict)
                and item.get("type") == "bind"
                and isinstance(item.get("source"), str)
            ):
                item["source"] = rebase(item["source"], src, dst)
    develop = body.get("develop")
    if isinstance(develop, dict) and isinstance(develop.get("watch"), list):
        for rule in develop["watch"]:
            if isinstance(rule, dict) and isinstance(rule.get("path"), str):
                rule["path"] = rebase(rule["path"], src, dst)


def _context(text: str, src: Path, dst: Path) -> str:
    if text.startswith(("git@", "github.com/")) or "://" in text:
        return text
    return rebase(text, src, dst)
