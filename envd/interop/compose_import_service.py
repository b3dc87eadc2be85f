"""``envd import``: one Compose service as an envd service table."""

from __future__ import annotations

from typing import Any

from envd.interop.compose_import_common import (
    WHY_NOT,
    as_bool,
    as_command,
    as_int,
    as_list,
    as_map,
    as_seq,
    as_text,
    compose_words_of,
    str_map,
    text_list,
)
from envd.interop.compose_import_fields import FieldConverter
from envd.interop.compose_import_host import HOST_FIELDS, HostFieldConverter
from envd.interop.compose_import_net import NetConverter
from envd.spec.compose_words import DEFAULT_RESTART_CONDITION, RESTART_FROM_CONDITION
from envd.values import labels

_PULL = {
    "always": "always",
    "never": "never",
    "missing": "missing",
    "if_not_present": "missing",
    "build": "build",
}


class ServiceConverter(FieldConverter, HostFieldConverter, NetConverter):
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
            "container_name",  # names and networking: compose_import_net
            "expose",
            "network_mode",
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
            "configs",  # configs (Compose's `configs`: read-only files)
            "post_start",
            "pre_stop",
        }
        handled |= HOST_FIELDS  # issue 12's host settings: compose_import_host
        for key in body:
            if key in handled:
                continue
            if str(key).startswith("x-"):
                self.note(f"{p}.{key}", "extension ignored")
            else:
                self.unsupported(f"{p}.{key}", WHY_NOT.get(str(key), ""))
        if body.get("image") is not None:
            out["image"] = as_text(f"{p}.image", body["image"])
        if body.get("build") is not None:
            build = self.build(p, body["build"])
            if build is not None:
                out["build"] = build
        if body.get("pull_policy") is not None:
            policy = as_text(f"{p}.pull_policy", body["pull_policy"])
            if policy in _PULL:
                if _PULL[policy] != "missing":
                    out["pull"] = _PULL[policy]
            else:
                self.note(
                    f"{p}.pull_policy", f"{policy!r} is not supported; envd pulls when missing"
                )
        for key in ("command", "entrypoint"):
            if key in body and body[key] is not None:
                out[key] = as_command(f"{p}.{key}", body[key])
                if isinstance(out[key], str):
                    words, rest = compose_words_of(out[key])
                    if rest:
                        # Compose's shell-word split ends at an operator: it runs the
                        # words before it only. So does envd, and says so.
                        out[key] = words
                        self.note(
                            f"{p}.{key}",
                            f"Compose runs only {' '.join(words)!r} (its split stops at"
                            f' {rest!r}); so does envd. Write it as ["sh", "-c", …] to run all',
                        )
        for key in ("working_dir", "user", "hostname"):
            if body.get(key) is not None:
                out[key] = as_text(f"{p}.{key}", body[key])
        env = str_map(f"{p}.environment", body.get("environment"))
        if env:
            if any(v is None for v in env.values()):
                out["env"] = [k if v is None else f"{k}={v}" for k, v in env.items()]
            else:
                out["env"] = env
        if body.get("env_file") is not None:
            files = []
            for i, item in enumerate(as_list(body["env_file"])):
                if isinstance(item, dict):
                    files.append(as_text(f"{p}.env_file[{i}].path", item.get("path")))
                    required = item.get("required")
                    if required is not None and not as_bool(
                        f"{p}.env_file[{i}].required", required
                    ):
                        self.note(
                            f"{p}.env_file[{i}]",
                            "required: false is not supported; envd needs the file to exist",
                        )
                    if item.get("format"):
                        self.unsupported(f"{p}.env_file[{i}].format")
                else:
                    files.append(as_text(f"{p}.env_file[{i}]", item))
            out["env_file"] = files
        ports = self.ports(p, as_seq(f"{p}.ports", body.get("ports")))
        if ports:
            out["ports"] = ports
        volumes, tmpfs = self.mounts(p, as_seq(f"{p}.volumes", body.get("volumes")))
        if volumes:
            out["volumes"] = volumes
        tmpfs = [as_text(f"{p}.tmpfs", t) for t in as_list(body.get("tmpfs"))] + tmpfs
        if tmpfs:
            out["tmpfs"] = tmpfs
        if body.get("networks") is not None:
            out["networks"] = self.service_networks(p, body["networks"])
        if body.get("depends_on") is not None:
            out["depends_on"] = self.depends_on(p, body["depends_on"], ext)
        if body.get("healthcheck") is not None:
            hc = self.healthcheck(p, as_map(f"{p}.healthcheck", body["healthcheck"]))
            if hc is not None:
                out["healthcheck"] = hc
        restart = body.get("restart")
        deploy = as_map(f"{p}.deploy", body.get("deploy"))
        if restart is not None:
            text = "no" if restart is False else as_text(f"{p}.restart", restart)
            if text != "no":
                out["restart"] = text
        elif deploy.get("restart_policy") is not None:
            policy_path = f"{p}.deploy.restart_policy"
            policy_body = as_map(policy_path, deploy["restart_policy"])
            cond = as_text(
                f"{policy_path}.condition",
                policy_body.get("condition", DEFAULT_RESTART_CONDITION),
            )
            if cond in RESTART_FROM_CONDITION and RESTART_FROM_CONDITION[cond] != "no":
                out["restart"] = RESTART_FROM_CONDITION[cond]
        init = body.get("init")
        out["init"] = False if init is None else as_bool(f"{p}.init", init)
        if body.get("stop_signal") is not None:
            out["stop_signal"] = as_text(f"{p}.stop_signal", body["stop_signal"])
        if body.get("stop_grace_period") is not None:
            out["stop_grace_period"] = as_text(f"{p}.stop_grace_period", body["stop_grace_period"])
        if body.get("secrets") is not None:
            out["secrets"] = self.service_secrets(p, as_seq(f"{p}.secrets", body["secrets"]))
        if body.get("configs") is not None:
            out["configs"] = self.service_configs(p, as_seq(f"{p}.configs", body["configs"]))
        if body.get("labels") is not None:
            user_labels = {}
            for k, v in str_map(f"{p}.labels", body["labels"]).items():
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
                out[key] = as_bool(f"{p}.{key}", body[key])
        for key in ("cap_add", "cap_drop"):
            if body.get(key) is not None:
                caps = text_list(f"{p}.{key}", body[key])
                if caps:
                    out[key] = caps
        replicas = None
        if body.get("scale") is not None:
            replicas = as_int(f"{p}.scale", body["scale"])
        if isinstance(deploy, dict):
            for k, v in deploy.items():
                if k == "replicas":
                    if v is not None:
                        replicas = as_int(f"{p}.deploy.replicas", v)
                elif k == "restart_policy":
                    extra = [kk for kk in as_map(f"{p}.deploy.{k}", v) if kk != "condition"]
                    for kk in extra:
                        self.unsupported(f"{p}.deploy.restart_policy.{kk}")
                    if restart is not None:
                        self.note(f"{p}.deploy.restart_policy", "'restart' is set too; it wins")
                elif k == "mode" and v == "replicated":
                    continue
                elif k == "resources":
                    continue  # host_fields reads it
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
        out.update(self.host_fields(p, body, deploy))
        self.ext_start_interval(p, out, ext)
        profiles = text_list(f"{p}.profiles", body.get("profiles"))
        if profiles:
            out["profiles"] = profiles
        watch = self.watch(p, body.get("develop"), ext)
        if watch:
            out["watch"] = watch
        # supervisor: envd-only fields an export kept in x-envd
        if ext.get("heal") is not None:
            heal = as_map(f"x-envd.{p}.heal", ext["heal"])
            out["heal"] = {str(k): v for k, v in heal.items()}
        if ext.get("oneshot") is not None and as_bool(f"x-envd.{p}.oneshot", ext["oneshot"]):
            out["oneshot"] = True
        for key in ("post_start", "pre_stop"):
            # envd's export keeps hooks in x-envd (Compose < 2.30 refuses them).
            raw, where = (
                (ext[key], f"x-envd.{p}.{key}") if key in ext else (body.get(key), f"{p}.{key}")
            )
            hooks = self.hooks(where, raw) if raw is not None else []
            if hooks:
                out[key] = hooks
        self.names_and_network(p, body, out)
        self.no_create_host_path(p, out, ext)
        return out
