"""Cross-field checks of names and networking: ``container_name`` unique in the
project, ``network_mode: service:NAME`` naming a service, static addresses
inside their network's ``ipam`` subnets.
"""

from __future__ import annotations

from collections.abc import Callable

from envd.spec.hints import did_you_mean
from envd.spec.models import Spec

Add = Callable[..., None]


def network_target(mode: str | None) -> str | None:
    """The service a ``service:NAME`` network_mode joins, else None."""
    if mode and mode.startswith("service:"):
        return mode.partition(":")[2]
    return None


def net_checks(spec: Spec, project: str, add: Add) -> None:
    services = spec.services
    # Every name a container of this project will carry, by owner.
    generated = {
        f"{project}-{name}-{r}": name
        for name, svc in services.items()
        if not svc.container_name
        for r in range(1, max(svc.replicas, 1) + 1)
    }
    taken: dict[str, str] = {}
    addresses: dict[tuple[str, str], str] = {}  # (network, address) -> service
    for name, svc in services.items():
        cname = svc.container_name
        if cname:
            other = taken.get(cname) or generated.get(cname)
            if other is not None:
                add(
                    f"services {other!r} and {name!r} both name a container {cname!r};"
                    " container names are unique on an engine",
                    "services",
                    name,
                    "container_name",
                )
            taken.setdefault(cname, name)
        target = network_target(svc.network_mode)
        if target is not None:
            if target == name:
                add(
                    f"service {name!r}: network_mode joins the service itself",
                    "services",
                    name,
                    "network_mode",
                )
            elif target not in services:
                add(
                    f"service {name!r}: network_mode joins unknown service {target!r}"
                    f"{did_you_mean(target, services)}",
                    "services",
                    name,
                    "network_mode",
                )
            elif services[target].replicas == 0:
                add(
                    f"service {name!r}: network_mode joins {target!r}, which has replicas = 0"
                    " (no container to share a network with)",
                    "services",
                    name,
                    "network_mode",
                )
            elif services[target].network_mode in ("host", "none"):
                # The engine would share a namespace the target does not own.
                add(
                    f"service {name!r}: network_mode joins {target!r}, which uses network_mode"
                    f" {services[target].network_mode!r}; use that mode here instead",
                    "services",
                    name,
                    "network_mode",
                )
        for key, att in svc.networks.items():
            net = spec.networks.get(key)
            for kind in ("ipv4_address", "ipv6_address"):
                address = getattr(att, kind)
                if not address:
                    continue
                where = ("services", name, "networks", key, kind)
                if svc.replicas > 1:
                    add(
                        f"service {name!r}: {kind} {address} names one container's address; it"
                        f" cannot be used with replicas = {svc.replicas}",
                        *where,
                    )
                other = addresses.setdefault((key, address), name)
                if other != name:
                    add(
                        f"services {other!r} and {name!r} both take {address} on network {key!r}",
                        *where,
                    )
                reserved = {
                    a: what
                    for p in (net.ipam.config if net is not None and net.ipam is not None else [])
                    for a, what in [(p.gateway, "the gateway")]
                    + [(v, f"aux address {k!r}") for k, v in p.aux_addresses.items()]
                }
                if address in reserved:
                    add(
                        f"service {name!r}: {kind} {address} is {reserved[address]} of network"
                        f" {key!r}",
                        *where,
                    )
                    continue
                pools = net.ipam.config if net is not None and net.ipam is not None else []
                if net is not None and net.external:
                    continue  # the engine knows its subnets; envd does not
                if not any(p.contains(address) for p in pools):
                    add(
                        f"service {name!r}: {kind} {address} on network {key!r} needs an ipam"
                        f" subnet holding it; declare [networks.{key}] ipam = {{ config ="
                        ' [{ subnet = "..." }] }',
                        "services",
                        name,
                        "networks",
                        key,
                        kind,
                    )
                elif kind == "ipv6_address" and net is not None and not net.enable_ipv6:
                    add(
                        f"service {name!r}: ipv6_address on network {key!r} needs"
                        " enable_ipv6 = true on that network",
                        "services",
                        name,
                        "networks",
                        key,
                        kind,
                    )
    for key, net in spec.networks.items():
        if net.ipam is None:
            continue
        for i, pool in enumerate(net.ipam.config):
            if (pool.gateway or pool.ip_range or pool.aux_addresses) and not pool.subnet:
                add(
                    f"network {key!r}: ipam.config[{i}] needs a 'subnet' for its"
                    " gateway, ip_range or aux_addresses",
                    "networks",
                    key,
                    "ipam",
                    "config",
                    i,
                )
            if pool.gateway and pool.subnet and not pool.contains(pool.gateway):
                add(
                    f"network {key!r}: gateway {pool.gateway} lies outside subnet {pool.subnet}",
                    "networks",
                    key,
                    "ipam",
                    "config",
                    i,
                    "gateway",
                )
            if not pool.holds_range():
                add(
                    f"network {key!r}: ip_range {pool.ip_range} lies outside subnet {pool.subnet}",
                    "networks",
                    key,
                    "ipam",
                    "config",
                    i,
                    "ip_range",
                )
            if ":" in pool.subnet and not net.enable_ipv6:
                add(
                    f"network {key!r}: IPv6 subnet {pool.subnet} needs enable_ipv6 = true",
                    "networks",
                    key,
                    "ipam",
                    "config",
                    i,
                    "subnet",
                )
