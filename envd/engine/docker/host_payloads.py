"""Container-level host settings (issue 12) to Docker API JSON and back: the
resources, kernel, DNS, device, logging and GPU parts of ``HostConfig``, the
``platform`` query parameter, and which API version a create needs.

Pure functions, no IO. A setting at its default is left out of the payload,
so the engine applies its own default exactly as before these existed.
"""

from __future__ import annotations

from typing import Any

from envd.values.types import (
    ContainerCreate,
    DeviceMapping,
    DeviceRequest,
    HostSettings,
    LogConfig,
    Ulimit,
)

Json = Any


def create_query(spec: ContainerCreate) -> dict[str, str | int]:
    """The ``/containers/create`` query: the name, and the platform when one is asked."""
    query: dict[str, str | int] = {"name": spec.name}
    if spec.host.platform:
        query["platform"] = spec.host.platform
    return query


def _device(d: DeviceMapping) -> dict[str, str]:
    return {
        "PathOnHost": d.host,
        "PathInContainer": d.container,
        "CgroupPermissions": d.permissions,
    }


def _request(r: DeviceRequest) -> dict[str, Any]:
    return {
        "Driver": r.driver,
        "Count": r.count,
        "DeviceIDs": list(r.device_ids) or None,
        "Capabilities": [list(c) for c in r.capabilities] or None,
        "Options": dict(r.options) or None,
    }


def host_config(h: HostSettings) -> dict[str, Any]:
    """The ``HostConfig`` keys of the settings that are set."""
    out: dict[str, Any] = {}
    scalars = (
        ("NanoCpus", h.nano_cpus),
        ("Memory", h.memory),
        ("MemoryReservation", h.memory_reservation),
        ("MemorySwap", h.memory_swap),
        ("PidsLimit", h.pids_limit),
        ("ShmSize", h.shm_size),
        ("Runtime", h.runtime),
        ("PidMode", h.pid_mode),
        ("IpcMode", h.ipc_mode),
    )
    for key, value in scalars:
        if value:
            out[key] = value
    if h.ulimits:
        out["Ulimits"] = [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in h.ulimits]
    if h.sysctls:
        out["Sysctls"] = dict(h.sysctls)
    lists = (
        ("ExtraHosts", h.extra_hosts),
        ("Dns", h.dns),
        ("DnsSearch", h.dns_search),
        ("DnsOptions", h.dns_options),
        ("SecurityOpt", h.security_opt),
    )
    for key, items in lists:
        if items:
            out[key] = list(items)
    if h.devices:
        out["Devices"] = [_device(d) for d in h.devices]
    if h.device_requests:
        out["DeviceRequests"] = [_request(r) for r in h.device_requests]
    if h.log_config is not None:
        out["LogConfig"] = {"Type": h.log_config.driver, "Config": dict(h.log_config.options)}
    return out


def _strings(value: Json) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def observed_host(doc: Json) -> HostSettings:
    """The host settings a container inspect reports, as the engine filled them in.

    The platform is not part of an inspect: it reads as "".
    """
    host = doc.get("HostConfig") or {}
    config = doc.get("Config") or {}
    log = host.get("LogConfig") or {}
    return HostSettings(
        nano_cpus=int(host.get("NanoCpus") or 0),
        memory=int(host.get("Memory") or 0),
        memory_reservation=int(host.get("MemoryReservation") or 0),
        memory_swap=int(host.get("MemorySwap") or 0),
        pids_limit=int(host.get("PidsLimit") or 0),
        shm_size=int(host.get("ShmSize") or 0),
        ulimits=tuple(
            Ulimit(str(u.get("Name")), int(u.get("Soft") or 0), int(u.get("Hard") or 0))
            for u in host.get("Ulimits") or ()
        ),
        sysctls=tuple(sorted((str(k), str(v)) for k, v in (host.get("Sysctls") or {}).items())),
        extra_hosts=_strings(host.get("ExtraHosts")),
        dns=_strings(host.get("Dns")),
        dns_search=_strings(host.get("DnsSearch")),
        dns_options=_strings(host.get("DnsOptions")),
        devices=tuple(
            DeviceMapping(
                str(d.get("PathOnHost") or ""),
                str(d.get("PathInContainer") or ""),
                str(d.get("CgroupPermissions") or ""),
            )
            for d in host.get("Devices") or ()
        ),
        device_requests=tuple(
            DeviceRequest(
                driver=str(r.get("Driver") or ""),
                count=int(r.get("Count") or 0),
                device_ids=_strings(r.get("DeviceIDs")),
                capabilities=tuple(_strings(c) for c in r.get("Capabilities") or ()),
                options=tuple(
                    sorted((str(k), str(v)) for k, v in (r.get("Options") or {}).items())
                ),
            )
            for r in host.get("DeviceRequests") or ()
        ),
        domainname=str(config.get("Domainname") or ""),
        runtime=str(host.get("Runtime") or ""),
        security_opt=_strings(host.get("SecurityOpt")),
        pid_mode=str(host.get("PidMode") or ""),
        ipc_mode=str(host.get("IpcMode") or ""),
        log_config=LogConfig(
            str(log.get("Type") or ""),
            tuple(sorted((str(k), str(v)) for k, v in (log.get("Config") or {}).items())),
        )
        if log.get("Type")
        else None,
    )
