"""``SwarmEngine``: the Docker Swarm API calls envd's ``deploy --target swarm`` needs.

It extends ``DockerEngine`` (same HTTP client over the unix socket, same error
mapping) with swarm inspect, services, tasks, secrets and overlay networks.
Values crossing this boundary are the frozen dataclasses in
``envd.values.swarm_types``; the translation to and from API payloads happens only
here. Secret values are sent once, base64-encoded, to ``/secrets/create`` and
never logged nor put in an error message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from envd.engine.docker.client import DockerEngine
from envd.engine.docker.payloads import engine_message, filters, healthcheck, label_filter, nanos
from envd.values.errors import Conflict, EngineError, NotFound
from envd.values.swarm_types import (
    TASK_HASH_LABEL,
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

# --------------------------------------------------------------------------- payloads


def container_spec(spec: SwarmServiceSpec, secret_ids: Mapping[str, str]) -> dict[str, Any]:
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
    return body


def _mount(m: Mount, options: Mapping[str, VolumeOptions]) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": m.type, "Target": m.target, "ReadOnly": m.read_only}
    if m.source:
        out["Source"] = m.source
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


def service_payload(spec: SwarmServiceSpec, secret_ids: Mapping[str, str]) -> dict[str, Any]:
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
            "ContainerSpec": container_spec(spec, secret_ids),
            "RestartPolicy": {"Condition": spec.restart_condition, "MaxAttempts": 0},
            "Networks": [{"Target": n.network, "Aliases": list(n.aliases)} for n in spec.networks],
            "ForceUpdate": 0,
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


def _ports(endpoint: Any) -> tuple[PublishedPort, ...]:
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


def ipvs_missing(host: str) -> bool:
    """Whether the engine runs on this machine under a kernel built without IPVS.

    Swarm's virtual IPs and routing mesh are IPVS; without it a service name
    resolves to an address nobody answers. Only a local engine can be
    checked, and only a kernel that publishes its config says so for sure.
    """
    if not (host.startswith("unix://") or host.startswith("/")):
        return False
    try:
        import gzip

        with gzip.open("/proc/config.gz", "rt") as fh:
            return "# CONFIG_IP_VS is not set" in fh.read()
    except OSError:
        return False


# --------------------------------------------------------------------------- engine


class SwarmEngine(DockerEngine):
    """``DockerEngine`` plus the swarm calls (API 1.41)."""

    # --- swarm ---------------------------------------------------------------
    def swarm_info(self) -> SwarmInfo:
        doc = self._call("GET", "/info").json() or {}
        swarm = doc.get("Swarm") or {}
        return SwarmInfo(
            state=str(swarm.get("LocalNodeState") or "inactive"),
            manager=bool(swarm.get("ControlAvailable")),
            node_id=str(swarm.get("NodeID") or ""),
            error=str(swarm.get("Error") or ""),
        )

    def node_names(self) -> dict[str, str]:
        """Node id → hostname."""
        return {
            str(n["ID"]): str((n.get("Description") or {}).get("Hostname") or n["ID"][:12])
            for n in self._call("GET", "/nodes").json() or []
        }

    # --- services ------------------------------------------------------------
    def list_services(self, labels: Mapping[str, str]) -> list[ObservedService]:
        q: dict[str, str | int] = {**label_filter(labels), "status": "true"}
        out: list[ObservedService] = []
        for s in self._call("GET", "/services", q).json() or []:
            spec = s.get("Spec") or {}
            mode = spec.get("Mode") or {}
            replicated = mode.get("Replicated")
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
                    ports=_ports(s.get("Endpoint")),
                )
            )
        return out

    def create_service(self, spec: SwarmServiceSpec, secret_ids: Mapping[str, str]) -> str:
        doc = self._call(
            "POST",
            "/services/create",
            body=service_payload(spec, secret_ids),
            what=f"creating service {spec.name}",
        ).json()
        return str(doc["ID"])

    def update_service(
        self, service_id: str, version: int, spec: SwarmServiceSpec, secret_ids: Mapping[str, str]
    ) -> None:
        self._call(
            "POST",
            f"/services/{quote(service_id)}/update",
            {"version": version},
            body=service_payload(spec, secret_ids),
            what=f"updating service {spec.name}",
        )

    def remove_service(self, service_id: str) -> None:
        try:
            self._call("DELETE", f"/services/{quote(service_id)}", what=f"service {service_id}")
        except NotFound:
            pass

    def list_tasks(self, service_ids: list[str]) -> list[ObservedTask]:
        if not service_ids:
            return []
        q: dict[str, str | int] = {"filters": filters(service=sorted(service_ids))}
        out: list[ObservedTask] = []
        for t in self._call("GET", "/tasks", q).json() or []:
            status = t.get("Status") or {}
            cstatus = status.get("ContainerStatus") or {}
            labels = ((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {}
            exit_code = cstatus.get("ExitCode")
            out.append(
                ObservedTask(
                    id=str(t["ID"]),
                    service_id=str(t.get("ServiceID") or ""),
                    slot=int(t.get("Slot") or 0),
                    node_id=str(t.get("NodeID") or ""),
                    state=str(status.get("State") or ""),
                    desired_state=str(t.get("DesiredState") or ""),
                    task_hash=str(labels.get(TASK_HASH_LABEL) or ""),
                    message=str(status.get("Message") or ""),
                    error=str(status.get("Err") or ""),
                    exit_code=int(exit_code) if exit_code is not None else None,
                    container_id=str(cstatus.get("ContainerID") or ""),
                    timestamp=str(status.get("Timestamp") or ""),
                    # IPv4 and IPv6 bindings are reported apart; one is enough here.
                    ports=tuple(dict.fromkeys(_ports(status.get("PortStatus")))),
                )
            )
        return out

    def container_ports(self, container_id: str) -> list[str] | None:
        """A local container's published ports as ``IP:PORT->TARGET/PROTO``; None if not here.

        A task's own port report has no address, and with IPv6 enabled the
        engine binds 0.0.0.0 and :: to different host ports.
        """
        resp = self._send("GET", f"/containers/{quote(container_id)}/json")
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._error(resp, f"container {container_id}")
        ports = ((resp.json() or {}).get("NetworkSettings") or {}).get("Ports") or {}
        out: list[str] = []
        for key, bindings in sorted(ports.items()):
            for b in bindings or []:
                ip = str(b.get("HostIp") or "0.0.0.0")
                host = f"[{ip}]" if ":" in ip else ip
                out.append(f"{host}:{b.get('HostPort')}->{key}")
        return out

    # --- secrets -------------------------------------------------------------
    def list_secrets(self, labels: Mapping[str, str]) -> list[ObservedSecret]:
        return [
            ObservedSecret(
                id=str(s["ID"]),
                name=str((s.get("Spec") or {}).get("Name") or ""),
                labels=dict((s.get("Spec") or {}).get("Labels") or {}),
            )
            for s in self._call("GET", "/secrets", label_filter(labels)).json() or []
        ]

    def create_secret(self, name: str, labels: Mapping[str, str], value: bytes) -> str:
        body = {
            "Name": name,
            "Labels": dict(labels),
            "Data": base64.b64encode(value).decode("ascii"),
        }
        # _send, not _call: an error must never echo the request.
        resp = self._send("POST", "/secrets/create", body=body)
        if resp.status in (200, 201):
            return str(resp.json()["ID"])
        msg = f"creating secret {name}: {engine_message(resp.body) or f'HTTP {resp.status}'}"
        if resp.status == 409:
            raise Conflict(msg, resp.status)
        raise EngineError(msg, resp.status)

    def remove_secret(self, secret_id: str) -> None:
        resp = self._send("DELETE", f"/secrets/{quote(secret_id)}")
        if resp.status in (200, 204, 404):
            return
        msg = f"removing secret {secret_id}: {engine_message(resp.body)}"
        # "secret … is in use by the following service": 400 on 20.10, 409 elsewhere.
        if resp.status in (400, 409) and "in use" in msg:
            raise Conflict(msg, resp.status)
        raise EngineError(msg, resp.status)

    # --- networks ------------------------------------------------------------
    def list_swarm_networks(self, labels: Mapping[str, str]) -> list[ObservedSwarmNetwork]:
        return [
            ObservedSwarmNetwork(
                id=str(n["Id"]),
                name=str(n["Name"]),
                driver=str(n.get("Driver") or ""),
                scope=str(n.get("Scope") or ""),
                labels=dict(n.get("Labels") or {}),
            )
            for n in self._call("GET", "/networks", label_filter(labels)).json() or []
        ]

    def find_network(self, name: str) -> ObservedSwarmNetwork | None:
        """The network named exactly ``name`` (not an id prefix), or None."""
        q = {"filters": json.dumps({"name": [name]})}
        for n in self._call("GET", "/networks", q).json() or []:
            if n.get("Name") == name:
                return ObservedSwarmNetwork(
                    id=str(n["Id"]),
                    name=name,
                    driver=str(n.get("Driver") or ""),
                    scope=str(n.get("Scope") or ""),
                    labels=dict(n.get("Labels") or {}),
                )
        return None

    def create_overlay_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False, driver: str = "overlay"
    ) -> str:
        body = {
            "Name": name,
            "CheckDuplicate": True,
            "Driver": driver,
            "Attachable": True,
            "Internal": internal,
            "Labels": dict(labels),
        }
        doc = self._call("POST", "/networks/create", body=body, what=f"network {name}").json()
        return str(doc["Id"])
