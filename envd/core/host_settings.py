"""Container-level host settings of a service (issue 12): resources, kernel
parameters, DNS, devices, logging and GPUs, as engine values and as the part
of the config hash they add.

Each setting is hashed under its own name only when set, so a container
created before these existed keeps its hash (no mass recreate on upgrade)
and a plan names the one that changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from envd.core.hashing import plain_deep
from envd.values.limit_support import CGROUP_LIMITS
from envd.values.types import (
    ContainerCreate,
    DeviceMapping,
    DeviceRequest,
    HostSettings,
    LogConfig,
    Ulimit,
)

if TYPE_CHECKING:
    from envd.core.desired import DesiredService
    from envd.spec.models import Service


def shared_namespace_services(svc: Service) -> list[str]:
    """The services whose pid or ipc namespace ``svc`` joins (``service:NAME``)."""
    return sorted({m.partition(":")[2] for m in (svc.pid, svc.ipc) if m.startswith("service:")})


def joined_services(
    project: str, svc: DesiredService, services: Mapping[str, DesiredService]
) -> set[str]:
    """The services of ``services`` whose first container ``svc`` joins (pid or ipc)."""
    host = svc.template.host
    # Read the name back from each mode rather than trying every service:
    # a plan asks this of each service, and trying all would be O(services²).
    prefix, suffix = f"container:{project}-", "-1"
    joined: set[str] = set()
    for mode in (host.pid_mode, host.ipc_mode):
        if mode.startswith(prefix) and mode.endswith(suffix):
            name = mode[len(prefix) : len(mode) - len(suffix)]
            if name in services and _namespace_mode(project, f"service:{name}") == mode:
                joined.add(name)
    return joined


def _namespace_mode(project: str, mode: str) -> str:
    if mode.startswith("service:"):
        # The first replica's container: what Compose joins too.
        return f"container:{project}-{mode.partition(':')[2]}-1"
    return mode


def host_settings(project: str, svc: Service) -> HostSettings:
    """The service's container-level host settings as engine values."""
    log: LogConfig | None = None
    if svc.logging is not None:
        log = LogConfig(svc.logging.driver, tuple(sorted(svc.logging.options.items())))
    return HostSettings(
        nano_cpus=round(svc.cpus * 1_000_000_000),
        memory=svc.mem_limit,
        memory_reservation=svc.mem_reservation,
        memory_swap=svc.memswap_limit,
        pids_limit=svc.pids_limit,
        shm_size=svc.shm_size,
        ulimits=tuple(Ulimit(n, u.soft, u.hard) for n, u in sorted(svc.ulimits.items())),
        sysctls=tuple(sorted(svc.sysctls.items())),
        extra_hosts=tuple(svc.extra_hosts),
        dns=tuple(svc.dns),
        dns_search=tuple(svc.dns_search),
        dns_options=tuple(svc.dns_opt),
        devices=tuple(
            DeviceMapping(d.source, d.container_path, d.permissions) for d in svc.devices
        ),
        device_requests=tuple(
            DeviceRequest(
                driver=r.driver,
                count=r.count,
                device_ids=tuple(r.device_ids),
                capabilities=(tuple(r.capabilities),) if r.capabilities else (),
                options=tuple(sorted(r.options.items())),
            )
            for r in svc.gpus
        ),
        domainname=svc.domainname,
        platform=svc.platform,
        runtime=svc.runtime,
        security_opt=tuple(svc.security_opt),
        pid_mode=_namespace_mode(project, svc.pid),
        ipc_mode=_namespace_mode(project, svc.ipc),
        log_config=log,
    )


_DEFAULT_HOST = HostSettings()
# Hashed under the spec's names, so a plan says "changed: mem_limit".
_SPEC_NAMES = {
    "nano_cpus": "cpus",
    "memory": "mem_limit",
    "memory_reservation": "mem_reservation",
    "memory_swap": "memswap_limit",
    "dns_options": "dns_opt",
    "device_requests": "gpus",
    "pid_mode": "pid",
    "ipc_mode": "ipc",
    "log_config": "logging",
}


def host_canonical(spec: ContainerCreate) -> dict[str, Any]:
    """The set host settings (and tty/stdin_open), each under its own name."""
    data: dict[str, Any] = {}
    if spec.tty:
        data["tty"] = True
    if spec.stdin_open:
        data["stdin_open"] = True
    host = spec.host
    if host == _DEFAULT_HOST:
        return data
    for f in fields(host):
        value = getattr(host, f.name)
        if value != getattr(_DEFAULT_HOST, f.name):
            data[_SPEC_NAMES.get(f.name, f.name)] = plain_deep(value)
    return data


# --- resource limits an engine may drop (Engine.ignored_limits) -------------
# The HostSettings fields of the cgroup limits values.limit_support names (one
# list: what an engine drops and what a spec sets are named alike). -1
# (unlimited pids or swap) asks for no cgroup limit, so it is not one.
_FIELD_OF = {spec: field for field, spec in _SPEC_NAMES.items()}
_CGROUP_LIMITS = tuple(_FIELD_OF.get(name, name) for name in CGROUP_LIMITS)


def resource_limits(host: HostSettings) -> list[str]:
    """The spec names of the resource limits ``host`` sets: the cgroup ones (``cpus``,
    ``mem_limit``…), then ``ulimits``."""
    found = [_SPEC_NAMES.get(f, f) for f in _CGROUP_LIMITS if getattr(host, f) > 0]
    return [*found, "ulimits"] if host.ulimits else found
