"""``envd import``: a Compose file as ``envd.toml``.

Pure: YAML text in, TOML text and notes out. Every Compose field envd
supports is mapped, in short and long syntax; Compose's defaults that differ
from envd's (``init``, healthcheck timings) are written out so the imported
spec behaves as the Compose file did. Everything else is reported by its
path (``services.web.links: not supported``), and ``x-`` extensions are
ignored with a note, except ``x-envd``, which ``envd export --format
compose`` writes and which is read back (so envd → compose → envd is
lossless), except a secret's host command: a Compose file is someone else's
input, so it is left out with a note. The YAML is read within limits
(``compose_yaml``). The TOML is written here, in a stable layout: one table
per service, nested tables for maps, short syntaxes where Compose used them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envd.interop.compose_import_common import (
    WHY_NOT,
    ComposeValueError,
    Notes,
    as_bool,
    as_map,
    as_text,
    printable,
    str_map,
)
from envd.interop.compose_import_service import ServiceConverter
from envd.interop.compose_interp import interpolate_doc
from envd.interop.compose_yaml import load_yaml
from envd.interop.toml_writer import dump_toml
from envd.spec.load import sanitize_project_name
from envd.spec.models import PROJECT_NAME
from envd.values.errors import SpecError, SpecProblem


@dataclass
class ImportResult:
    toml: str
    notes: list[str] = field(default_factory=list)
    services: int = 0


def import_compose(
    text: str, source: str = "docker-compose.yml", variables: Mapping[str, str] | None = None
) -> ImportResult:
    """Convert Compose YAML to envd.toml text; raise ``SpecError`` when it is not YAML.

    Text without its file: ``extends`` within it is resolved, ``include`` and
    ``extends.file`` are refused (``import_files`` reads them from disk).
    """
    from envd.interop.compose_files import Reading
    from envd.interop.compose_merge import strip, unique
    from envd.interop.compose_refs import extend_services

    doc = load_yaml(text, source)
    if not isinstance(doc, dict) or not isinstance(doc.get("services", {}), dict):
        raise SpecError(SpecProblem("not a Compose file: expected a 'services' mapping", source))
    variables = dict(variables or {})
    try:
        doc = interpolate_doc(doc, variables, keep=True)
        if doc.get("include") is not None:
            raise ComposeValueError(
                "include", "names other files; import from disk with `envd import -f FILE`"
            )
        extend_services(
            doc, Path(source), Path("."), variables, True, Reading(Path("."), disk=False)
        )
        doc = unique(strip(doc))
    except ComposeValueError as exc:
        raise SpecError(SpecProblem(str(exc), source)) from None
    return _convert(doc, source, source.rsplit("/", 1)[-1], variables, [])


def import_files(
    files: Sequence[str],
    env_files: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ImportResult:
    """Convert the Compose files of a project (``compose_files`` finds and merges them)."""
    from envd.interop.compose_files import display_path, load_compose

    model = load_compose(files, env_files, environ, cwd)
    names = ", ".join(display_path(p, cwd) for p in model.files)
    source = display_path(model.files[-1], cwd) if len(model.files) == 1 else names
    doc = model.doc
    if not isinstance(doc.get("services", {}), dict):
        raise SpecError(SpecProblem("not a Compose file: expected a 'services' mapping", source))
    return _convert(doc, source, names, model.variables, model.notes)


def _convert(
    doc: dict[str, Any], source: str, names: str, variables: Mapping[str, str], notes: list[str]
) -> ImportResult:
    conv = _Converter()
    conv.notes.extend(notes)
    try:
        spec = conv.convert(doc)
        _compose_variables(conv, spec, variables)
    except ComposeValueError as exc:
        raise SpecError(SpecProblem(str(exc), source)) from None
    header = f"# Imported by envd from {printable(names)}.\n"
    return ImportResult(header + dump_toml(spec), conv.notes, len(spec.get("services", {})))


def _compose_variables(conv: Notes, spec: dict[str, Any], variables: Mapping[str, str]) -> None:
    """``COMPOSE_PROJECT_NAME`` and ``COMPOSE_PROFILES`` (environment or .env), as Compose reads them."""
    name = variables.get("COMPOSE_PROJECT_NAME")
    if name:
        clean = name if PROJECT_NAME.match(name) else sanitize_project_name(name)
        spec["project"] = {**spec.get("project", {}), "name": clean}
        conv.note("COMPOSE_PROJECT_NAME", f"the project is named {clean!r}")
    active = {p.strip() for p in variables.get("COMPOSE_PROFILES", "").split(",") if p.strip()}
    if not active:
        return
    enabled = []
    for sname, body in spec.get("services", {}).items():
        profiles = body.get("profiles")
        if profiles and ("*" in active or active.intersection(profiles)):
            del body["profiles"]
            enabled.append(sname)
    if enabled:
        conv.note(
            "COMPOSE_PROFILES",
            f"{','.join(sorted(active))} enables {', '.join(enabled)} in Compose;"
            " imported without their profiles, so envd runs them too",
        )


class _Converter(ServiceConverter):
    """A whole Compose file: the top-level objects here, the services in ``ServiceConverter``."""

    def convert(self, doc: dict[str, Any]) -> dict[str, Any]:
        ext = as_map("x-envd", doc.get("x-envd"))
        out: dict[str, Any] = {}
        for key in doc:
            if key in ("services", "volumes", "networks", "secrets", "configs", "name", "x-envd"):
                continue
            if key == "version":
                self.note("version", "obsolete in the Compose Specification; ignored")
            elif str(key).startswith("x-"):
                self.note(str(key), "extension ignored")
            else:
                self.unsupported(str(key), WHY_NOT.get(str(key), ""))
        if ext.get("project") is not None:
            name = as_text("x-envd.project", ext["project"])
        else:
            name = as_text("name", doc["name"]) if doc.get("name") is not None else ""
        if name:
            clean = name if PROJECT_NAME.match(name) else sanitize_project_name(name)
            if clean != name:
                self.note("name", f"{name!r} is not a valid envd project name; using {clean!r}")
            out["project"] = {"name": clean}
        services: dict[str, Any] = {}
        ext_services = as_map("x-envd.services", ext.get("services"))
        for sname, body in as_map("services", doc.get("services")).items():
            services[str(sname)] = self.service(
                str(sname),
                as_map(f"services.{sname}", body),
                as_map(f"x-envd.services.{sname}", ext_services.get(sname)),
            )
        out["services"] = services
        volumes = self.volumes(as_map("volumes", doc.get("volumes")))
        if volumes:
            out["volumes"] = volumes
        networks = self.networks(as_map("networks", doc.get("networks")))
        if networks:
            out["networks"] = networks
        secrets = self.secrets(
            as_map("secrets", doc.get("secrets")), as_map("x-envd.secrets", ext.get("secrets"))
        )
        if secrets:
            out["secrets"] = secrets
        configs = self.configs(as_map("configs", doc.get("configs")))
        if configs:
            out["configs"] = configs
        for sname, svc in services.items():
            kept = []
            for i, ref in enumerate(svc.get("configs", [])):
                source = ref if isinstance(ref, str) else ref["source"]
                if source in configs:
                    kept.append(ref)
                else:
                    self.note(
                        f"services.{sname}.configs[{i}]",
                        f"config {source!r} was left out above; so is this use of it",
                    )
            if "configs" in svc:
                svc["configs"] = kept
        return out

    # configs (Compose's `configs`: read-only files)
    def configs(self, raw: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, body in raw.items():
            path = f"configs.{key}"
            body = as_map(path, body)
            if body.get("external") is not None and as_bool(f"{path}.external", body["external"]):
                self.note(
                    path,
                    "external configs live in a swarm and are not supported; define it with"
                    " 'file' or 'content'; left out",
                )
                continue
            given = [k for k in ("file", "content", "environment") if body.get(k) is not None]
            if len(given) != 1:
                self.note(path, "needs exactly one of 'file', 'content' or 'environment'; left out")
                continue
            out[str(key)] = {given[0]: as_text(f"{path}.{given[0]}", body[given[0]])}
            for k in body:
                known = k in ("file", "content", "environment", "external", "name")
                if not known and not str(k).startswith("x-"):
                    self.unsupported(f"{path}.{k}")
            if body.get("name") is not None:
                self.note(f"{path}.name", "a swarm object name; not needed by envd, left out")
        return out

    def volumes(self, raw: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, body in raw.items():
            path = f"volumes.{key}"
            body = as_map(path, body)
            vol: dict[str, Any] = {}
            for k, v in body.items():
                if k == "external":
                    vol.update(_external(path, v))
                elif k in ("name", "driver"):
                    vol[k] = as_text(f"{path}.{k}", v)
                elif k in ("driver_opts", "labels"):
                    opts = str_map(f"{path}.{k}", v)
                    vol[k] = {kk: vv for kk, vv in opts.items() if vv is not None}
                elif str(k).startswith("x-"):
                    self.note(f"{path}.{k}", "extension ignored")
                else:
                    self.unsupported(f"{path}.{k}")
            out[str(key)] = vol
        return out

    def networks(self, raw: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, body in raw.items():
            path = f"networks.{key}"
            body = as_map(path, body)
            net: dict[str, Any] = {}
            for k, v in body.items():
                if k == "external":
                    net.update(_external(path, v))
                elif k in ("name", "driver"):
                    if k == "driver" and v == "overlay":
                        self.note(
                            f"{path}.driver", "overlay is a swarm driver; envd up uses bridge"
                        )
                        continue
                    net[k] = as_text(f"{path}.{k}", v)
                elif k == "internal":
                    net["internal"] = as_bool(f"{path}.internal", v)
                elif k == "labels":
                    lab = str_map(f"{path}.labels", v)
                    net["labels"] = {kk: vv for kk, vv in lab.items() if vv is not None}
                elif k == "ipam":
                    ipam = self.ipam(f"{path}.ipam", v)
                    if ipam:
                        net["ipam"] = ipam
                elif k == "enable_ipv6":
                    net["enable_ipv6"] = self.enable_ipv6(f"{path}.enable_ipv6", v)
                elif k == "attachable":
                    self.note(f"{path}.attachable", "ignored (envd's networks are attachable)")
                elif str(k).startswith("x-"):
                    self.note(f"{path}.{k}", "extension ignored")
                else:
                    self.unsupported(f"{path}.{k}")
            out[str(key)] = net
        return out

    def secrets(self, raw: dict[str, Any], ext: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, body in raw.items():
            path = f"secrets.{key}"
            body = as_map(path, body)
            known = as_map(f"x-envd.secrets.{key}", ext.get(key))
            if known and "command" in known:
                # A Compose file is someone else's: it must not make envd run a host command.
                command = json.dumps(known["command"], ensure_ascii=True, default=str)
                self.note(
                    f"x-envd.secrets.{key}.command",
                    f"secret {str(key)!r} would run the host command {command} on your machine;"
                    " envd import never carries a host command into envd.toml, so it is left"
                    f" out. If you trust it, add it back by hand: command = {command} under"
                    f" [secrets.{key}] (in place of file or env)",
                )
            elif known and "env" in known:
                out[str(key)] = {"env": as_text(f"x-envd.secrets.{key}.env", known["env"])}
                continue
            if "file" in body:
                out[str(key)] = {"file": as_text(f"{path}.file", body["file"])}
            elif "environment" in body:
                out[str(key)] = {"env": as_text(f"{path}.environment", body["environment"])}
            elif body.get("external") is not None and as_bool(f"{path}.external", body["external"]):
                var = re.sub(r"[^A-Z0-9_]", "_", str(key).upper())
                out[str(key)] = {"env": var}
                self.note(
                    path,
                    f"external secrets are not supported; envd reads this one from ${var}",
                )
            else:
                self.note(path, "has no 'file' or 'environment'; left out")
                continue
            for k in body:
                if k not in ("file", "environment", "external") and not str(k).startswith("x-"):
                    self.unsupported(f"{path}.{k}")
        return out


def _external(path: str, value: Any) -> dict[str, Any]:
    """A volume's or network's ``external``: a bool, or the old ``external: {name: x}``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {"external": True}
        if value.get("name") is not None:
            out["name"] = as_text(f"{path}.external.name", value["name"])
        return out
    return {"external": as_bool(f"{path}.external", value)}
