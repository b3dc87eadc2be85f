"""``envd export --format k8s``: a service's container-level host settings
(issue 12) in its pod: resources, hostAliases, dnsConfig, sysctls, host
namespaces, a memory-backed /dev/shm, GPUs; a note for each one Kubernetes
cannot express.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envd.spec.host_isolation import DEFAULT_RUNTIMES
from envd.spec.host_parts import HOST_GATEWAY
from envd.spec.models import Service

_NVIDIA = "nvidia.com/gpu"


def _cpu(cpus: float) -> str:
    milli = round(cpus * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def k8s_host(
    where: str,
    svc: Service,
    container: dict[str, Any],
    pod: dict[str, Any],
    notes: list[str],
    quantity: Callable[[int], str],
) -> None:
    """Fill ``container`` and ``pod`` with what maps; note the rest."""
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if svc.cpus:
        limits["cpu"] = _cpu(svc.cpus)
    if svc.mem_limit:
        limits["memory"] = quantity(svc.mem_limit)
    if svc.mem_reservation:
        requests["memory"] = quantity(svc.mem_reservation)
    for r in svc.gpus:
        if r.count > 0 and (r.driver in ("", "nvidia")) and not r.device_ids:
            limits[_NVIDIA] = limits.get(_NVIDIA, 0) + r.count
        else:
            notes.append(
                f"{where}.gpus: only a count of NVIDIA GPUs maps (resource {_NVIDIA});"
                " 'all', device ids and other drivers are left out"
            )
    resources = {k: v for k, v in (("limits", limits), ("requests", requests)) if v}
    if resources:
        container["resources"] = resources
    by_ip: dict[str, list[str]] = {}
    for entry in svc.extra_hosts:
        host, _, ip = entry.partition(":")
        if ip == HOST_GATEWAY:
            notes.append(f"{where}.extra_hosts: {host}: 'host-gateway' has no pod equivalent")
            continue
        by_ip.setdefault(ip, []).append(host)
    if by_ip:
        pod["hostAliases"] = [{"ip": ip, "hostnames": hosts} for ip, hosts in by_ip.items()]
    dns: dict[str, Any] = {}
    if svc.dns:
        dns["nameservers"] = list(svc.dns)
    if svc.dns_search:
        dns["searches"] = list(svc.dns_search)
    if svc.dns_opt:
        dns["options"] = [
            {"name": n, "value": v} if sep else {"name": n}
            for n, sep, v in (o.partition(":") for o in svc.dns_opt)
        ]
    if dns:
        # Added to the cluster's DNS (ClusterFirst), so Services still resolve.
        pod["dnsConfig"] = dns
    if svc.sysctls:
        pod.setdefault("securityContext", {})["sysctls"] = [
            {"name": k, "value": v} for k, v in svc.sysctls.items()
        ]
        notes.append(
            f"{where}.sysctls: Kubernetes allows only 'safe' sysctls unless the kubelet"
            " lists the others in --allowed-unsafe-sysctls"
        )
    if svc.pid == "host":
        pod["hostPID"] = True
    if svc.ipc == "host":
        pod["hostIPC"] = True
    for key in ("pid", "ipc"):
        mode = getattr(svc, key)
        if mode and mode != "host":
            notes.append(f"{where}.{key}: {mode!r}: pods do not share namespaces; left out")
    if svc.shm_size:
        pod.setdefault("volumes", []).append(
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": quantity(svc.shm_size)}}
        )
        container.setdefault("volumeMounts", []).append({"name": "shm", "mountPath": "/dev/shm"})
    security = container.setdefault("securityContext", {})
    for opt in svc.security_opt:
        if opt == "no-new-privileges":
            security["allowPrivilegeEscalation"] = False
        elif opt == "seccomp=unconfined":
            security["seccompProfile"] = {"type": "Unconfined"}
        else:
            notes.append(f"{where}.security_opt: {opt!r} has no securityContext equivalent")
    if not security:
        del container["securityContext"]
    if svc.tty:
        container["tty"] = True
    if svc.stdin_open:
        container["stdin"] = True
    if svc.runtime not in DEFAULT_RUNTIMES:
        pod["runtimeClassName"] = svc.runtime
        notes.append(f"{where}.runtime: a RuntimeClass named {svc.runtime!r} must exist")
    if svc.platform:
        os_name, _, arch = svc.platform.partition("/")
        # A node labels its architecture as Go does (amd64), like an image platform.
        selector = {"kubernetes.io/os": os_name}
        if arch:
            selector["kubernetes.io/arch"] = arch.partition("/")[0]
        pod["nodeSelector"] = selector
    missing = {
        "memswap_limit": "a pod has no swap limit",
        "pids_limit": "the pids limit is the kubelet's (--pod-max-pids)",
        "ulimits": "a container's ulimits are the container runtime's",
        "devices": "host devices need a device plugin",
        "domainname": "a pod's domain is its cluster's",
        "logging": "logging is the cluster's (a node agent reads container output)",
    }
    for key, why in missing.items():
        if getattr(svc, key):
            notes.append(f"{where}.{key}: {why}; left out")
