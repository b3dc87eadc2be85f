"""Container-level host settings of a service, with Compose's names and
syntaxes: resource limits (``cpus``, ``mem_limit``…), ``ulimits``,
``sysctls``, ``extra_hosts`` and DNS. Devices, GPUs, security options,
namespaces, platform and logging are in ``host_isolation``.

Every short syntax is normalised here (``"512m"`` to bytes, ``"host=ip"`` to
``host:ip``…), so everything downstream sees one shape; a bad value is refused
with a sentence naming it.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from envd.spec.model_base import SpecModel, StrMap

# --------------------------------------------------------------------------- sizes

# Compose's (go-units RAMInBytes) units: binary multiples, 'b' and 'ib' optional.
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_MAX_BYTES = 2**63 - 1


def parse_bytes(value: Any, allow_unlimited: bool = False) -> int:
    """``512m``, ``1g``, ``1.5gb``, ``100k`` or a number of bytes, as bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like '512m' or a number of bytes, got {value}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        if allow_unlimited and value.strip() == "-1":
            return -1
        m = _SIZE.match(value)
        if m is None:
            raise ValueError(
                f"{value!r} is not a size: use a number of bytes or one with a unit"
                " (b, k, m, g, t; e.g. '512m', '1.5g')"
            )
        number = math.floor(float(m.group(1)) * _UNITS[m.group(2).lower()])
    else:
        raise ValueError(f"expected a size like '512m' or a number of bytes, got {value!r}")
    if allow_unlimited and number == -1:
        return -1
    if not 0 <= number <= _MAX_BYTES:
        raise ValueError(f"size {value!r} is out of range")
    return number


_SIZE_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*([kKmMgGtTpP]?)([iI]?[bB])?\s*$"},
    ],
    "description": "Bytes, or a size with a unit as Compose writes it: '512m', '1g', '1.5gb'.",
}

ByteSize = Annotated[int, BeforeValidator(parse_bytes), WithJsonSchema(_SIZE_SCHEMA)]
SwapSize = Annotated[
    int,
    BeforeValidator(lambda v: parse_bytes(v, allow_unlimited=True)),
    WithJsonSchema(
        {
            "anyOf": [*_SIZE_SCHEMA["anyOf"], {"const": -1}],
            "description": "Memory plus swap (Compose's memswap_limit); -1: unlimited swap.",
        }
    ),
]


def _cpus(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number of CPUs like 0.5 or '1.5', got {value}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of CPUs like 0.5 or '1.5', got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"cpus must be a positive number, got {value!r}")
    if 0 < number < 0.01:
        raise ValueError(f"cpus {value!r} is below the engine's minimum of 0.01")
    return number


Cpus = Annotated[
    float,
    BeforeValidator(_cpus),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
            ],
            "description": "CPUs the service may use (0.5 is half a CPU).",
        }
    ),
]

# --------------------------------------------------------------------------- ulimits

ULIMIT_NAMES = frozenset(
    [
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ]
)


class Ulimit(SpecModel):
    soft: int = Field(ge=-1)
    hard: int = Field(ge=-1)

    @model_validator(mode="after")
    def _order(self) -> Ulimit:
        if self.hard != -1 and (self.soft == -1 or self.soft > self.hard):
            raise ValueError(f"the soft limit {self.soft} is above the hard limit {self.hard}")
        return self


def _ulimits(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, limit in value.items():
        if name not in ULIMIT_NAMES:
            raise ValueError(f"unknown ulimit {name!r}; known: {', '.join(sorted(ULIMIT_NAMES))}")
        if isinstance(limit, int) and not isinstance(limit, bool):
            out[name] = {"soft": limit, "hard": limit}  # Compose: one number sets both
        else:
            out[name] = limit
    return out


Ulimits = Annotated[
    dict[str, Ulimit],
    BeforeValidator(_ulimits),
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"enum": sorted(ULIMIT_NAMES)},
            "additionalProperties": {
                "anyOf": [
                    {"type": "integer", "minimum": -1},
                    {
                        "type": "object",
                        "properties": {
                            "soft": {"type": "integer", "minimum": -1},
                            "hard": {"type": "integer", "minimum": -1},
                        },
                        "required": ["soft", "hard"],
                        "additionalProperties": False,
                    },
                ]
            },
            "description": "Per limit: one number (soft = hard) or { soft, hard }.",
        }
    ),
]

# --------------------------------------------------------------------------- sysctls

_SYSCTL = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_.\-/]*$")


def _sysctls(value: Any) -> Any:
    if isinstance(value, list):
        pairs: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise ValueError(f"sysctl entries must be 'name=value', got {item!r}")
            key, _, val = item.partition("=")
            pairs[key.strip()] = val.strip()
        value = pairs
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not _SYSCTL.match(key):
                raise ValueError(f"{key!r} is not a sysctl name")
    return value


Sysctls = Annotated[
    StrMap,
    BeforeValidator(_sysctls),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "number", "boolean"]},
                },
                {"type": "array", "items": {"type": "string", "pattern": "^[^=]+=.*$"}},
            ],
            "description": "Kernel parameters of the container's namespaces: a map or 'name=value' list.",
        }
    ),
]

# --------------------------------------------------------------------------- extra_hosts

_HOSTNAME = re.compile(r"^[a-zA-Z0-9_]([a-zA-Z0-9_.\-]*[a-zA-Z0-9_])?$")
HOST_GATEWAY = "host-gateway"  # the engine puts its gateway's address there


def _host_ip(host: str, ip: str) -> str:
    ip = ip.strip()
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not _HOSTNAME.match(host):
        raise ValueError(f"extra_hosts: {host!r} is not a host name")
    if ip != HOST_GATEWAY:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(
                f"extra_hosts: {ip!r} (for {host!r}) is not an IP address or 'host-gateway'"
            ) from None
    return f"{host}:{ip}"


def _extra_hosts(value: Any) -> Any:
    """Compose's list (``host:ip`` or ``host=ip``) or map (one ip or a list) as ``host:ip``."""
    out: list[str] = []
    if isinstance(value, dict):
        for host, ips in value.items():
            for ip in ips if isinstance(ips, list) else [ips]:
                if not isinstance(ip, str):
                    raise ValueError(f"extra_hosts: the address of {host!r} must be a string")
                out.append(_host_ip(str(host), ip))
        return out
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"extra_hosts entries must be 'host:ip' strings, got {item!r}")
            # '=' first: an IPv6 address holds ':' (Compose v2 reads both).
            host, sep, ip = item.partition("=")
            if not sep:
                host, sep, ip = item.partition(":")
            if not sep:
                raise ValueError(f"extra_hosts entry {item!r} must be 'host:ip' or 'host=ip'")
            out.append(_host_ip(host.strip(), ip))
        return out
    return value


ExtraHosts = Annotated[
    list[str],
    BeforeValidator(_extra_hosts),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string", "pattern": "^[^:=]+[:=].+$"}},
                {
                    "type": "object",
                    "additionalProperties": {
                        "anyOf": [
                            {"type": "string"},
                            {"type": "array", "items": {"type": "string"}},
                        ]
                    },
                },
            ],
            "description": "Lines for /etc/hosts: 'host:ip', 'host=ip' or { host = 'ip' }.",
        }
    ),
]

# --------------------------------------------------------------------------- dns


def _dns(value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        for item in items:
            if isinstance(item, str):
                try:
                    ipaddress.ip_address(item)
                except ValueError:
                    raise ValueError(f"dns: {item!r} is not an IP address") from None
    return items


DnsServers = Annotated[
    list[str],
    BeforeValidator(_dns),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
