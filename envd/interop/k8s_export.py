"""``envd export --format k8s``: Kubernetes manifests.

A Deployment and a Service per service, a Secret per secret (without values
unless given), a ConfigMap per config (mounted with subPath), a PersistentVolumeClaim per named volume, probes from
healthchecks; a note for each thing Kubernetes cannot express.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from envd.core.service_env import service_env
from envd.interop.k8s_host import k8s_host
from envd.interop.render import Export
from envd.interop.tmpfs import tmpfs_size
from envd.spec.compose_words import build_tag
from envd.spec.expose import expose_ports
from envd.spec.load import LoadedSpec
from envd.spec.models import Heal, Healthcheck, Service

_K8S_NAME = re.compile(r"[^a-z0-9-]+")


# Compose propagation -> Kubernetes mountPropagation (the recursive modes only).
_K8S_PROPAGATION = {"rprivate": "None", "rslave": "HostToContainer", "rshared": "Bidirectional"}


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


def _quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that holds it exactly."""
    for unit, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


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
    # configs (Compose's `configs`): a ConfigMap each, mounted as a file
    from envd.inputs.configs import outside_project, read_configs

    outside = outside_project(loaded)
    for key, content in sorted(read_configs(loaded, skip=outside).items()):
        cmap: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": k8s_name(f"config-{key}"), "labels": {**part_of, **managed}},
        }
        if key in outside:
            # A spec must not copy a host file into manifests meant to be shared.
            cmap["data"] = {}
            notes.append(
                f"configs.{key}: its file is outside the project and is not read by export;"
                f" kubectl create configmap {k8s_name(f'config-{key}')} --from-file=content=FILE"
            )
        else:
            try:
                cmap["data"] = {"content": content.decode("utf-8")}
            except UnicodeDecodeError:
                cmap["binaryData"] = {"content": base64.b64encode(content).decode("ascii")}
        docs.append(cmap)
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
        if net.ipam is not None or net.enable_ipv6:
            notes.append(
                f"networks.{key}: ipam and enable_ipv6 belong to the cluster's network plugin"
                " (pod and Service CIDRs); left out"
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
    image = svc.image or build_tag(loaded.project, name)
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
    env, unset = service_env(loaded.env_files.get(name, {}), svc.env, loaded.variables)
    if svc.env_file:
        notes.append(f"{where}.env_file: its variables are written into the Deployment's env")
    for key in unset:
        notes.append(f"{where}.env.{key}: passed through from the environment but unset; left out")
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
        # --- bind options (issue 12): propagation maps where Kubernetes has it; relabel does not
        if m.propagation in _K8S_PROPAGATION:
            mount["mountPropagation"] = _K8S_PROPAGATION[m.propagation]
            if m.propagation == "rshared":
                notes.append(
                    f"{where}.volumes: Bidirectional propagation of {m.target} needs a privileged"
                    " container in Kubernetes"
                )
        elif m.propagation:
            notes.append(
                f"{where}.volumes: propagation {m.propagation} of {m.target} has no Kubernetes"
                " equivalent (None, HostToContainer or Bidirectional); left out"
            )
        if m.selinux:
            notes.append(
                f"{where}.volumes: SELinux relabel {m.selinux} of {m.target} is left out"
                " (Kubernetes relabels through the pod's securityContext.seLinuxOptions)"
            )
        mounts.append(mount)
    for i, entry in enumerate(svc.tmpfs):
        path, size, rest = tmpfs_size(entry)
        empty: dict[str, Any] = {"medium": "Memory"}
        if size:
            empty["sizeLimit"] = _quantity(size)
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
    for i, c in enumerate(svc.configs):  # configs: a ConfigMap's key as one file
        vname, file = f"config-{i}", posixpath.basename(c.path)
        items = [{"key": "content", "path": file, "mode": c.mode}]
        volumes.append(
            {"name": vname, "configMap": {"name": k8s_name(f"config-{c.source}"), "items": items}}
        )
        mounts.append({"name": vname, "mountPath": c.path, "subPath": file, "readOnly": True})
        if c.uid != "0" or c.gid != "0":
            notes.append(
                f"{where}.configs.{c.source}: uid/gid {c.uid}/{c.gid}: Kubernetes mounts"
                " ConfigMap files as root (set the pod's fsGroup for group access)"
            )
    if mounts:
        container["volumeMounts"] = mounts

    pod: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": round(svc.stop_grace_period),
    }
    if volumes:
        pod["volumes"] = volumes
    k8s_host(where, svc, container, pod, notes, _quantity)  # issue 12's host settings
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
    for key in ("post_start", "pre_stop"):
        if getattr(svc, key):
            notes.append(
                f"{where}.{key}: lifecycle hooks are not exported (a pod's lifecycle hook has"
                " one command and no user or variables of its own); add them by hand"
            )
    if svc.pull == "build":
        notes.append(f"{where}.pull: 'build' has no Kubernetes equivalent (IfNotPresent)")
    # supervisor: what envd's daemon does that the cluster does its own way
    if svc.heal != Heal():
        notes.append(
            f"{where}.heal: unused; Kubernetes restarts a container on a failing livenessProbe"
        )
    if svc.oneshot:
        notes.append(f"{where}.oneshot: unused; run-to-completion work belongs in a Job")
    for key, net in svc.networks.items():
        if net.aliases:
            notes.append(
                f"{where}.networks.{key}: aliases {', '.join(net.aliases)}: Kubernetes reaches a"
                f" service by its Service name ({kname}) only"
            )
    notes.extend(_net_notes(where, kname, svc, pod))
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
    # `expose` names ports as `ports` does: both make the Service other pods reach.
    targets: list[tuple[int, str]] = [(p.target, p.protocol) for p in svc.ports]
    targets += [
        (int(port), proto)
        for entry in svc.expose
        for port, _, proto in (key.partition("/") for key in expose_ports(entry))
    ]
    if targets:
        seen: set[tuple[int, str]] = set()
        ports = []
        for number, protocol in targets:
            if (number, protocol) in seen:
                continue
            seen.add((number, protocol))
            ports.append(
                {
                    "name": f"{protocol}-{number}",
                    "port": number,
                    "targetPort": number,
                    "protocol": protocol.upper(),
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
            f"{where}: no ports or expose, so no Kubernetes Service; other pods cannot reach"
            " it by name (add the port it listens on to 'expose')"
        )
    return out


def _net_notes(where: str, kname: str, svc: Service, pod: dict[str, Any]) -> list[str]:
    """Names and networking in a pod: host network mapped, the rest noted."""
    notes: list[str] = []
    if svc.container_name:
        notes.append(
            f"{where}.container_name: Kubernetes names pods itself; reach the service by its"
            f" Service name ({kname})"
        )
    mode = svc.network_mode or ""
    if mode == "host":
        pod["hostNetwork"] = True
    elif mode.startswith("service:"):
        notes.append(
            f"{where}.network_mode: {mode!r}: a shared network namespace is a second"
            " container in the same pod in Kubernetes; exported as a pod of its own"
        )
    elif mode:
        notes.append(f"{where}.network_mode: {mode!r} has no Kubernetes equivalent; left out")
    for key, net in svc.networks.items():
        for field in ("ipv4_address", "ipv6_address"):
            if getattr(net, field):
                notes.append(
                    f"{where}.networks.{key}.{field}: Kubernetes assigns pod addresses;"
                    f" {getattr(net, field)} is unused (reach the Service by name)"
                )
    return notes
