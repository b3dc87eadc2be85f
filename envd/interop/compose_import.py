"""``envd import``: a Compose file as ``envd.toml``.

Pure: YAML text in, TOML text and notes out. Every Compose field envd
supports is mapped, in short and long syntax; Compose's defaults that differ
from envd's (``init``, healthcheck timings) are written out so the imported
spec behaves as the Compose file did. Everything else is reported by its
path (``services.web.logging: not supported``), and ``x-`` extensions are
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
from dataclasses import dataclass, field
from typing import Any

from envd.interop.compose_import_common import (
    WHY_NOT,
    ComposeValueError,
    as_bool,
    as_map,
    as_text,
    printable,
    str_map,
)
from envd.interop.compose_import_service import ServiceConverter
from envd.interop.compose_yaml import load_yaml
from envd.interop.toml_writer import dump_toml
from envd.spec.load import sanitize_project_name
from envd.spec.models import PROJECT_NAME


@dataclass
class ImportResult:
    toml: str
    notes: list[str] = field(default_factory=list)
    services: int = 0


def import_compose(text: str, source: str = "docker-compose.yml") -> ImportResult:
    """Convert Compose YAML to envd.toml text; raise ``SpecError`` when it is not YAML."""
    from envd.values.errors import SpecError, SpecProblem

    doc = load_yaml(text, source)
    if not isinstance(doc, dict) or not isinstance(doc.get("services", {}), dict):
        raise SpecError(SpecProblem("not a Compose file: expected a 'services' mapping", source))
    conv = _Converter()
    try:
        spec = conv.convert(doc)
    except ComposeValueError as exc:
        raise SpecError(SpecProblem(str(exc), source)) from None
    header = f"# Imported by envd from {printable(source.rsplit('/', 1)[-1])}.\n"
    return ImportResult(header + dump_toml(spec), conv.notes, len(spec.get("services", {})))


class _Converter(ServiceConverter):
    """A whole Compose file: the top-level objects here, the services in ``ServiceConverter``."""

    def convert(self, doc: dict[str, Any]) -> dict[str, Any]:
        ext = as_map("x-envd", doc.get("x-envd"))
        out: dict[str, Any] = {}
        for key in doc:
            if key in ("services", "volumes", "networks", "secrets", "name", "x-envd"):
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
        return out

    def volumes(self, raw: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, body in raw.items():
            path = f"volumes.{key}"
            body = as_map(path, body)
            vol: dict[str, Any] = {}
            for k, v in body.items():
                if k == "external":
                    if isinstance(v, dict):  # the old `external: {name: x}`
                        vol["external"] = True
                        if v.get("name") is not None:
                            vol["name"] = as_text(f"{path}.external.name", v["name"])
                    else:
                        vol["external"] = as_bool(f"{path}.external", v)
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
                    if isinstance(v, dict):
                        net["external"] = True
                        if v.get("name") is not None:
                            net["name"] = as_text(f"{path}.external.name", v["name"])
                    else:
                        net["external"] = as_bool(f"{path}.external", v)
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
