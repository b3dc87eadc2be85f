"""``envd import``: one Compose service as an envd service table."""

from __future__ import annotations

from typing import Any

from envd.interop.compose_import_common import (
    WHY_NOT,
    as_int,
    as_list,
    as_map,
    as_seq,
    as_str,
    str_map,
)
from envd.interop.compose_import_fields import FieldConverter
from envd.spec.compose_words import DEFAULT_RESTART_CONDITION, RESTART_FROM_CONDITION
from envd.values import labels

_PULL = {
    "always": "always",
    "never": "never",
    "missing": "missing",
    "if_not_present": "missing",
    "build": "build",
}


class ServiceConverter(FieldConverter):
    """One service: the plain fields here, the ones with a syntax of their own in ``FieldConverter``."""

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
                self.unsupported(f"{p}.{key}", WHY_NOT.get(str(key), ""))
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
                out[key] = [as_str(v) for v in value] if isinstance(value, list) else as_str(value)
        for key in ("working_dir", "user", "hostname"):
            if body.get(key) is not None:
                out[key] = as_str(body[key])
        if body.get("environment"):
            env = str_map(body["environment"])
            if any(v is None for v in env.values()):
                out["env"] = [k if v is None else f"{k}={v}" for k, v in env.items()]
            else:
                out["env"] = env
        if "env_file" in body:
            files = []
            for i, item in enumerate(as_list(body["env_file"])):
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
            out["ports"] = self.ports(p, as_seq(f"{p}.ports", body["ports"]))
        volumes, tmpfs = self.mounts(p, as_seq(f"{p}.volumes", body.get("volumes")))
        if volumes:
            out["volumes"] = volumes
        tmpfs = [str(t) for t in as_list(body.get("tmpfs"))] + tmpfs
        if tmpfs:
            out["tmpfs"] = tmpfs
        if body.get("networks"):
            out["networks"] = self.service_networks(p, body["networks"])
        if body.get("depends_on"):
            out["depends_on"] = self.depends_on(p, body["depends_on"], ext)
        if body.get("healthcheck") is not None:
            hc = self.healthcheck(p, as_map(f"{p}.healthcheck", body["healthcheck"]))
            if hc is not None:
                out["healthcheck"] = hc
        restart = body.get("restart")
        deploy = as_map(f"{p}.deploy", body.get("deploy"))
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
            cond = str(deploy["restart_policy"].get("condition", DEFAULT_RESTART_CONDITION))
            if cond in RESTART_FROM_CONDITION and RESTART_FROM_CONDITION[cond] != "no":
                out["restart"] = RESTART_FROM_CONDITION[cond]
        out["init"] = bool(body.get("init", False))
        if body.get("stop_signal") is not None:
            out["stop_signal"] = as_str(body["stop_signal"])
        if body.get("stop_grace_period") is not None:
            out["stop_grace_period"] = as_str(body["stop_grace_period"])
        if body.get("secrets"):
            out["secrets"] = self.service_secrets(p, as_seq(f"{p}.secrets", body["secrets"]))
        if body.get("labels"):
            user_labels = {}
            for k, v in str_map(body["labels"]).items():
                if k.startswith(labels.PREFIX):
                    self.note(
                        f"{p}.labels.{k}", f"the {labels.PREFIX} prefix is envd's own; left out"
                    )
                    continue
                user_labels[k] = v or ""
            if user_labels:
                out["labels"] = user_labels
        for key in ("read_only",):
            if body.get(key) is not None:
                out[key] = bool(body[key])
        for key in ("cap_add", "cap_drop"):
            if body.get(key):
                out[key] = [str(c) for c in as_seq(f"{p}.{key}", body[key])]
        replicas = None
        if "scale" in body:
            replicas = as_int(f"{p}.scale", body["scale"])
        if isinstance(deploy, dict):
            for k, v in deploy.items():
                if k == "replicas":
                    replicas = as_int(f"{p}.deploy.replicas", v)
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
            out["profiles"] = [str(x) for x in as_seq(f"{p}.profiles", body["profiles"])]
        watch = self.watch(p, body.get("develop"), ext)
        if watch:
            out["watch"] = watch
        return out
