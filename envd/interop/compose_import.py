"""``envd import``: a Compose file as ``envd.toml``.

Pure: YAML text in, TOML text and notes out. Every Compose field envd
supports is mapped, in short and long syntax; Compose's defaults that differ
from envd's (``init``, healthcheck timings) are written out so the imported
spec behaves as the Compose file did. Everything else is reported by its
path (``services.web.logging: not supported``), and ``x-`` extensions are
ignored with a note, except ``x-envd``, which ``envd export --format
compose`` writes and which is read back (so envd → compose → envd is
lossless). The TOML is written here, in a stable layout: one table per
service, nested tables for maps, short syntaxes where Compose used them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from envd.spec.load import sanitize_project_name
from envd.spec.models import PROJECT_NAME

# Compose's healthcheck defaults (envd's are shorter: 5s/10s).
COMPOSE_HEALTHCHECK_DEFAULTS = {
    "interval": "30s",
    "timeout": "30s",
    "retries": 3,
    "start_period": "0s",
}

COMPOSE_SECRET_MODE = 0o444

_RESTART_CONDITION = {"none": "no", "on-failure": "on-failure", "any": "always"}
_PULL = {
    "always": "always",
    "never": "never",
    "missing": "missing",
    "if_not_present": "missing",
    "build": "build",
}
_CONDITIONS = {
    "service_started": "started",
    "service_healthy": "healthy",
    "service_completed_successfully": "completed",
}
_VOLUME_MODES = {"ro", "rw", "z", "Z"}
_WHY_NOT = {
    "container_name": "envd names containers <project>-<service>-<n>",
    "expose": "services reach each other on every port of the project network; nothing to expose",
    "links": "services reach each other by name on the project network",
    "network_mode": "envd always uses its project networks",
    "extends": "merge the extended service into this one by hand",
    "configs": "use a bind mount (volumes) or a secret",
}


@dataclass
class ImportResult:
    toml: str
    notes: list[str] = field(default_factory=list)
    services: int = 0


def import_compose(text: str, source: str = "docker-compose.yml") -> ImportResult:
    """Convert Compose YAML to envd.toml text; raise ``SpecError`` when it is not YAML."""
    import yaml

    from envd.values.errors import SpecError, SpecProblem

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(SpecProblem(f"invalid YAML: {problem}", source, line, col)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("services", {}), dict):
        raise SpecError(SpecProblem("not a Compose file: expected a 'services' mapping", source))
    conv = _Converter()
    spec = conv.convert(doc)
    header = f"# Imported by envd from {source.rsplit('/', 1)[-1]}.\n"
    return ImportResult(header + dump_toml(spec), conv.notes, len(spec.get("services", {})))


# --------------------------------------------------------------------------- converting


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _str_map(value: Any) -> dict[str, str | None]:
    if isinstance(value, list):
        out: dict[str, str | None] = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            out[key] = val if sep else None
        return out
    if isinstance(value, dict):
        return {str(k): (None if v is None else _str(v)) for k, v in value.items()}
    return {}


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Converter:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, path: str, message: str) -> None:
        self.notes.append(f"{path}: {message}")

    def unsupported(self, path: str, why: str = "") -> None:
        self.note(path, "not supported by envd" + (f" ({why})" if why else "") + "; left out")

    # --- top level -----------------------------------------------------------
    def convert(self, doc: dict[str, Any]) -> dict[str, Any]:
        raw_ext = doc.get("x-envd")
        ext: dict[str, Any] = raw_ext if isinstance(raw_ext, dict) else {}
        out: dict[str, Any] = {}
        for key in doc:
            if key in ("services", "volumes", "networks", "secrets", "name", "x-envd"):
                continue
            if key == "version":
                self.note("version", "obsolete in the Compose Specification; ignored")
            elif str(key).startswith("x-"):
                self.note(str(key), "extension ignored")
            else:
                self.unsupported(str(key), _WHY_NOT.get(str(key), ""))
        name = ext.get("project") or doc.get("name")
        if isinstance(name, str) and name:
            clean = name if PROJECT_NAME.match(name) else sanitize_project_name(name)
            if clean != name:
                self.note("name", f"{name!r} is not a valid envd project name; using {clean!r}")
            out["project"] = {"name": clean}
        services: dict[str, Any] = {}
        raw_services = ext.get("services")
        ext_services: dict[str, Any] = raw_services if isinstance(raw_services, dict) else {}
        for sname, body in (doc.get("services") or {}).items():
            services[str(sname)] = self.service(
                str(sname), body or {}, ext_services.get(sname) or {}
            )
        out["services"] = services
        volumes = self.volumes(doc.get("volumes") or {})
        if volumes:
            out["volumes"] = volumes
        networks = self.networks(doc.get("networks") or {})
        if networks:
            out["networks"] = networks
        secrets = self.secrets(doc.get("secrets") or {}, ext.get("secrets") or {})
        if secrets:
            out["secrets"] = secrets
        return out

    def volumes(self, raw: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, body in raw.items():
            path = f"volumes.{key}"
            body = body or {}
            vol: dict[str, Any] = {}
            for k, v in body.items():
                if k == "external":
                    if isinstance(v, dict):  # the old `external: {name: x}`
                        vol["external"] = True
                        if v.get("name"):
                            vol["name"] = str(v["name"])
                    else:
                        vol["external"] = bool(v)
                elif k in ("name", "driver"):
                    vol[k] = str(v)
                elif k in ("driver_opts", "labels"):
                    vol[k] = {kk: vv for kk, vv in _str_map(v).items() if vv is not None}
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
            body = body or {}
            net: dict[str, Any] = {}
            for k, v in body.items():
                if k == "external":
                    if isinstance(v, dict):
                        net["external"] = True
                        if v.get("name"):
                            net["name"] = str(v["name"])
                    else:
                        net["external"] = bool(v)
                elif k in ("name", "driver"):
                    if k == "driver" and v == "overlay":
                        self.note(
                            f"{path}.driver", "overlay is a swarm driver; envd up uses bridge"
                        )
                        continue
                    net[k] = str(v)
                elif k == "internal":
                    net["internal"] = bool(v)
                elif k == "labels":
                    net["labels"] = {kk: vv for kk, vv in _str_map(v).items() if vv is not None}
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
            body = body or {}
            known = ext.get(key) if isinstance(ext.get(key), dict) else None
            if known and ("env" in known or "command" in known):
                out[str(key)] = {k: known[k] for k in ("env", "command") if k in known}
                continue
            if "file" in body:
                out[str(key)] = {"file": str(body["file"])}
            elif "environment" in body:
                out[str(key)] = {"env": str(body["environment"])}
            elif body.get("external"):
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

    # --- services ------------------------------------------------------------
    def service(self, name: str, body: dict[str, Any], ext: dict[str, Any]) -> dict[str, Any]:
        p = f"services.{name}"
        out: dict[str, Any] = {}
        handled = {
            "image",
            "build",
            "pull_policy",
            "command",
            "entrypoint",
            "working_dir",
            "user",
            "hostname",
            "environment",
            "env_file",
            "ports",
            "volumes",
            "tmpfs",
            "networks",
            "depends_on",
            "healthcheck",
            "restart",
            "init",
            "stop_signal",
            "stop_grace_period",
            "secrets",
            "labels",
            "read_only",
            "cap_add",
            "cap_drop",
            "deploy",
            "scale",
            "profiles",
            "develop",
        }
        for key in body:
            if key in handled:
                continue
            if str(key).startswith("x-"):
                self.note(f"{p}.{key}", "extension ignored")
            else:
                self.unsupported(f"{p}.{key}", _WHY_NOT.get(str(key), ""))
        if "image" in body:
            out["image"] = str(body["image"])
        if "build" in body:
            build = self.build(p, body["build"])
            if build is not None:
                out["build"] = build
        if "pull_policy" in body:
            policy = str(body["pull_policy"])
            if policy in _PULL:
                if _PULL[policy] != "missing":
                    out["pull"] = _PULL[policy]
            else:
                self.note(
                    f"{p}.pull_policy", f"{policy!r} is not supported; envd pulls when missing"
                )
        for key in ("command", "entrypoint"):
            if key in body and body[key] is not None:
                value = body[key]
                out[key] = [_str(v) for v in value] if isinstance(value, list) else _str(value)
        for key in ("working_dir", "user", "hostname"):
            if body.get(key) is not None:
                out[key] = _str(body[key])
        if body.get("environment"):
            env = _str_map(body["environment"])
            if any(v is None for v in env.values()):
                out["env"] = [k if v is None else f"{k}={v}" for k, v in env.items()]
            else:
                out["env"] = env
        if "env_file" in body:
            files = []
            for i, item in enumerate(_list(body["env_file"])):
                if isinstance(item, dict):
                    files.append(str(item.get("path", "")))
                    if item.get("required") is False:
                        self.note(
                            f"{p}.env_file[{i}]",
                            "required: false is not supported; envd needs the file to exist",
                        )
                    if item.get("format"):
                        self.unsupported(f"{p}.env_file[{i}].format")
                else:
                    files.append(str(item))
            out["env_file"] = files
        if body.get("ports"):
            out["ports"] = self.ports(p, body["ports"])
        volumes, tmpfs = self.mounts(p, body.get("volumes") or [])
        if volumes:
            out["volumes"] = volumes
        tmpfs = [str(t) for t in _list(body.get("tmpfs"))] + tmpfs
        if tmpfs:
            out["tmpfs"] = tmpfs
        if body.get("networks"):
            out["networks"] = self.service_networks(p, body["networks"])
        if body.get("depends_on"):
            out["depends_on"] = self.depends_on(p, body["depends_on"], ext)
        if body.get("healthcheck") is not None:
            hc = self.healthcheck(p, body["healthcheck"])
            if hc is not None:
                out["healthcheck"] = hc
        restart = body.get("restart")
        deploy = body.get("deploy") or {}
        if restart is not None:
            text = "no" if restart is False else str(restart)
            if text.startswith("on-failure:"):
                self.note(
                    f"{p}.restart",
                    f"{text!r}: envd has no retry count; imported as 'on-failure' (retries without limit)",
                )
                text = "on-failure"
            if text != "no":
                out["restart"] = text
        elif isinstance(deploy.get("restart_policy"), dict):
            cond = str(deploy["restart_policy"].get("condition", "any"))
            if cond in _RESTART_CONDITION and _RESTART_CONDITION[cond] != "no":
                out["restart"] = _RESTART_CONDITION[cond]
        out["init"] = bool(body.get("init", False))
        if body.get("stop_signal") is not None:
            out["stop_signal"] = _str(body["stop_signal"])
        if body.get("stop_grace_period") is not None:
            out["stop_grace_period"] = _str(body["stop_grace_period"])
        if body.get("secrets"):
            out["secrets"] = self.service_secrets(p, body["secrets"])
        if body.get("labels"):
            labels = {}
            for k, v in _str_map(body["labels"]).items():
                if k.startswith("dev.envd."):
                    self.note(f"{p}.labels.{k}", "the dev.envd. prefix is envd's own; left out")
                    continue
                labels[k] = v or ""
            if labels:
                out["labels"] = labels
        for key in ("read_only",):
            if body.get(key) is not None:
                out[key] = bool(body[key])
        for key in ("cap_add", "cap_drop"):
            if body.get(key):
                out[key] = [str(c) for c in body[key]]
        replicas = None
        if "scale" in body:
            replicas = int(body["scale"])
        if isinstance(deploy, dict):
            for k, v in deploy.items():
                if k == "replicas":
                    replicas = int(v)
                elif k == "restart_policy" and isinstance(v, dict):
                    extra = [kk for kk in v if kk != "condition"]
                    for kk in extra:
                        self.unsupported(f"{p}.deploy.restart_policy.{kk}")
                    if restart is not None:
                        self.note(f"{p}.deploy.restart_policy", "'restart' is set too; it wins")
                elif k == "mode" and v == "replicated":
                    continue
                else:
                    self.unsupported(f"{p}.deploy.{k}")
        if replicas is not None and replicas != 1:
            out["replicas"] = replicas
            fixed: list[Any] = [
                x for x in out.get("ports", []) if isinstance(x, dict) and x.get("published")
            ]
            fixed += [x for x in out.get("ports", []) if isinstance(x, str) and ":" in x]
            if replicas > 1 and fixed:
                self.note(
                    f"{p}.ports",
                    f"{replicas} replicas cannot all bind a fixed host port; envd rejects this"
                    " (publish a range, or no host port)",
                )
        if body.get("profiles"):
            out["profiles"] = [str(x) for x in body["profiles"]]
        watch = self.watch(p, body.get("develop"), ext)
        if watch:
            out["watch"] = watch
        return out

    def build(self, p: str, raw: Any) -> dict[str, Any] | None:
        if isinstance(raw, str):
            return {"context": raw}
        if not isinstance(raw, dict):
            self.note(f"{p}.build", "not understood; left out")
            return None
        out: dict[str, Any] = {"context": str(raw.get("context", "."))}
        for k, v in raw.items():
            if k == "context":
                continue
            if k in ("dockerfile", "target"):
                out[k] = str(v)
            elif k == "args":
                args = _str_map(v)
                for key, value in args.items():
                    if value is None:
                        self.note(
                            f"{p}.build.args.{key}",
                            f"an argument without a value; envd passes ${{{key}}} from the environment",
                        )
                out["args"] = {k2: (f"${{{k2}}}" if v2 is None else v2) for k2, v2 in args.items()}
            elif str(k).startswith("x-"):
                self.note(f"{p}.build.{k}", "extension ignored")
            else:
                self.unsupported(f"{p}.build.{k}")
        return out

    def ports(self, p: str, raw: list[Any]) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(raw):
            path = f"{p}.ports[{i}]"
            if isinstance(item, (int, str)):
                out.append(str(item))
                continue
            if not isinstance(item, dict):
                self.note(path, "not understood; left out")
                continue
            port: dict[str, Any] = {"target": int(item["target"])}
            published = item.get("published")
            if published not in (None, ""):
                text = str(published)
                if "-" in text:
                    # A range maps to one envd entry per port: the short syntax says it.
                    ip = item.get("host_ip", "")
                    proto = item.get("protocol", "tcp")
                    short = f"{text}:{item['target']}"
                    if ip:
                        short = f"{ip}:{short}"
                    out.append(short + (f"/{proto}" if proto != "tcp" else ""))
                    continue
                port["published"] = int(text)
            if item.get("host_ip"):
                port["host_ip"] = str(item["host_ip"])
            if item.get("protocol") and item["protocol"] != "tcp":
                port["protocol"] = str(item["protocol"])
            for k in item:
                if k in ("target", "published", "host_ip", "protocol"):
                    continue
                if k == "mode":
                    if item[k] != "ingress":
                        self.note(
                            f"{path}.mode", f"{item[k]!r} ignored (envd publishes on the host)"
                        )
                elif k in ("name", "app_protocol"):
                    self.note(f"{path}.{k}", "descriptive only; left out")
                else:
                    self.unsupported(f"{path}.{k}")
            out.append(port)
        return out

    def mounts(self, p: str, raw: list[Any]) -> tuple[list[Any], list[str]]:
        out: list[Any] = []
        tmpfs: list[str] = []
        for i, item in enumerate(raw):
            path = f"{p}.volumes[{i}]"
            if isinstance(item, str):
                out.append(self.short_volume(path, item))
                continue
            if not isinstance(item, dict):
                self.note(path, "not understood; left out")
                continue
            kind = str(item.get("type", "volume"))
            target = str(item.get("target", ""))
            if kind == "tmpfs":
                opts = []
                t = item.get("tmpfs") or {}
                if t.get("size") is not None:
                    opts.append(f"size={t['size']}")
                if t.get("mode") is not None:
                    opts.append(f"mode={int(t['mode']):o}")
                if opts:
                    tmpfs.append(f"{target}:{','.join(opts)}")
                else:
                    out.append({"type": "tmpfs", "target": target})
                continue
            if kind not in ("volume", "bind"):
                self.unsupported(path, f"mount type {kind!r}")
                continue
            mount: dict[str, Any] = {"type": kind}
            if item.get("source"):
                mount["source"] = str(item["source"])
            mount["target"] = target
            if item.get("read_only"):
                mount["read_only"] = True
            for k in item:
                if k in ("type", "source", "target", "read_only", "tmpfs"):
                    continue
                if k == "consistency":
                    self.note(f"{path}.consistency", "macOS-only; ignored")
                elif k == "bind" and isinstance(item[k], dict):
                    for kk in item[k]:
                        if kk == "create_host_path":
                            continue  # envd requires the path to exist: checked when loading
                        self.unsupported(f"{path}.bind.{kk}")
                else:
                    self.unsupported(f"{path}.{k}")
            out.append(self.shorten(mount))
        return out, tmpfs

    @staticmethod
    def shorten(mount: dict[str, Any]) -> Any:
        """A long-syntax volume as the short string when nothing is lost."""
        src = str(mount.get("source", ""))
        target = str(mount["target"])
        if ":" in src or ":" in target:
            return mount
        if mount["type"] == "volume":
            if not src:
                return target
            if src.startswith((".", "/", "~")):
                return mount
        elif not src.startswith((".", "/", "~")):
            return mount
        return f"{src}:{target}" + (":ro" if mount.get("read_only") else "")

    def short_volume(self, path: str, text: str) -> str:
        parts = text.split(":")
        if len(parts) == 3:
            modes = parts[2].split(",")
            kept = [m for m in modes if m in _VOLUME_MODES and m != "rw"]
            dropped = [m for m in modes if m not in _VOLUME_MODES]
            if dropped:
                self.note(path, f"mode {','.join(dropped)} is not supported; ignored")
            return ":".join(parts[:2] + ([",".join(kept)] if kept else []))
        return text

    def service_networks(self, p: str, raw: Any) -> Any:
        if isinstance(raw, list):
            return [str(n) for n in raw]
        out: dict[str, Any] = {}
        plain = True
        for key, body in raw.items():
            net: dict[str, Any] = {}
            for k, v in (body or {}).items():
                if k == "aliases":
                    net["aliases"] = [str(a) for a in v]
                    plain = False
                else:
                    self.unsupported(f"{p}.networks.{key}.{k}")
            out[str(key)] = net
        return list(out) if plain else out

    def depends_on(self, p: str, raw: Any, ext: dict[str, Any]) -> dict[str, Any]:
        optional = set(ext.get("optional_depends_on") or [])
        if isinstance(raw, list):
            return {str(d): "started" for d in raw}
        out: dict[str, Any] = {}
        for dep, body in raw.items():
            body = body or {}
            cond = str(body.get("condition", "service_started"))
            if cond not in _CONDITIONS:
                self.note(f"{p}.depends_on.{dep}.condition", f"{cond!r} unknown; using 'started'")
            condition = _CONDITIONS.get(cond, "started")
            required = body.get("required", True) and dep not in optional
            for k in body:
                if k == "restart":
                    self.note(f"{p}.depends_on.{dep}.restart", "not supported; ignored")
                elif k not in ("condition", "required"):
                    self.unsupported(f"{p}.depends_on.{dep}.{k}")
            out[str(dep)] = condition if required else {"condition": condition, "required": False}
        return out

    def healthcheck(self, p: str, raw: dict[str, Any]) -> dict[str, Any] | None:
        if raw.get("disable"):
            return {"disable": True}
        test = raw.get("test")
        if test is None:
            self.note(
                f"{p}.healthcheck",
                "no 'test' (the image's own would be used): envd needs the test; left out",
            )
            return None
        if isinstance(test, list) and test and test[0] == "NONE":
            return {"disable": True}
        out: dict[str, Any] = {
            "test": [_str(t) for t in test] if isinstance(test, list) else _str(test)
        }
        for key, default in COMPOSE_HEALTHCHECK_DEFAULTS.items():
            value = raw.get(key, default)
            out[key] = int(value) if key == "retries" else _str(value)
        for k in raw:
            if k in ("test", "disable", *COMPOSE_HEALTHCHECK_DEFAULTS):
                continue
            self.unsupported(f"{p}.healthcheck.{k}")
        return out

    def service_secrets(self, p: str, raw: list[Any]) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(raw):
            if isinstance(item, str):
                item = {"source": item}
            sec: dict[str, Any] = {"source": str(item["source"])}
            for k in ("target", "uid", "gid"):
                if item.get(k) is not None:
                    sec[k] = _str(item[k])
            # Compose mounts secrets world-readable unless told; envd's default is 0o400.
            mode = item.get("mode", COMPOSE_SECRET_MODE)
            sec["mode"] = int(mode, 8) if isinstance(mode, str) else int(mode)
            for k in item:
                if k not in ("source", "target", "uid", "gid", "mode"):
                    self.unsupported(f"{p}.secrets[{i}].{k}")
            out.append(sec)
        return out

    def watch(self, p: str, develop: Any, ext: dict[str, Any]) -> list[dict[str, Any]]:
        if ext.get("watch"):
            return [dict(r) for r in ext["watch"]]
        if not isinstance(develop, dict):
            return []
        out: list[dict[str, Any]] = []
        for k in develop:
            if k != "watch":
                self.unsupported(f"{p}.develop.{k}")
        for i, rule in enumerate(develop.get("watch") or []):
            action = str(rule.get("action", ""))
            if action not in ("sync", "rebuild", "restart", "sync+restart"):
                self.unsupported(f"{p}.develop.watch[{i}].action", f"action {action!r}")
                continue
            r: dict[str, Any] = {"path": str(rule["path"]), "action": action}
            if rule.get("target"):
                r["target"] = str(rule["target"])
            if rule.get("ignore"):
                r["ignore"] = [str(x) for x in rule["ignore"]]
            for k in rule:
                if k not in ("path", "action", "target", "ignore"):
                    self.unsupported(f"{p}.develop.watch[{i}].{k}")
            out.append(r)
        return out


# --------------------------------------------------------------------------- TOML


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def _scalar(value: Any, key: str = "") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"0o{value:o}" if key == "mode" else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _inline(value: Any, key: str = "") -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_inline(v, k)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    return _scalar(value, key)


def _is_section(value: Any) -> bool:
    """Tables that read better as [sections] than inline."""
    if not isinstance(value, dict):
        return False
    if not value:
        return True
    if any(isinstance(v, dict) for v in value.values()):
        return True
    return len(_inline(value)) > 60


def dump_toml(data: dict[str, Any]) -> str:
    """TOML in a stable layout: scalars and arrays first, then sub-tables as sections."""
    lines: list[str] = []

    def table(prefix: list[str], body: dict[str, Any]) -> None:
        simple = [(k, v) for k, v in body.items() if not _is_section(v)]
        nested = [(k, v) for k, v in body.items() if _is_section(v)]
        if prefix and (simple or not nested):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
        for k, v in simple:
            if isinstance(v, list) and v and len(_inline(v)) > 80:
                lines.append(f"{_key(k)} = [")
                lines.extend(f"  {_inline(item)}," for item in v)
                lines.append("]")
            else:
                lines.append(f"{_key(k)} = {_inline(v, k)}")
        for k, v in nested:
            table([*prefix, k], v)

    for key in ("project", "services", "volumes", "networks", "secrets"):
        if key not in data:
            continue
        if key == "project":
            table([key], data[key])
            continue
        for name, body in data[key].items():
            table([key, name], body)
    return "\n".join(lines) + "\n"
