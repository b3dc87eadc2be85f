"""Swarm values to Docker API JSON and back: pure functions, no IO.

``DockerSwarmEngine`` sends what these build and reads answers through them,
so the mapping can be checked without a swarm. Secret values never pass
through here: ``create_secret`` encodes its one value itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envd.engine.docker import versions
from envd.engine.docker.payloads import Json, healthcheck, nanos
from envd.engine.docker.versions import Version
from envd.engine.swarm import host_payloads
from envd.values.swarm_types import (
    TASK_HASH_LABEL,
    ObservedConfig,
    ObservedSecret,
    ObservedService,
    ObservedSwarmNetwork,
    ObservedTask,
    PublishedPort,
    SwarmInfo,
    SwarmServiceSpec,
    TmpfsMount,
    VolumeOptions,
)
from envd.values.types import Mount


def container_spec(
    spec: SwarmServiceSpec,
    secret_ids: Mapping[str, str],
    config_ids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``TaskTemplate.ContainerSpec`` payload of a service."""
    c = spec.container
    body: dict[str, Any] = {
        "Image": c.image,
        "Labels": dict(c.labels),
        "Env": [f"{k}={v}" for k, v in c.env],
        "Dir": c.working_dir,
        "User": c.user,
        "Hostname": c.hostname,
        "Init": c.init,
        "ReadOnly": c.read_only,
        "StopSignal": c.stop_signal or "SIGTERM",
        "StopGracePeriod": nanos(c.stop_timeout),
        "Mounts": [_mount(m, spec.volume_options) for m in c.mounts]
        + [_tmpfs(t) for t in spec.tmpfs],
        "Secrets": [
            {
                "File": {"Name": s.target, "UID": s.uid, "GID": s.gid, "Mode": s.mode},
                "SecretID": secret_ids.get(s.secret, ""),
                "SecretName": s.secret,
            }
            for s in spec.secrets
        ],
    }
    # In a service, ContainerSpec.Command is the entrypoint and Args the command.
    if c.entrypoint is not None:
        body["Command"] = list(c.entrypoint)
    if c.command is not None:
        body["Args"] = list(c.command)
    if c.cap_add:
        body["CapabilityAdd"] = list(c.cap_add)
    if c.cap_drop:
        body["CapabilityDrop"] = list(c.cap_drop)
    if c.healthcheck is not None:
        body["HealthCheck"] = healthcheck(c.healthcheck)
    if spec.configs:  # configs (Compose's `configs`): files at absolute targets
        body["Configs"] = [
            {
                "File": {"Name": r.target, "UID": r.uid, "GID": r.gid, "Mode": r.mode},
                "ConfigID": (config_ids or {}).get(r.config, ""),
                "ConfigName": r.config,
            }
            for r in spec.configs
        ]
    if c.tty:
        body["TTY"] = True
    if c.stdin_open:
        body["OpenStdin"] = True
    body.update(host_payloads.container_keys(c.host))  # issue 12's host settings
    return body


def _mount(m: Mount, options: Mapping[str, VolumeOptions]) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": m.type, "Target": m.target, "ReadOnly": m.read_only}
    if m.source:
        out["Source"] = m.source
    if m.type == "bind" and m.propagation:
        out["BindOptions"] = {"Propagation": m.propagation}
    opts = options.get(m.source) if m.type == "volume" and m.source else None
    if opts is not None:
        vo: dict[str, Any] = {"Labels": dict(opts.labels)}
        if opts.driver and (opts.driver != "local" or opts.driver_opts):
            vo["DriverConfig"] = {"Name": opts.driver, "Options": dict(opts.driver_opts)}
        out["VolumeOptions"] = vo
    return out


def _tmpfs(t: TmpfsMount) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": "tmpfs", "Target": t.target}
    opts: dict[str, Any] = {}
    if t.size_bytes is not None:
        opts["SizeBytes"] = t.size_bytes
    if t.mode is not None:
        opts["Mode"] = t.mode
    if opts:
        out["TmpfsOptions"] = opts
    return out


def service_payload(
    spec: SwarmServiceSpec,
    secret_ids: Mapping[str, str],
    config_ids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The full ``ServiceSpec`` payload for create and update."""
    update = {
        "Parallelism": 1,
        "Delay": 0,
        "FailureAction": "rollback",
        "Order": spec.update_order,
    }
    return {
        "Name": spec.name,
        "Labels": dict(spec.labels),
        "TaskTemplate": {
            "ContainerSpec": container_spec(spec, secret_ids, config_ids),
            "RestartPolicy": {"Condition": spec.restart_condition, "MaxAttempts": 0},
            "Networks": [{"Target": n.network, "Aliases": list(n.aliases)} for n in spec.networks],
            "ForceUpdate": 0,
            **host_payloads.task_keys(spec.container.host),
        },
        "Mode": {"Replicated": {"Replicas": spec.replicas}},
        "UpdateConfig": update,
        "RollbackConfig": {**update, "FailureAction": "pause"},
        "EndpointSpec": {
            "Mode": spec.endpoint_mode,
            "Ports": [
                {
                    "Protocol": p.protocol,
                    "TargetPort": p.target,
                    **({"PublishedPort": p.published} if p.published else {}),
                    "PublishMode": p.mode,
                }
                for p in spec.ports
            ],
        },
    }


def published_ports(endpoint: Json) -> tuple[PublishedPort, ...]:
    ports = (endpoint or {}).get("Ports") or []
    return tuple(
        PublishedPort(
            target=int(p.get("TargetPort") or 0),
            published=int(p["PublishedPort"]) if p.get("PublishedPort") else None,
            protocol=str(p.get("Protocol") or "tcp"),
            mode=str(p.get("PublishMode") or "ingress"),
        )
        for p in ports
    )


def swarm_info(doc: Json) -> SwarmInfo:
    """The swarm part of an ``/info`` answer."""
    swarm = (doc or {}).get("Swarm") or {}
    return SwarmInfo(
        state=str(swarm.get("LocalNodeState") or "inactive"),
        manager=bool(swarm.get("ControlAvailable")),
        node_id=str(swarm.get("NodeID") or ""),
        error=str(swarm.get("Error") or ""),
    )


def node_names(doc: Json) -> dict[str, str]:
    """A ``/nodes`` answer as node id → hostname."""
    return {
        str(n["ID"]): str((n.get("Description") or {}).get("Hostname") or n["ID"][:12])
        for n in doc or []
    }


def observed_services(doc: Json) -> list[ObservedService]:
    """A ``/services?status=true`` answer."""
    out: list[ObservedService] = []
    for s in doc or []:
        spec = s.get("Spec") or {}
        replicated = (spec.get("Mode") or {}).get("Replicated")
        status = s.get("ServiceStatus") or {}
        upd = s.get("UpdateStatus") or {}
        container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
        out.append(
            ObservedService(
                id=str(s["ID"]),
                name=str(spec.get("Name") or ""),
                version=int((s.get("Version") or {}).get("Index") or 0),
                labels=dict(spec.get("Labels") or {}),
                replicas=int(replicated.get("Replicas") or 0)
                if isinstance(replicated, dict)
                else None,
                image=str(container.get("Image") or ""),
                update_state=str(upd.get("State") or ""),
                update_message=str(upd.get("Message") or ""),
                update_started=str(upd.get("StartedAt") or ""),
                running_tasks=status.get("RunningTasks"),
                desired_tasks=status.get("DesiredTasks"),
                ports=published_ports(s.get("Endpoint")),
                secrets=tuple(
                    str(x.get("SecretName") or "") for x in container.get("Secrets") or []
                ),
                configs=tuple(
                    str(x.get("ConfigName") or "") for x in container.get("Configs") or []
                ),
            )
        )
    return out


def observed_tasks(doc: Json) -> list[ObservedTask]:
    """A ``/tasks`` answer."""
    out: list[ObservedTask] = []
    for t in doc or []:
        status = t.get("Status") or {}
        cstatus = status.get("ContainerStatus") or {}
        task_labels = ((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {}
        exit_code = cstatus.get("ExitCode")
        out.append(
            ObservedTask(
                id=str(t["ID"]),
                service_id=str(t.get("ServiceID") or ""),
                slot=int(t.get("Slot") or 0),
                node_id=str(t.get("NodeID") or ""),
                state=str(status.get("State") or ""),
                desired_state=str(t.get("DesiredState") or ""),
                task_hash=str(task_labels.get(TASK_HASH_LABEL) or ""),
                message=str(status.get("Message") or ""),
                error=str(status.get("Err") or ""),
                exit_code=int(exit_code) if exit_code is not None else None,
                container_id=str(cstatus.get("ContainerID") or ""),
                timestamp=str(status.get("Timestamp") or ""),
                # IPv4 and IPv6 bindings are reported apart; one is enough here.
                ports=tuple(dict.fromkeys(published_ports(status.get("PortStatus")))),
            )
        )
    return out


def container_ports(doc: Json) -> list[str]:
    """A container inspect's published ports as ``IP:PORT->TARGET/PROTO``."""
    ports = ((doc or {}).get("NetworkSettings") or {}).get("Ports") or {}
    out: list[str] = []
    for key, bindings in sorted(ports.items()):
        for b in bindings or []:
            ip = str(b.get("HostIp") or "0.0.0.0")
            host = f"[{ip}]" if ":" in ip else ip
            out.append(f"{host}:{b.get('HostPort')}->{key}")
    return out


def observed_secrets(doc: Json) -> list[ObservedSecret]:
    """A ``/secrets`` answer (which never holds a value)."""
    return [
        ObservedSecret(
            id=str(s["ID"]),
            name=str((s.get("Spec") or {}).get("Name") or ""),
            labels=dict((s.get("Spec") or {}).get("Labels") or {}),
        )
        for s in doc or []
    ]


def observed_configs(doc: Json) -> list[ObservedConfig]:
    """A ``/configs`` answer; the content (``Spec.Data``) is not kept."""
    return [
        ObservedConfig(
            id=str(c["ID"]),
            name=str((c.get("Spec") or {}).get("Name") or ""),
            labels=dict((c.get("Spec") or {}).get("Labels") or {}),
        )
        for c in doc or []
    ]


def observed_network(n: Json) -> ObservedSwarmNetwork:
    """One network of a ``/networks`` answer."""
    return ObservedSwarmNetwork(
        id=str(n["Id"]),
        name=str(n["Name"]),
        driver=str(n.get("Driver") or ""),
        scope=str(n.get("Scope") or ""),
        labels=dict(n.get("Labels") or {}),
    )


def overlay_network_body(
    name: str,
    labels: Mapping[str, str],
    internal: bool,
    driver: str,
    api: Version = versions.OLDEST,
) -> dict[str, Any]:
    """The ``/networks/create`` payload of an attachable swarm network."""
    body: dict[str, Any] = {
        "Name": name,
        "Driver": driver,
        "Attachable": True,
        "Internal": internal,
        "Labels": dict(labels),
    }
    if api < versions.NO_CHECK_DUPLICATE:
        body["CheckDuplicate"] = True  # deprecated in 1.44: a duplicate always fails
    return body
