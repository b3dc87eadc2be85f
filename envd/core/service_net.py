"""Names and networking in the desired state (pure): a network's ipam pools, a
service's exposed ports and network mode, and the bind sources ``up`` creates."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from envd.spec.expose import expose_ports
from envd.values.types import IpamPool

if TYPE_CHECKING:
    from envd.spec.load import LoadedSpec
    from envd.spec.models import NetworkDef, Service


def network_ipam(definition: NetworkDef | None) -> tuple[str, tuple[IpamPool, ...], bool]:
    """(ipam driver, pools, enable_ipv6) of a network definition."""
    if definition is None:
        return "", (), False
    if definition.ipam is None:
        return "", (), definition.enable_ipv6
    pools = tuple(
        IpamPool(
            _subnet(c.subnet),
            _subnet(c.ip_range),
            c.gateway,
            tuple(sorted(c.aux_addresses.items())),
        )
        for c in definition.ipam.config
    )
    return definition.ipam.driver, pools, definition.enable_ipv6


def _subnet(text: str) -> str:
    """A subnet as the engine reports it back (``10.5.0.7/16`` is ``10.5.0.0/16``)."""
    return str(ipaddress.ip_network(text, strict=False)) if text else ""


def exposed(expose: Iterable[str]) -> tuple[str, ...]:
    """The engine's ExposedPorts keys of ``expose`` entries, unique and in port order."""
    keys = {port for entry in expose for port in expose_ports(entry)}
    return tuple(sorted(keys, key=lambda k: (int(k.partition("/")[0]), k)))


def network_mode(svc: Service, loaded: LoadedSpec) -> tuple[str, str | None]:
    """The engine's NetworkMode for a service, and the service it implies a dependency on.

    ``service:NAME`` joins the namespace of NAME's first container by its
    container name (the engine resolves it to the id at create time); like
    Compose, NAME must be started first.
    """
    mode = svc.network_mode or ""
    if not mode.startswith("service:"):
        return mode, None
    target = mode.partition(":")[2]
    joined = loaded.spec.services[target].container_name or f"{loaded.project}-{target}-1"
    return f"container:{joined}", target


def bind_dirs(loaded: LoadedSpec, active: Mapping[str, Service]) -> tuple[str, ...]:
    """Bind sources ``up`` creates when missing: all but create_host_path = false."""
    return tuple(
        sorted(
            {
                loaded.bind_sources[m.source]
                for svc in active.values()
                for m in svc.volumes
                if m.type == "bind" and m.creates_host_path
            }
        )
    )
