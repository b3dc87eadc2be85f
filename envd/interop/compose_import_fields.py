"""``envd import``: the parts of a Compose service with a syntax of their own.

Build, ports, mounts, networks, depends_on, healthcheck, secrets, watch
rules and lifecycle hooks, each in short and long syntax.
"""

from __future__ import annotations

import re
from typing import Any

from envd.interop.compose_import_common import (
    ComposeValueError,
    Notes,
    Raw,
    as_bool,
    as_command,
    as_int,
    as_map,
    as_mode,
    as_seq,
    as_text,
    reference,
    required,
    str_map,
    text_list,
)
from envd.spec.compose_words import (
    COMPOSE_SECRET_MODE,
    CONDITION_FROM_COMPOSE,
    DEFAULT_COMPOSE_CONDITION,
)
from envd.spec.service_parts import PROPAGATIONS

# Compose's healthcheck defaults (envd's are shorter: 5s/10s).
COMPOSE_HEALTHCHECK_DEFAULTS = {
    "interval": "30s",
    "timeout": "30s",
    "retries": 3,
    "start_period": "0s",
}

_VOLUME_MODES = {"ro", "rw", "z", "Z", *PROPAGATIONS}


_BIND_KEYS = ("selinux", "propagation")


class FieldConverter(Notes):
    """The service fields with their own short and long syntaxes, each to envd's form."""

    def build(self, p: str, raw: Any) -> dict[str, Any] | None:
        if isinstance(raw, str):
            return {"context": raw}
        raw = as_map(f"{p}.build", raw)
        context = raw.get("context")
        out: dict[str, Any] = {
            "context": "." if context is None else as_text(f"{p}.build.context", context)
        }
        for k, v in raw.items():
            if k == "context":
                continue
            if k in ("dockerfile", "target"):
                out[k] = as_text(f"{p}.build.{k}", v)
            elif k == "args":
                args = str_map(f"{p}.build.args", v)
                for key, value in args.items():
                    if value is None:
                        self.note(
                            f"{p}.build.args.{key}",
                            f"an argument without a value; envd passes ${{{key}}} from the environment",
                        )
                out["args"] = {
                    k2: (reference(f"${{{k2}}}") if v2 is None else v2) for k2, v2 in args.items()
                }
            elif str(k).startswith("x-"):
                self.note(f"{p}.build.{k}", "extension ignored")
            else:
                self.unsupported(f"{p}.build.{k}")
        return out

    def ports(self, p: str, raw: list[Any]) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(raw):
            path = f"{p}.ports[{i}]"
            if isinstance(item, (int, str)) and not isinstance(item, bool):
                out.append(item if isinstance(item, str) else str(item))
                continue
            item = as_map(path, item)
            target = as_int(f"{path}.target", required(path, item, "target"), 1, 65535)
            port: dict[str, Any] = {"target": target}
            ip = as_text(f"{path}.host_ip", item["host_ip"]) if item.get("host_ip") else ""
            proto = item.get("protocol")
            proto = "tcp" if proto in (None, "") else as_text(f"{path}.protocol", proto)
            published = item.get("published")
            if published not in (None, ""):
                text = as_text(f"{path}.published", published)
                if re.fullmatch(r"[0-9]+-[0-9]+", text):
                    # A range maps to one envd entry per port: the short syntax says it.
                    short = f"{text}:{target}"
                    if ip:
                        short = f"{ip}:{short}"
                    out.append(short + (f"/{proto}" if proto != "tcp" else ""))
                    continue
                port["published"] = as_int(f"{path}.published", text, 0, 65535)
            if ip:
                port["host_ip"] = ip
            if proto != "tcp":
                port["protocol"] = proto
            for k in item:
                if k in ("target", "published", "host_ip", "protocol"):
                    continue
                if k == "mode":
                    mode = as_text(f"{path}.mode", item[k])
                    if mode != "ingress":
                        self.note(f"{path}.mode", f"{mode!r} ignored (envd publishes on the host)")
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
            item = as_map(path, item)
            kind = as_text(f"{path}.type", item.get("type", "volume"))
            target = as_text(f"{path}.target", required(path, item, "target"))
            if kind == "tmpfs":
                opts = []
                t = as_map(f"{path}.tmpfs", item.get("tmpfs"))
                if t.get("size") is not None:
                    opts.append(f"size={as_text(f'{path}.tmpfs.size', t['size'])}")
                if t.get("mode") is not None:
                    opts.append(f"mode={as_mode(f'{path}.tmpfs.mode', t['mode']):o}")
                if opts:
                    tmpfs.append(f"{target}:{','.join(opts)}")
                else:
                    out.append({"type": "tmpfs", "target": target})
                continue
            if kind not in ("volume", "bind"):
                self.unsupported(path, f"mount type {kind!r}")
                continue
            mount: dict[str, Any] = {"type": kind}
            if item.get("source") is not None:
                source = as_text(f"{path}.source", item["source"])
                if source:
                    mount["source"] = source
            mount["target"] = target
            if item.get("read_only") is not None and as_bool(
                f"{path}.read_only", item["read_only"]
            ):
                mount["read_only"] = True
            for k in item:
                if k in ("type", "source", "target", "read_only", "tmpfs"):
                    continue
                if k == "consistency":
                    self.note(f"{path}.consistency", "macOS-only; ignored")
                elif k == "bind":
                    for kk, vv in as_map(f"{path}.bind", item[k]).items():
                        if kk == "create_host_path":
                            if vv is not None and not as_bool(f"{path}.bind.create_host_path", vv):
                                mount["create_host_path"] = False
                            continue
                        if kk in ("selinux", "propagation") and vv is not None:
                            word = as_text(f"{path}.bind.{kk}", vv)
                            allowed = ("z", "Z") if kk == "selinux" else PROPAGATIONS
                            if word not in allowed:
                                raise ComposeValueError(
                                    f"{path}.bind.{kk}",
                                    f"{word!r} is not one of {', '.join(allowed)}",
                                )
                            mount[kk] = word
                            continue
                        self.unsupported(f"{path}.bind.{kk}")
                else:
                    self.unsupported(f"{path}.{k}")
            out.append(self.shorten(mount))
        return out, tmpfs

    @staticmethod
    def shorten(mount: dict[str, Any]) -> Any:
        """A long-syntax volume as the short string when nothing is lost."""
        src = mount.get("source", "")
        target = mount["target"]
        if (
            ":" in src
            or ":" in target
            or isinstance(src, Raw)
            or isinstance(target, Raw)
            or mount.get("create_host_path") is False
        ):
            # A value written with variables stays as written (a dict keeps it whole).
            return mount
        if mount["type"] == "volume":
            if not src:
                return target
            if src.startswith((".", "/", "~")):
                return mount
        elif not src.startswith((".", "/", "~")):
            return mount
        modes = ["ro" if mount.get("read_only") else "", *(mount.get(k, "") for k in _BIND_KEYS)]
        return f"{src}:{target}" + (":" + ",".join(m for m in modes if m) if any(modes) else "")

    def short_volume(self, path: str, text: str) -> str:
        """``SRC:TARGET:MODES`` split on its resolved text; the text as written when nothing changes."""
        parts = text.split(":")
        if len(parts) != 3:
            return text
        modes = parts[2].split(",")
        kept = [m for m in modes if m in _VOLUME_MODES]
        for m in modes:
            if m in ("cached", "delegated", "consistent"):
                self.note(path, f"mode {m} is macOS-only; ignored")
            elif m not in _VOLUME_MODES:
                self.note(path, f"mode {m} is not supported; ignored")
        if kept == modes:
            return text
        return ":".join(parts[:2] + ([",".join(kept)] if kept else []))

    def service_networks(self, p: str, raw: Any) -> Any:
        if isinstance(raw, list):
            return text_list(f"{p}.networks", raw)
        out: dict[str, Any] = {}
        plain = True
        for key, body in as_map(f"{p}.networks", raw).items():
            net: dict[str, Any] = {}
            for k, v in as_map(f"{p}.networks.{key}", body).items():
                if k == "aliases":
                    net["aliases"] = text_list(f"{p}.networks.{key}.aliases", v)
                    plain = False
                elif k in ("ipv4_address", "ipv6_address"):
                    if v is not None:
                        net[k] = as_text(f"{p}.networks.{key}.{k}", v)
                        plain = False
                else:
                    self.unsupported(f"{p}.networks.{key}.{k}")
            out[str(key)] = net
        return list(out) if plain else out

    def depends_on(self, p: str, raw: Any, ext: dict[str, Any]) -> dict[str, Any]:
        optional = set(text_list(f"x-envd.{p}.optional_depends_on", ext.get("optional_depends_on")))
        if isinstance(raw, list):
            return {d: "started" for d in text_list(f"{p}.depends_on", raw)}
        out: dict[str, Any] = {}
        for dep, body in as_map(f"{p}.depends_on", raw).items():
            body = as_map(f"{p}.depends_on.{dep}", body)
            cond = as_text(
                f"{p}.depends_on.{dep}.condition", body.get("condition", DEFAULT_COMPOSE_CONDITION)
            )
            if cond not in CONDITION_FROM_COMPOSE:
                self.note(f"{p}.depends_on.{dep}.condition", f"{cond!r} unknown; using 'started'")
            condition = CONDITION_FROM_COMPOSE.get(cond, "started")
            needed = body.get("required")
            required = (
                needed is None or as_bool(f"{p}.depends_on.{dep}.required", needed)
            ) and dep not in optional
            restart = body.get("restart") is not None and as_bool(
                f"{p}.depends_on.{dep}.restart", body["restart"]
            )
            for k in body:
                if k not in ("condition", "required", "restart"):
                    self.unsupported(f"{p}.depends_on.{dep}.{k}")
            entry: dict[str, Any] = {"condition": condition}
            if not required:
                entry["required"] = False
            if restart:
                entry["restart"] = True
            out[str(dep)] = condition if len(entry) == 1 else entry
        return out

    def healthcheck(self, p: str, raw: dict[str, Any]) -> dict[str, Any] | None:
        if raw.get("disable") is not None and as_bool(f"{p}.healthcheck.disable", raw["disable"]):
            return {"disable": True}
        test = raw.get("test")
        if test is None and not set(raw) - {"disable"}:
            return None  # `disable: false` alone, or nothing: no override, the image's own runs
        if test is None:
            self.note(
                f"{p}.healthcheck",
                "no 'test' (the image's own would be used): envd needs the test; left out",
            )
            return None
        if isinstance(test, list) and test and test[0] == "NONE":
            return {"disable": True}
        if test == []:
            raise ComposeValueError(
                f"{p}.healthcheck.test", "expected a command, got an empty list"
            )
        out: dict[str, Any] = {"test": as_command(f"{p}.healthcheck.test", test)}
        for key, default in COMPOSE_HEALTHCHECK_DEFAULTS.items():
            value = raw.get(key)
            value = default if value is None else value
            where = f"{p}.healthcheck.{key}"
            out[key] = as_int(where, value) if key == "retries" else as_text(where, value)
        if raw.get("start_interval") is not None:
            out["start_interval"] = as_text(
                f"{p}.healthcheck.start_interval", raw["start_interval"]
            )
        for k in raw:
            if k in ("test", "disable", "start_interval", *COMPOSE_HEALTHCHECK_DEFAULTS):
                continue
            self.unsupported(f"{p}.healthcheck.{k}")
        return out

    def service_secrets(self, p: str, raw: list[Any]) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(raw):
            path = f"{p}.secrets[{i}]"
            if isinstance(item, str):
                item = {"source": item}
            item = as_map(path, item)
            sec: dict[str, Any] = {
                "source": as_text(f"{path}.source", required(path, item, "source"))
            }
            for k in ("target", "uid", "gid"):
                if item.get(k) is not None:
                    sec[k] = as_text(f"{path}.{k}", item[k])
            # Compose mounts secrets world-readable unless told; envd's default is 0o400.
            mode = item.get("mode")
            mode = COMPOSE_SECRET_MODE if mode is None else mode
            sec["mode"] = as_mode(f"{path}.mode", mode)
            for k in item:
                if k not in ("source", "target", "uid", "gid", "mode"):
                    self.unsupported(f"{path}.{k}")
            out.append(sec)
        return out

    # configs (Compose's `configs`: read-only files)
    def service_configs(self, p: str, raw: list[Any]) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(raw):
            path = f"{p}.configs[{i}]"
            if isinstance(item, str):
                out.append(item)
                continue
            item = as_map(path, item)
            cfg: dict[str, Any] = {
                "source": as_text(f"{path}.source", required(path, item, "source"))
            }
            for k in ("target", "uid", "gid"):
                if item.get(k) is not None:
                    cfg[k] = as_text(f"{path}.{k}", item[k])
            if item.get("mode") is not None:
                cfg["mode"] = as_mode(f"{path}.mode", item["mode"])
            for k in item:
                if k not in ("source", "target", "uid", "gid", "mode"):
                    self.unsupported(f"{path}.{k}")
            out.append(cfg if len(cfg) > 1 else cfg["source"])
        return out

    def watch(self, p: str, develop: Any, ext: dict[str, Any]) -> list[dict[str, Any]]:
        if ext.get("watch") is not None:
            # envd's own rules, written by `envd export`: the same shape, read the same way.
            return self.watch_rules(f"x-envd.{p}.watch", ext["watch"])
        if develop is None:
            return []
        for k in as_map(f"{p}.develop", develop):
            if k != "watch":
                self.unsupported(f"{p}.develop.{k}")
        return self.watch_rules(f"{p}.develop.watch", develop.get("watch"))

    def watch_rules(self, p: str, raw: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, rule in enumerate(as_seq(p, raw)):
            where = f"{p}[{i}]"
            rule = as_map(where, rule)
            action = as_text(f"{where}.action", required(where, rule, "action"))
            if action not in ("sync", "rebuild", "restart", "sync+restart", "sync+exec"):
                self.unsupported(f"{where}.action", f"action {action!r}")
                continue
            r: dict[str, Any] = {
                "path": as_text(f"{where}.path", required(where, rule, "path")),
                "action": action,
            }
            if rule.get("target") is not None:
                target = as_text(f"{where}.target", rule["target"])
                if target:
                    r["target"] = target
            ignore = text_list(f"{where}.ignore", rule.get("ignore"))
            if ignore:
                r["ignore"] = ignore
            if rule.get("exec") is not None:
                r["exec"] = self.hook(f"{where}.exec", rule["exec"])
            if rule.get("initial_sync") is not None and not as_bool(
                f"{where}.initial_sync", rule["initial_sync"]
            ):
                self.note(
                    f"{where}.initial_sync",
                    "envd always brings a sync target up to the tree when it starts a container",
                )
            for k in rule:
                if k not in ("path", "action", "target", "ignore", "exec", "initial_sync"):
                    self.unsupported(f"{where}.{k}")
            out.append(r)
        return out

    # Lifecycle hooks: Compose's ServiceHook, for post_start / pre_stop and sync+exec.

    def hooks(self, p: str, raw: Any) -> list[dict[str, Any]]:
        return [self.hook(f"{p}[{i}]", item) for i, item in enumerate(as_seq(p, raw))]

    def hook(self, p: str, raw: Any) -> dict[str, Any]:
        body = as_map(p, raw)
        out: dict[str, Any] = {"command": as_command(f"{p}.command", required(p, body, "command"))}
        for key in ("user", "working_dir"):
            if body.get(key) is not None:
                out[key] = as_text(f"{p}.{key}", body[key])
        if body.get("privileged") is not None:
            out["privileged"] = as_bool(f"{p}.privileged", body["privileged"])
        env: dict[str, str] = {}
        for k, v in str_map(f"{p}.environment", body.get("environment")).items():
            if v is None:
                self.note(f"{p}.environment.{k}", "a variable without a value is left out")
            else:
                env[k] = v
        if env:
            out["environment"] = env
        for k in body:
            if k not in ("command", "user", "working_dir", "privileged", "environment"):
                self.unsupported(f"{p}.{k}")
        return out
