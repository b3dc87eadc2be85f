"""Export of a service's container-level host settings (issue 12) to a
Compose file and to a stack file.

A Compose file takes every one of them under the same name. A stack
(``docker stack deploy``) takes resources under ``deploy.resources``, and
ulimits, sysctls, hosts, DNS, logging, tty and stdin_open as they are; the
rest has no swarm equivalent and becomes a note.
"""

from __future__ import annotations

from typing import Any

from envd.spec.host_isolation import SWARM_MISSING, DeviceRequest
from envd.spec.models import Service


def size_text(size: int) -> str:
    """Bytes in the largest Compose unit that holds them exactly (``512m``)."""
    for unit, factor in (("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _request(r: DeviceRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.driver:
        out["driver"] = r.driver
    if r.count:
        out["count"] = "all" if r.count == -1 else r.count
    if r.device_ids:
        out["device_ids"] = list(r.device_ids)
    if r.capabilities:
        out["capabilities"] = list(r.capabilities)
    if r.options:
        out["options"] = dict(r.options)
    return out


def _ulimits(svc: Service) -> dict[str, Any]:
    return {
        name: u.soft if u.soft == u.hard else {"soft": u.soft, "hard": u.hard}
        for name, u in svc.ulimits.items()
    }


def _portable(svc: Service) -> dict[str, Any]:
    """The fields a Compose file and a stack file both take as they are."""
    out: dict[str, Any] = {}
    if svc.ulimits:
        out["ulimits"] = _ulimits(svc)
    if svc.sysctls:
        out["sysctls"] = dict(svc.sysctls)
    if svc.extra_hosts:
        out["extra_hosts"] = list(svc.extra_hosts)
    for key in ("dns", "dns_search"):
        if getattr(svc, key):
            out[key] = list(getattr(svc, key))
    if svc.logging is not None:
        logging: dict[str, Any] = {"driver": svc.logging.driver}
        if svc.logging.options:
            logging["options"] = dict(svc.logging.options)
        out["logging"] = logging
    for key in ("tty", "stdin_open"):
        if getattr(svc, key):
            out[key] = True
    return out


def compose_host(svc: Service) -> dict[str, Any]:
    """The host settings of ``svc`` as Compose service fields."""
    out: dict[str, Any] = {}
    if svc.cpus:
        out["cpus"] = svc.cpus
    for key in ("mem_limit", "mem_reservation", "shm_size"):
        if getattr(svc, key):
            out[key] = size_text(getattr(svc, key))
    if svc.memswap_limit:
        out["memswap_limit"] = -1 if svc.memswap_limit == -1 else size_text(svc.memswap_limit)
    if svc.pids_limit:
        out["pids_limit"] = svc.pids_limit
    out.update(_portable(svc))
    if svc.dns_opt:
        out["dns_opt"] = list(svc.dns_opt)
    if svc.devices:
        out["devices"] = [f"{d.source}:{d.container_path}:{d.permissions}" for d in svc.devices]
    for key in ("domainname", "platform", "runtime", "pid", "ipc"):
        if getattr(svc, key):
            out[key] = getattr(svc, key)
    if svc.security_opt:
        out["security_opt"] = list(svc.security_opt)
    if svc.gpus:
        # Compose's older spelling: Compose 1.29 has no `gpus`, both read this.
        reservations: dict[str, Any] = {"devices": [_request(r) for r in svc.gpus]}
        if svc.mem_reservation:
            # Compose v2 holds the twin fields equal once reservations exist.
            reservations["memory"] = out["mem_reservation"]
        out["deploy"] = {"resources": {"reservations": reservations}}
    return out


# A node reports its architecture as uname does, an image as Go does.
_NODE_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "386": "i386"}


def stack_host(where: str, svc: Service, notes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(service fields, ``deploy`` fields) of ``svc``'s host settings in a stack file."""
    limits: dict[str, Any] = {}
    reservations: dict[str, Any] = {}
    if svc.cpus:
        limits["cpus"] = str(svc.cpus)
    if svc.mem_limit:
        limits["memory"] = size_text(svc.mem_limit)
    if svc.pids_limit > 0:
        limits["pids"] = svc.pids_limit
    if svc.mem_reservation:
        reservations["memory"] = size_text(svc.mem_reservation)
    deploy: dict[str, Any] = {}
    resources = {k: v for k, v in (("limits", limits), ("reservations", reservations)) if v}
    if resources:
        deploy["resources"] = resources
    if svc.platform:
        os_name, _, arch = svc.platform.partition("/")
        constraints = [f"node.platform.os == {os_name}"]
        if arch:
            arch = arch.partition("/")[0]
            constraints.append(f"node.platform.arch == {_NODE_ARCH.get(arch, arch)}")
        deploy["placement"] = {"constraints": constraints}
    for key, why in SWARM_MISSING.items():
        if getattr(svc, key):
            notes.append(f"{where}.{key}: {why}; left out")
    if svc.dns_opt:
        notes.append(
            f"{where}.dns_opt: a stack file has no dns_opt (envd deploy sends it); left out"
        )
    return _portable(svc), deploy
