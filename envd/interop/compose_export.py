"""``envd export --format compose``: a Compose file for Docker Compose 1.29 and v2.

What only newer Compose reads (the project ``name``, ``develop.watch``,
``depends_on.required``, secrets from the environment) goes to a top-level
``x-envd`` extension, which ``envd import`` reads back: envd → compose →
envd is lossless.
"""

from __future__ import annotations

from typing import Any

from envd.interop.compose_fields import (
    common_service,
    escape_dollars,
    port_short,
    service_networks,
    top_networks,
    top_volumes,
    volume_short,
)
from envd.interop.compose_host import compose_host
from envd.interop.render import X_ENVD, Export
from envd.spec.compose_words import CONDITION_TO_COMPOSE
from envd.spec.load import LoadedSpec
from envd.spec.models import Heal, Hook


def compose_hook(hook: Hook) -> dict[str, Any]:
    """A hook as Compose's ServiceHook: the fields that differ from their defaults."""
    out: dict[str, Any] = {"command": list(hook.command)}
    if hook.user:
        out["user"] = hook.user
    if hook.privileged:
        out["privileged"] = True
    if hook.working_dir:
        out["working_dir"] = hook.working_dir
    if hook.environment:
        out["environment"] = dict(hook.environment)
    return out


def to_compose(loaded: LoadedSpec) -> Export:
    """A Compose file for Docker Compose (1.29 and v2) and an ``x-envd`` extension."""
    spec = loaded.spec
    notes: list[str] = []
    extension: dict[str, Any] = {}
    if spec.project.name or loaded.environment:
        # Otherwise both envd and Compose name the project after its directory.
        extension["project"] = loaded.project
    ext_services: dict[str, Any] = {}
    services: dict[str, Any] = {}
    for name, svc in spec.services.items():
        where = f"services.{name}"
        out = common_service(name, svc)
        out.update(compose_host(svc))  # issue 12's host settings
        start_interval = (out.get("healthcheck") or {}).pop("start_interval", None)
        if start_interval:
            # Compose 1.29 refuses the key; v2 (≥ 2.20.2) reads it.
            ext_services.setdefault(name, {})["healthcheck_start_interval"] = start_interval
            notes.append(
                f"{where}.healthcheck.start_interval: needs Compose ≥ 2.20.2 and Docker API"
                f" 1.44; kept in {X_ENVD}"
            )
        if svc.build is not None:
            b: dict[str, Any] = {"context": svc.build.context}
            if svc.build.dockerfile != "Dockerfile":
                b["dockerfile"] = svc.build.dockerfile
            if svc.build.args:
                b["args"] = dict(svc.build.args)
            if svc.build.target:
                b["target"] = svc.build.target
            out = {**({"image": out.pop("image")} if "image" in out else {}), "build": b, **out}
        if svc.pull != "missing":
            out["pull_policy"] = svc.pull
        if svc.ports:
            out["ports"] = [port_short(p) for p in svc.ports]
        if svc.volumes:
            out["volumes"] = [volume_short(m) for m in svc.volumes]
        if svc.tmpfs:
            out["tmpfs"] = list(svc.tmpfs)
        nets = service_networks(svc)
        if nets is not None:
            out["networks"] = nets
        # names and networking
        if svc.container_name:
            out["container_name"] = svc.container_name
        if svc.expose:
            out["expose"] = list(svc.expose)
        if svc.network_mode:
            out["network_mode"] = svc.network_mode
        kept = sorted(m.target for m in svc.volumes if m.type == "bind" and not m.creates_host_path)
        if kept:
            ext_services.setdefault(name, {})["no_create_host_path"] = kept
            notes.append(
                f"{where}.volumes: bind.create_host_path = false for {', '.join(kept)} needs"
                f" Compose v2 (Compose 1.x refuses the option); kept in {X_ENVD}"
            )
        if svc.depends_on:
            out["depends_on"] = {
                dep: {
                    "condition": CONDITION_TO_COMPOSE[d.condition],
                    **({"restart": True} if d.restart else {}),
                }
                for dep, d in svc.depends_on.items()
            }
            optional = sorted(dep for dep, d in svc.depends_on.items() if not d.required)
            if optional:
                ext_services.setdefault(name, {})["optional_depends_on"] = optional
                notes.append(
                    f"{where}.depends_on: required = false for {', '.join(optional)} needs"
                    f" Compose ≥ 2.20 (depends_on.*.required); kept in {X_ENVD}"
                )
        if svc.restart != "no":
            out["restart"] = svc.restart
            if svc.restart == "on-failure" and svc.restart_max_attempts:
                out["restart"] = f"on-failure:{svc.restart_max_attempts}"
        if svc.replicas != 1:
            out.setdefault("deploy", {})["replicas"] = svc.replicas
        if svc.profiles:
            out["profiles"] = list(svc.profiles)
        if svc.watch:
            ext_services.setdefault(name, {})["watch"] = [
                {
                    k: v
                    for k, v in {
                        "path": r.path,
                        "action": r.action,
                        "target": r.target,
                        "ignore": list(r.ignore),
                        "exec": compose_hook(r.exec) if r.exec is not None else None,
                    }.items()
                    if v
                }
                for r in svc.watch
            ]
            notes.append(
                f"{where}.watch: develop.watch needs Compose ≥ 2.22 (`docker compose watch`);"
                f" the rules are kept in {X_ENVD}"
            )
        # supervisor: the daemon's healing and one-shot marks have no Compose field
        if svc.heal != Heal():
            ext_services.setdefault(name, {})["heal"] = {
                "enabled": svc.heal.enabled,
                "max": svc.heal.max,
                "window": f"{svc.heal.window:g}s",
                "backoff": f"{svc.heal.backoff:g}s",
            }
            notes.append(f"{where}.heal: Compose never heals; the policy is kept in {X_ENVD}")
        if svc.oneshot:
            ext_services.setdefault(name, {})["oneshot"] = True
            notes.append(f"{where}.oneshot: Compose has no such mark; kept in {X_ENVD}")
        for key, hooks in (("post_start", svc.post_start), ("pre_stop", svc.pre_stop)):
            if hooks:
                ext_services.setdefault(name, {})[key] = [compose_hook(h) for h in hooks]
                notes.append(
                    f"{where}.{key}: lifecycle hooks need Compose ≥ 2.30; kept in {X_ENVD}"
                )
        services[name] = out
    doc: dict[str, Any] = {"services": services}
    if spec.volumes:
        doc["volumes"] = top_volumes(spec)
    if spec.networks:
        doc["networks"] = top_networks(spec, stack=False)
    if spec.secrets:
        secrets: dict[str, Any] = {}
        ext_secrets: dict[str, Any] = {}
        for key, sdef in spec.secrets.items():
            if sdef.file is not None:
                secrets[key] = {"file": sdef.file}
                continue
            placeholder = f"./secrets/{key}"
            secrets[key] = {"file": placeholder}
            if sdef.env is not None:
                ext_secrets[key] = {"env": sdef.env}
                notes.append(
                    f"secrets.{key}: a secret from ${sdef.env} needs Compose ≥ 2.6"
                    f" (environment: {sdef.env}); for Compose 1.x write its value to"
                    f" {placeholder} (the source is kept in {X_ENVD})"
                )
            else:
                assert sdef.command is not None
                ext_secrets[key] = {"command": list(sdef.command)}
                notes.append(
                    f"secrets.{key}: Compose cannot run a command for a secret; write the"
                    f" output of `{' '.join(sdef.command)}` to {placeholder}"
                    f" (the command is kept in {X_ENVD})"
                )
        doc["secrets"] = secrets
        if ext_secrets:
            extension["secrets"] = ext_secrets
    if spec.configs:  # configs (Compose's `configs`: read-only files)
        from envd.interop.config_export import compose_configs

        doc["configs"] = compose_configs(spec, notes)
    if ext_services:
        extension["services"] = ext_services
    if spec.environments:
        notes.append(
            "environments: Compose has no overlays; exported the "
            + (f"{loaded.environment!r}" if loaded.environment else "base")
            + " spec (use --env NAME for another, or Compose's -f override files)"
        )
    if extension:
        doc[X_ENVD] = extension
    header = (
        f"# Exported by envd from {loaded.file.name} (project {loaded.project}).\n"
        f"# Run it with: docker compose -p {loaded.project} up\n"
    )
    return Export("compose", [escape_dollars(doc)], notes, header)
