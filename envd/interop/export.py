"""``envd export``: the spec as a Compose file, a swarm stack file or Kubernetes manifests.

Pure functions of a ``LoadedSpec``: no engine, no clock. Each returns an
``Export``: the documents plus a list of notes, one per thing the target
format cannot express, so nothing is dropped silently (docs/formats.md has
the full mapping).

* ``compose``: what Docker Compose 1.29 and Compose v2 both accept. What
  only newer Compose reads (the project ``name``, ``develop.watch``,
  ``depends_on.required``, secrets from the environment) goes to a top-level
  ``x-envd`` extension, which ``envd import`` reads back: envd → compose →
  envd is lossless.
* ``swarm``: a version 3.9 stack file for ``docker stack deploy``, with the
  same mapping as ``envd deploy --target swarm`` (restart condition, update
  order, overlay networks).
* ``k8s``: a Deployment and a Service per service, a Secret per secret
  (without values unless given), a PersistentVolumeClaim per named volume,
  probes from healthchecks.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envd.spec.durations import format_duration
from envd.spec.load import LoadedSpec
from envd.spec.models import Healthcheck, Port, Service, Spec, VolumeMount

FORMATS = ("compose", "swarm", "k8s")
X_ENVD = "x-envd"


@dataclass
class Export:
    format: str
    documents: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    header: str = ""


def export(
    loaded: LoadedSpec, fmt: str, secret_values: Mapping[str, bytes] | None = None
) -> Export:
    if fmt == "compose":
        return to_compose(loaded)
    if fmt == "swarm":
        return to_stack(loaded)
    if fmt == "k8s":
        return to_k8s(loaded, secret_values)
    raise ValueError(f"unknown export format {fmt!r}")


def render_yaml(result: Export, path: str | None = None) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    parts = [
        yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
        for doc in result.documents
    ]
    body = "---\n".join(parts)
    return (result.header + body) if result.header else body


# --------------------------------------------------------------------------- shared


def _port_short(p: Port) -> str:
    """``[HOST_IP:][PUBLISHED:]TARGET/PROTO``: the syntax every Compose accepts."""
    text = str(p.target)
    if p.published:
        text = f"{p.published}:{text}"
    elif p.host_ip:
        text = f":{text}"
    if p.host_ip:
        ip = f"[{p.host_ip}]" if ":" in p.host_ip else p.host_ip
        text = f"{ip}:{text}"
    return f"{text}/{p.protocol}" if p.protocol != "tcp" else text


def _volume_short(m: VolumeMount) -> str | dict[str, Any]:
    if m.type == "tmpfs":
        return {"type": "tmpfs", "target": m.target}
    if not m.source:
        return m.target
    source = m.source
    if m.type == "bind" and not source.startswith((".", "/", "~")):
        source = "./" + source
    return f"{source}:{m.target}" + (":ro" if m.read_only else "")


def _healthcheck(h: Healthcheck) -> dict[str, Any]:
    if h.disable or (h.test and h.test[0] == "NONE"):
        return {"disable": True}
    return {
        "test": list(h.test),
        "interval": format_duration(h.interval),
        "timeout": format_duration(h.timeout),
        "retries": h.retries,
        "start_period": format_duration(h.start_period),
    }


COMPOSE_SECRET_MODE = 0o444  # Compose's default; envd's is 0o400


def _secret_ref(s: Any) -> str | dict[str, Any]:
    if not s.target and s.uid == "0" and s.gid == "0" and s.mode == COMPOSE_SECRET_MODE:
        return str(s.source)
    out: dict[str, Any] = {"source": s.source}
    if s.target:
        out["target"] = s.target
    out.update({"uid": s.uid, "gid": s.gid, "mode": s.mode})
    return out


_CONDITIONS = {
    "started": "service_started",
    "healthy": "service_healthy",
    "completed": "service_completed_successfully",
}


def _env(svc: Service) -> dict[str, str | None]:
    return dict(svc.env)


def _common_service(name: str, svc: Service) -> dict[str, Any]:
    """Fields that mean the same in a Compose file and a stack file."""
    out: dict[str, Any] = {}
    if svc.image:
        out["image"] = svc.image
    if svc.command is not None:
        out["command"] = list(svc.command)
    if svc.entrypoint is not None:
        out["entrypoint"] = list(svc.entrypoint)
    if svc.working_dir:
        out["working_dir"] = svc.working_dir
    if svc.user:
        out["user"] = svc.user
    if svc.hostname:
        out["hostname"] = svc.hostname
    if svc.env:
        out["environment"] = _env(svc)
    if svc.env_file:
        out["env_file"] = list(svc.env_file)
    if svc.healthcheck is not None:
        out["healthcheck"] = _healthcheck(svc.healthcheck)
    out["init"] = svc.init
    if svc.stop_signal != "SIGTERM":
        out["stop_signal"] = svc.stop_signal
    if svc.stop_grace_period != 10.0:
        out["stop_grace_period"] = format_duration(svc.stop_grace_period)
    if svc.secrets:
        out["secrets"] = [_secret_ref(s) for s in svc.secrets]
    if svc.labels:
        out["labels"] = dict(svc.labels)
    if svc.read_only:
        out["read_only"] = True
    if svc.cap_add:
        out["cap_add"] = list(svc.cap_add)
    if svc.cap_drop:
        out["cap_drop"] = list(svc.cap_drop)
    return out


def _networks(svc: Service) -> list[str] | dict[str, Any] | None:
    if not svc.networks:
        return None
    if all(not n.aliases for n in svc.networks.values()):
        return list(svc.networks)
    return {
        k: ({"aliases": list(n.aliases)} if n.aliases else None) for k, n in svc.networks.items()
    }


def _top_volumes(spec: Spec, stack: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in spec.volumes.items():
        d: dict[str, Any] = {}
        if v.external:
            d["external"] = True
        if v.name:
            d["name"] = v.name
        if v.driver != "local":
            d["driver"] = v.driver
        if v.driver_opts:
            d["driver_opts"] = dict(v.driver_opts)
        if v.labels:
            d["labels"] = dict(v.labels)
        out[key] = d
    return out


def _top_networks(spec: Spec, stack: bool, notes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, n in spec.networks.items():
        d: dict[str, Any] = {}
        if n.external:
            d["external"] = True
        if n.name:
            d["name"] = n.name
        driver = n.driver
        if stack and driver == "bridge":
            driver = "overlay"
        if driver != "bridge" or stack:
            d["driver"] = driver
        if stack and not n.external:
            d["attachable"] = True
        if n.internal:
            d["internal"] = True
        if n.labels:
            d["labels"] = dict(n.labels)
        out[key] = d
    return out


# --------------------------------------------------------------------------- compose


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
        out = _common_service(name, svc)
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
            out["ports"] = [_port_short(p) for p in svc.ports]
        if svc.volumes:
            out["volumes"] = [_volume_short(m) for m in svc.volumes]
        if svc.tmpfs:
            out["tmpfs"] = list(svc.tmpfs)
        nets = _networks(svc)
        if nets is not None:
            out["networks"] = nets
        if svc.depends_on:
            out["depends_on"] = {
                dep: {"condition": _CONDITIONS[d.condition]} for dep, d in svc.depends_on.items()
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
        if svc.replicas != 1:
            out["deploy"] = {"replicas": svc.replicas}
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
                    }.items()
                    if v
                }
                for r in svc.watch
            ]
            notes.append(
                f"{where}.watch: develop.watch needs Compose ≥ 2.22 (`docker compose watch`);"
                f" the rules are kept in {X_ENVD}"
            )
        services[name] = out
    doc: dict[str, Any] = {"services": services}
    if spec.volumes:
        doc["volumes"] = _top_volumes(spec)
    if spec.networks:
        doc["networks"] = _top_networks(spec, False, notes)
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
    return Export("compose", [doc], notes, header)


# --------------------------------------------------------------------------- stack


def to_stack(loaded: LoadedSpec) -> Export:
    """A stack file (Compose 3.9) for ``docker stack deploy``, mapped like ``envd deploy``."""
    from envd.swarm.mapping import restart_condition

    spec = loaded.spec
    notes: list[str] = []
    services: dict[str, Any] = {}
    active = loaded.active_services()
    for name, svc in spec.services.items():
        where = f"services.{name}"
        if name not in active:
            notes.append(
                f"{where}: left out, its profiles ({', '.join(svc.profiles)}) are not active"
                " (a stack has no profiles; pass --profile to include it)"
            )
            continue
        out = _common_service(name, svc)
        if svc.build is not None:
            tag = svc.image or f"{loaded.project}-{name}:envd"
            out = {"image": tag, **out}
            notes.append(
                f"{where}.build: a stack cannot build; build and push {tag} to a registry"
                " every node can pull from"
            )
        if svc.pull != "missing":
            notes.append(
                f"{where}.pull: swarm nodes always pull tags; pull = {svc.pull!r} is unused"
            )
        ports = []
        for p in svc.ports:
            port: dict[str, Any] = {"target": p.target, "protocol": p.protocol, "mode": "ingress"}
            if p.published:
                port["published"] = p.published
            if p.host_ip:
                notes.append(
                    f"{where}.ports: host_ip {p.host_ip} cannot be expressed in a stack; the"
                    " routing mesh publishes on every interface"
                )
            ports.append(port)
        if ports:
            out["ports"] = ports
        volumes: list[Any] = []
        writable = False
        for m in svc.volumes:
            volumes.append(_volume_short(m))
            if m.type in ("volume", "bind") and m.source and not m.read_only:
                writable = True
            if m.type == "bind":
                notes.append(
                    f"{where}.volumes: bind mount {m.source} must exist on every node (a stack"
                    " resolves it relative to the stack file)"
                )
        for entry in svc.tmpfs:
            path, _, opts = entry.partition(":")
            tm: dict[str, Any] = {"type": "tmpfs", "target": path}
            size = re.search(r"(?:^|,)size=(\d+)(?:,|$)", opts)
            if size:
                tm["tmpfs"] = {"size": int(size.group(1))}
            elif opts:
                notes.append(
                    f"{where}.tmpfs: options {opts!r} of {path}: a stack takes a size in bytes only"
                )
            volumes.append(tm)
        if volumes:
            out["volumes"] = volumes
        nets = _networks(svc)
        if nets is not None:
            out["networks"] = nets
        if svc.depends_on:
            notes.append(
                f"{where}.depends_on: `docker stack deploy` ignores depends_on; the service must"
                " retry until its dependencies answer"
            )
        deploy: dict[str, Any] = {"replicas": svc.replicas}
        deploy["restart_policy"] = {"condition": restart_condition(svc.restart)}
        order = "stop-first" if writable else "start-first"
        deploy["update_config"] = {"parallelism": 1, "order": order, "failure_action": "rollback"}
        out["deploy"] = deploy
        if svc.watch:
            notes.append(f"{where}.watch: a stack has no hot reload; the rules are unused")
        services[name] = out
    doc: dict[str, Any] = {"version": "3.9", "services": services}
    if spec.volumes:
        doc["volumes"] = _top_volumes(spec, stack=True)
    networks = _top_networks(spec, True, notes)
    used = {n for s in active.values() for n in (s.networks or ["default"])}
    if "default" in used and "default" not in networks:
        networks["default"] = {"driver": "overlay", "attachable": True}
    if networks:
        doc["networks"] = networks
    if spec.secrets:
        secrets: dict[str, Any] = {}
        for key, sdef in spec.secrets.items():
            if sdef.file is not None:
                secrets[key] = {"file": sdef.file}
            else:
                secrets[key] = {"external": True, "name": f"{loaded.project}_{key}"}
                how = f"${sdef.env}" if sdef.env else f"`{' '.join(sdef.command or [])}`"
                notes.append(
                    f"secrets.{key}: a stack reads secrets from files; create it first:"
                    f" printf %s {how} | docker secret create {loaded.project}_{key} -"
                )
        doc["secrets"] = secrets
    header = (
        f"# Exported by envd from {loaded.file.name} (project {loaded.project}).\n"
        f"# Deploy it with: docker stack deploy -c FILE {loaded.project}\n"
    )
    return Export("swarm", [doc], notes, header)


# --------------------------------------------------------------------------- kubernetes

_K8S_NAME = re.compile(r"[^a-z0-9-]+")


def k8s_name(name: str) -> str:
    """A DNS-1123 label: lowercase letters, digits and '-', at most 63 characters."""
    clean = _K8S_NAME.sub("-", name.lower()).strip("-")[:63].strip("-")
    return clean or "x"


def _probe(h: Healthcheck) -> dict[str, Any] | None:
    if h.disable or not h.test or h.test[0] == "NONE":
        return None
    command = list(h.test[1:]) if h.test[0] == "CMD" else ["/bin/sh", "-c", h.test[1]]
    probe: dict[str, Any] = {
        "exec": {"command": command},
        "periodSeconds": max(1, round(h.interval)),
        "timeoutSeconds": max(1, round(h.timeout)),
        "failureThreshold": h.retries,
    }
    if h.start_period:
        probe["initialDelaySeconds"] = round(h.start_period)
    return probe


_PULL = {"missing": "IfNotPresent", "always": "Always", "never": "Never", "build": "IfNotPresent"}


def _size_limit(opts: str) -> str | None:
    m = re.search(r"(?:^|,)size=(\d+)([kmgKMG]?)(?:,|$)", opts)
    if not m:
        return None
    unit = {"": "", "k": "Ki", "m": "Mi", "g": "Gi"}[m.group(2).lower()]
    return f"{m.group(1)}{unit}"


def to_k8s(loaded: LoadedSpec, secret_values: Mapping[str, bytes] | None = None) -> Export:
    """Kubernetes manifests: Deployments, Services, Secrets, PersistentVolumeClaims."""
    spec = loaded.spec
    project = loaded.project
    notes: list[str] = []
    docs: list[dict[str, Any]] = []
    part_of = {"app.kubernetes.io/part-of": k8s_name(project)}
    managed = {"app.kubernetes.io/managed-by": "envd"}
    active = loaded.active_services()

    for name, svc in spec.services.items():
        if name not in active:
            notes.append(
                f"services.{name}: left out, its profiles ({', '.join(svc.profiles)}) are not"
                " active (pass --profile to include it)"
            )
    for name in active:
        if k8s_name(name) != name:
            notes.append(
                f"services.{name}: named {k8s_name(name)} in Kubernetes (DNS-1123); other"
                f" services must use that name to reach it"
            )

    # Secrets first, then claims: what the Deployments refer to.
    used_secrets = {s.source for svc in active.values() for s in svc.secrets}
    for key in sorted(used_secrets):
        secret: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": k8s_name(key), "labels": {**part_of, **managed}},
            "type": "Opaque",
        }
        if secret_values is not None and key in secret_values:
            secret["data"] = {"value": base64.b64encode(secret_values[key]).decode("ascii")}
        else:
            secret["data"] = {}
            notes.append(
                f"secrets.{key}: the Secret has no value (pass --secret-values to include it,"
                f" or: kubectl create secret generic {k8s_name(key)} --from-file=value=FILE)"
            )
        docs.append(secret)
    used_volumes = {
        m.source for svc in active.values() for m in svc.volumes if m.type == "volume" and m.source
    }
    for key in sorted(used_volumes):
        vdef = spec.volumes[key]
        if vdef.external:
            notes.append(
                f"volumes.{key}: external; a PersistentVolumeClaim named"
                f" {k8s_name(vdef.name or key)} must exist"
            )
            continue
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": k8s_name(key), "labels": {**part_of, **managed}},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        )
        notes.append(
            f"volumes.{key}: a PersistentVolumeClaim of 1Gi (ReadWriteOnce); adjust the size"
        )
        if vdef.driver != "local" or vdef.driver_opts:
            notes.append(
                f"volumes.{key}: driver {vdef.driver!r} and its options have no equivalent; use a StorageClass"
            )

    for name, svc in active.items():
        docs.extend(_k8s_service(loaded, name, svc, notes, part_of, managed))
    for key, net in spec.networks.items():
        if net.internal or net.driver != "bridge" or net.labels:
            notes.append(
                f"networks.{key}: Kubernetes has one flat pod network; use a NetworkPolicy"
                " to isolate services"
            )
    if spec.environments:
        notes.append(
            "environments: exported the "
            + (f"{loaded.environment!r}" if loaded.environment else "base")
            + " spec (use --env NAME for another)"
        )
    header = (
        f"# Exported by envd from {loaded.file.name} (project {project}).\n"
        "# Apply with: kubectl apply -f FILE\n"
    )
    return Export("k8s", docs, notes, header)


def _k8s_service(
    loaded: LoadedSpec,
    name: str,
    svc: Service,
    notes: list[str],
    part_of: dict[str, str],
    managed: dict[str, str],
) -> list[dict[str, Any]]:
    where = f"services.{name}"
    kname = k8s_name(name)
    selector = {"app.kubernetes.io/name": kname, **part_of}
    image = svc.image or f"{loaded.project}-{name}:envd"
    if svc.build is not None:
        notes.append(
            f"{where}.build: Kubernetes cannot build; build and push {image} to a registry"
        )
    container: dict[str, Any] = {
        "name": kname,
        "image": image,
        "imagePullPolicy": _PULL[svc.pull],
    }
    if svc.entrypoint is not None:
        container["command"] = list(svc.entrypoint)
        if not svc.entrypoint:
            notes.append(
                f"{where}.entrypoint: an empty entrypoint cannot clear the image's in Kubernetes"
            )
    if svc.command is not None:
        container["args"] = list(svc.command)
    if svc.working_dir:
        container["workingDir"] = svc.working_dir
    env: dict[str, str] = dict(loaded.env_files.get(name, {}))
    if svc.env_file:
        notes.append(f"{where}.env_file: its variables are written into the Deployment's env")
    for key, value in svc.env.items():
        if value is None:
            if key in loaded.variables:
                env[key] = loaded.variables[key]
            else:
                notes.append(
                    f"{where}.env.{key}: passed through from the environment but unset; left out"
                )
        else:
            env[key] = value
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if svc.ports:
        container["ports"] = [
            {"containerPort": p.target, "protocol": p.protocol.upper()} for p in svc.ports
        ]
    if svc.healthcheck is not None:
        probe = _probe(svc.healthcheck)
        if probe is not None:
            container["readinessProbe"] = probe
            container["livenessProbe"] = dict(probe)
    security: dict[str, Any] = {}
    if svc.user:
        uid, _, gid = svc.user.partition(":")
        if uid.isdigit():
            security["runAsUser"] = int(uid)
        if gid.isdigit():
            security["runAsGroup"] = int(gid)
        if not uid.isdigit() or (gid and not gid.isdigit()):
            notes.append(f"{where}.user: {svc.user!r}: Kubernetes takes numeric ids only")
    if svc.read_only:
        security["readOnlyRootFilesystem"] = True
    caps: dict[str, Any] = {}
    if svc.cap_add:
        caps["add"] = [c.removeprefix("CAP_") for c in svc.cap_add]
    if svc.cap_drop:
        caps["drop"] = [c.removeprefix("CAP_") for c in svc.cap_drop]
    if caps:
        security["capabilities"] = caps
    if security:
        container["securityContext"] = security

    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for i, m in enumerate(svc.volumes):
        vname = f"vol-{i}"
        if m.type == "volume" and m.source:
            vdef = loaded.spec.volumes[m.source]
            claim = k8s_name(vdef.name or m.source) if vdef.external else k8s_name(m.source)
            volumes.append({"name": vname, "persistentVolumeClaim": {"claimName": claim}})
        elif m.type == "bind":
            notes.append(
                f"{where}.volumes: bind mount {m.source} became a hostPath volume; it must exist"
                " on the node (a ConfigMap or an image layer is more portable)"
            )
            path = m.source
            if not path.startswith("/"):
                path = posixpath.normpath(str(loaded.project_dir / path))
            volumes.append({"name": vname, "hostPath": {"path": path}})
        elif m.type == "tmpfs":
            volumes.append({"name": vname, "emptyDir": {"medium": "Memory"}})
        else:
            volumes.append({"name": vname, "emptyDir": {}})
        mount: dict[str, Any] = {"name": vname, "mountPath": m.target}
        if m.read_only:
            mount["readOnly"] = True
        mounts.append(mount)
    for i, entry in enumerate(svc.tmpfs):
        path, _, opts = entry.partition(":")
        empty: dict[str, Any] = {"medium": "Memory"}
        limit = _size_limit(opts)
        if limit:
            empty["sizeLimit"] = limit
        rest = [o for o in opts.split(",") if o and not o.startswith("size=")]
        if rest:
            notes.append(f"{where}.tmpfs: options {','.join(rest)} of {path} have no equivalent")
        volumes.append({"name": f"tmpfs-{i}", "emptyDir": empty})
        mounts.append({"name": f"tmpfs-{i}", "mountPath": path})
    for i, s in enumerate(svc.secrets):
        target = s.path
        vname = f"secret-{i}"
        file = posixpath.basename(target)
        volumes.append(
            {
                "name": vname,
                "secret": {
                    "secretName": k8s_name(s.source),
                    "items": [{"key": "value", "path": file, "mode": s.mode}],
                },
            }
        )
        mounts.append({"name": vname, "mountPath": target, "subPath": file, "readOnly": True})
        if s.uid != "0" or s.gid != "0":
            notes.append(
                f"{where}.secrets.{s.source}: uid/gid {s.uid}/{s.gid}: Kubernetes mounts secret"
                " files as root (set the pod's fsGroup for group access)"
            )
    if mounts:
        container["volumeMounts"] = mounts

    pod: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": round(svc.stop_grace_period),
    }
    if volumes:
        pod["volumes"] = volumes
    if svc.hostname:
        pod["hostname"] = k8s_name(svc.hostname)
    if svc.restart in ("no", "on-failure"):
        notes.append(
            f"{where}.restart: {svc.restart!r}: a Deployment always restarts its pods"
            " (restartPolicy Always); use a Job for run-to-completion work"
        )
    if svc.depends_on:
        notes.append(
            f"{where}.depends_on: Kubernetes starts pods in any order; readiness probes gate"
            " traffic, the service must retry until "
            + ", ".join(sorted(svc.depends_on))
            + " answer"
        )
    if svc.init:
        notes.append(
            f"{where}.init: Kubernetes has no init process option; use an image with tini as its"
            " entrypoint if the service spawns children"
        )
    if svc.stop_signal not in ("SIGTERM", "15"):
        notes.append(f"{where}.stop_signal: {svc.stop_signal}: Kubernetes always sends SIGTERM")
    if svc.watch:
        notes.append(
            f"{where}.watch: hot reload has no Kubernetes equivalent; the rules are unused"
        )
    if svc.pull == "build":
        notes.append(f"{where}.pull: 'build' has no Kubernetes equivalent (IfNotPresent)")
    for key, net in svc.networks.items():
        if net.aliases:
            notes.append(
                f"{where}.networks.{key}: aliases {', '.join(net.aliases)}: Kubernetes reaches a"
                f" service by its Service name ({kname}) only"
            )
    for p in svc.ports:
        if p.published:
            ip = f"{p.host_ip}:" if p.host_ip else ""
            notes.append(
                f"{where}.ports: host port {ip}{p.published} is not published; reach the"
                f" Service with `kubectl port-forward svc/{kname} {p.published}:{p.target}`"
                " or add an Ingress"
            )

    meta: dict[str, Any] = {"name": kname, "labels": {**selector, **managed}}
    template_meta: dict[str, Any] = {"labels": selector}
    if svc.labels:
        # Docker labels allow any key and value; Kubernetes labels do not.
        template_meta["annotations"] = dict(svc.labels)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": svc.replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": template_meta, "spec": pod},
        },
    }
    out = [deployment]
    if svc.ports:
        seen: set[tuple[int, str]] = set()
        ports = []
        for p in svc.ports:
            if (p.target, p.protocol) in seen:
                continue
            seen.add((p.target, p.protocol))
            ports.append(
                {
                    "name": f"{p.protocol}-{p.target}",
                    "port": p.target,
                    "targetPort": p.target,
                    "protocol": p.protocol.upper(),
                }
            )
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": kname, "labels": {**selector, **managed}},
                "spec": {"selector": selector, "ports": ports},
            }
        )
    else:
        notes.append(
            f"{where}: no ports, so no Kubernetes Service; other pods cannot reach it by name"
            " (add the port it listens on to 'ports')"
        )
    return out
