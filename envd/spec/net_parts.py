"""Names and networking of a service, as Compose writes them: ``container_name``,
``expose``, ``network_mode``, and a network's ``ipam`` (static addresses).

Kept apart from ``service_parts`` so the rules Compose and the engine enforce
between these fields live in one place (``network_rules``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, WithJsonSchema, field_validator

from envd.spec.expose import EXPOSE_PATTERN, expose_ports
from envd.spec.model_base import SpecModel, StrMap

if TYPE_CHECKING:
    from envd.spec.models import Service

# Compose's own pattern for container_name (compose-spec schema).
CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

ContainerName = Annotated[str, Field(pattern=CONTAINER_NAME.pattern, max_length=128)]


def _expose(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str):
            expose_ports(item)  # raises with the entry named
        out.append(item)
    return out


Expose = Annotated[
    list[str],
    BeforeValidator(_expose),
    WithJsonSchema(
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "string", "pattern": EXPOSE_PATTERN},
                    {"type": "integer", "minimum": 1, "maximum": 65535},
                ]
            },
        }
    ),
]

_NETWORK_MODE = re.compile(r"^(host|none|bridge|(service|container):[a-zA-Z0-9][a-zA-Z0-9_.-]*)$")


def _network_mode(value: Any) -> Any:
    if isinstance(value, str) and not _NETWORK_MODE.match(value):
        raise ValueError(
            f"network_mode {value!r} is not supported: use 'host', 'none', 'bridge',"
            " 'service:NAME' or 'container:NAME'"
        )
    return value


NetworkMode = Annotated[
    str,
    BeforeValidator(_network_mode),
    WithJsonSchema({"type": "string", "pattern": _NETWORK_MODE.pattern}),
]


def network_rules(svc: Service) -> None:
    """Refuse what Compose or the engine refuses between these fields (one sentence each)."""
    if svc.container_name and svc.replicas > 1:
        raise ValueError(
            f"container_name {svc.container_name!r} names one container; it cannot be used"
            f" with replicas = {svc.replicas}"
        )
    mode = svc.network_mode
    if not mode:
        return
    if svc.networks:
        raise ValueError(
            f"network_mode {mode!r} and networks exclude each other (as in Compose); keep one"
        )
    if mode in ("host", "none") and svc.ports:
        why = "uses the host's ports directly" if mode == "host" else "has no network"
        raise ValueError(
            f"ports have no effect with network_mode {mode!r} (the container {why}); remove them"
        )
    if mode.startswith(("service:", "container:")):
        # dns and extra_hosts come with another group's fields (getattr: absent until then).
        shared = [
            f
            for f in ("ports", "expose", "hostname", "dns", "extra_hosts")
            if getattr(svc, f, None)
        ]
        if shared:
            raise ValueError(
                f"network_mode {mode!r} shares another container's network:"
                f" {', '.join(shared)} {'belongs' if len(shared) == 1 else 'belong'} to that"
                " container (the engine refuses them here)"
            )


# --------------------------------------------------------------------------- ipam


def _address(kind: str, value: str, network: bool = False) -> str:
    try:
        if network:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            f"{kind} {value!r} is not a valid IP {'subnet' if network else 'address'}"
        ) from None
    return value


class IpamConfig(SpecModel):
    """One address pool of a network (Compose's ``ipam.config`` entry)."""

    subnet: str = ""
    ip_range: str = ""
    gateway: str = ""
    aux_addresses: StrMap = Field(default_factory=dict)

    @field_validator("subnet", "ip_range")
    @classmethod
    def _net(cls, v: str, info: ValidationInfo) -> str:
        return _address(str(info.field_name), v, network=True) if v else v

    def holds_range(self) -> bool:
        """Whether ``ip_range`` (if any) lies inside ``subnet``."""
        if not (self.ip_range and self.subnet):
            return True
        inner = ipaddress.ip_network(self.ip_range, strict=False)
        outer = ipaddress.ip_network(self.subnet, strict=False)
        return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, v: str) -> str:
        return _address("gateway", v) if v else v

    @field_validator("aux_addresses")
    @classmethod
    def _aux(cls, v: dict[str, str]) -> dict[str, str]:
        for value in v.values():
            _address("aux address", value)
        return v

    def contains(self, address: str) -> bool:
        """Whether ``address`` lies in this pool's subnet."""
        if not self.subnet:
            return False
        ip = ipaddress.ip_address(address)
        net = ipaddress.ip_network(self.subnet, strict=False)
        return ip.version == net.version and ip in net


class Ipam(SpecModel):
    """A network's address management: the driver and its pools."""

    driver: str = ""
    config: list[IpamConfig] = Field(default_factory=list)


def check_static_address(kind: str, value: str) -> str:
    _address(kind, value)
    version = ipaddress.ip_address(value).version
    if (kind == "ipv4_address") != (version == 4):
        raise ValueError(f"{kind} {value!r} is an IPv{version} address")
    return value
