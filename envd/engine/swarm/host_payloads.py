"""A task's container-level host settings (issue 12) in a swarm ``ServiceSpec``:
the ``ContainerSpec`` keys (hosts, DNS, sysctls, ulimits, tty…), the task's
``Resources``, ``LogDriver`` and placement by platform. What a swarm task
cannot carry is noted by ``envd.swarm.desired``, not sent.
"""

from __future__ import annotations

from typing import Any

from envd.values.types import HostSettings


def container_keys(h: HostSettings) -> dict[str, Any]:
    """The ``ContainerSpec`` keys of the settings a swarm task has."""
    out: dict[str, Any] = {}
    if h.extra_hosts:
        # A swarm wants /etc/hosts lines: "IP host", the other way round.
        out["Hosts"] = [f"{ip} {host}" for host, _, ip in (e.partition(":") for e in h.extra_hosts)]
    dns: dict[str, Any] = {}
    if h.dns:
        dns["Nameservers"] = list(h.dns)
    if h.dns_search:
        dns["Search"] = list(h.dns_search)
    if h.dns_options:
        dns["Options"] = list(h.dns_options)
    if dns:
        out["DNSConfig"] = dns
    if h.sysctls:
        out["Sysctls"] = dict(h.sysctls)
    if h.ulimits:
        out["Ulimits"] = [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in h.ulimits]
    return out


def task_keys(h: HostSettings) -> dict[str, Any]:
    """The ``TaskTemplate`` keys: Resources, LogDriver, Placement."""
    out: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if h.nano_cpus:
        limits["NanoCPUs"] = h.nano_cpus
    if h.memory:
        limits["MemoryBytes"] = h.memory
    if h.pids_limit > 0:
        limits["Pids"] = h.pids_limit
    reservations: dict[str, Any] = {}
    if h.memory_reservation:
        reservations["MemoryBytes"] = h.memory_reservation
    resources = {k: v for k, v in (("Limits", limits), ("Reservations", reservations)) if v}
    if resources:
        out["Resources"] = resources
    if h.log_config is not None:
        out["LogDriver"] = {"Name": h.log_config.driver, "Options": dict(h.log_config.options)}
    if h.platform:
        os_name, _, arch = h.platform.partition("/")
        platform = {"OS": os_name}
        if arch:
            platform["Architecture"] = arch.partition("/")[0]
        out["Placement"] = {"Platforms": [platform]}
    return out
