"""The fake engine's addressing rules: static addresses checked at start, subnet
overlaps at network create, and the inspect fields the contract suite compares,
as the real engine has them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from envd.engine.fake_state import FakeContainer, FakeNetwork
from envd.values.errors import EngineError
from envd.values.types import IpamPool


def overlaps(pools: tuple[IpamPool, ...], others: Iterable[IpamPool]) -> bool:
    """Whether a subnet of ``pools`` overlaps one of ``others`` (the engine refuses that)."""
    mine = [ipaddress.ip_network(p.subnet, strict=False) for p in pools if p.subnet]
    theirs = [ipaddress.ip_network(p.subnet, strict=False) for p in others if p.subnet]
    return any(a.overlaps(b) for a in mine for b in theirs if a.version == b.version)  # type: ignore[arg-type]


def check_addresses(
    c: FakeContainer, networks: Mapping[str, FakeNetwork], containers: Iterable[FakeContainer]
) -> None:
    """Refuse static addresses as the engine does when it starts a container."""
    others = [o for o in containers if o.id != c.id and o.status == "running"]
    for att in c.spec.networks:
        net = networks.get(att.network)
        for address in filter(None, (att.ipv4_address, att.ipv6_address)):
            if net is None or not any(p.subnet for p in net.ipam):
                raise EngineError(
                    "user specified IP address is supported only when connecting to"
                    " networks with user configured subnets",
                    400,
                )
            ip = ipaddress.ip_address(address)
            pools = [ipaddress.ip_network(p.subnet, strict=False) for p in net.ipam if p.subnet]
            if not any(ip.version == n.version and ip in n for n in pools):
                raise EngineError(
                    f"Invalid address {address}: It does not belong to any of this"
                    " network's subnets",
                    400,
                )
            reserved = {a for p in net.ipam for _, a in p.aux_addresses}
            reserved |= {p.gateway for p in net.ipam}
            reserved |= {
                a
                for o in others
                for oa in o.spec.networks
                if oa.network == att.network
                for a in (oa.ipv4_address, oa.ipv6_address)
            }
            if address in reserved:
                raise EngineError("Address already in use", 500)


def inspect_doc(c: FakeContainer) -> dict[str, Any]:
    """The part of the engine's container inspect the contract suite compares."""
    exposed: dict[str, Any] = {f"{p.container_port}/{p.protocol}": {} for p in c.spec.ports}
    exposed.update({k: {} for k in c.spec.exposed})
    nets: dict[str, Any] = {}
    for a in c.spec.networks:
        ipam = {
            k: v for k, v in (("IPv4Address", a.ipv4_address), ("IPv6Address", a.ipv6_address)) if v
        }
        nets[a.network] = {
            "Aliases": list(a.aliases) or None,
            "IPAMConfig": ipam or None,
            "IPAddress": a.ipv4_address if c.status == "running" else "",
        }
    return {
        "Id": c.id,
        "Name": f"/{c.name}",
        "Config": {"ExposedPorts": exposed or None, "Hostname": c.spec.hostname},
        "HostConfig": {"NetworkMode": c.network_mode},
        "NetworkSettings": {"Networks": nets},
    }
