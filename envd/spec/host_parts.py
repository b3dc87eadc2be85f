"""Container-level host settings of a service, with Compose's names and
syntaxes: resource limits (``cpus``, ``mem_limit``…), ``ulimits``,
``sysctls``, ``extra_hosts``, DNS, ``devices``, ``security_opt``, ``pid`` /
``ipc`` modes, ``logging`` and ``gpus`` (device requests).

Every short syntax is normalised here (``"512m"`` to bytes, ``"host=ip"`` to
``host:ip``, a device string to ``Device``…), so everything downstream sees
one shape; a bad value is refused with a sentence naming it.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

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

# --------------------------------------------------------------------------- devices


class Device(SpecModel):
    """A host device in the container. Short syntax: ``/dev/host[:/dev/ctr[:rwm]]``."""

    source: str
    target: str = ""
    permissions: str = "rwm"

    @field_validator("source", "target")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if v and not v.startswith("/"):
            if "=" in v:
                raise ValueError(
                    f"{v!r}: CDI device names need Docker API 1.45; envd speaks 1.41"
                    " (use a device path like /dev/fuse, or gpus for GPUs)"
                )
            raise ValueError(f"device path {v!r} must be absolute")
        return v

    @field_validator("permissions")
    @classmethod
    def _perms(cls, v: str) -> str:
        if not v or any(c not in "rwm" for c in v) or len(set(v)) != len(v):
            raise ValueError(f"device permissions {v!r} must be letters of 'rwm'")
        return v

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        parts = data.split(":")
        if len(parts) > 3 or not parts[0]:
            raise ValueError(f"device {data!r} must be 'host[:container[:permissions]]'")
        out: dict[str, Any] = {"source": parts[0]}
        if len(parts) == 2 and parts[1] and not parts[1].startswith("/"):
            out["permissions"] = parts[1]  # docker's `/dev/x:rw`
        elif len(parts) >= 2:
            out["target"] = parts[1]
        if len(parts) == 3:
            out["permissions"] = parts[2]
        return out

    @property
    def container_path(self) -> str:
        return self.target or self.source


# --------------------------------------------------------------------------- security_opt

# Options that switch off a confinement the engine applies by default.
UNCONFINED_OPTIONS = frozenset({"seccomp=unconfined", "apparmor=unconfined", "label=disable"})
_SECURITY_KEYS = ("seccomp", "apparmor", "label", "systempaths")


def _security_opt(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for item in value:
        if not isinstance(item, str):
            out.append(item)
            continue
        text = item.strip()
        if text in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"):
            out.append("no-new-privileges")
            continue
        if text in ("no-new-privileges=false", "no-new-privileges:false"):
            continue  # the engine's default
        key, sep, val = text.partition("=")
        if not sep:
            key, sep, val = text.partition(":")  # the old `label:disable` spelling
        if not sep or key not in _SECURITY_KEYS or not val:
            raise ValueError(
                f"security_opt {item!r} is not one of no-new-privileges, seccomp=…,"
                " apparmor=…, label=…, systempaths=unconfined"
            )
        if key == "seccomp" and val != "unconfined":
            raise ValueError(
                f"security_opt {item!r}: only seccomp=unconfined is supported (a profile file"
                " is not read by envd yet; the engine's default profile applies otherwise)"
            )
        if key == "systempaths" and val != "unconfined":
            raise ValueError(f"security_opt {item!r}: systempaths takes only 'unconfined'")
        out.append(f"{key}={val}")
    return out


SecurityOpts = Annotated[
    list[str],
    BeforeValidator(_security_opt),
    WithJsonSchema({"type": "array", "items": {"type": "string"}}),
]

# --------------------------------------------------------------------------- namespaces

_SHARED = re.compile(r"^(container|service):[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def _namespace(kinds: tuple[str, ...]) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str) and value not in kinds and not _SHARED.match(value):
            allowed = ", ".join(repr(k) for k in kinds if k)
            raise ValueError(
                f"{value!r} must be one of {allowed}, 'service:NAME' or 'container:NAME'"
            )
        return value

    return check


PID_MODES = ("", "host")
IPC_MODES = ("", "host", "private", "shareable", "none")

PidMode = Annotated[
    str,
    BeforeValidator(_namespace(PID_MODES)),
    WithJsonSchema({"type": "string", "pattern": r"^(host|(service|container):.+)$"}),
]
IpcMode = Annotated[
    str,
    BeforeValidator(_namespace(IPC_MODES)),
    WithJsonSchema(
        {"type": "string", "pattern": r"^(host|private|shareable|none|(service|container):.+)$"}
    ),
]

_PLATFORM = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+(/[a-z0-9_.]+)?)?$")


def _platform(value: Any) -> Any:
    if isinstance(value, str) and value and not _PLATFORM.match(value):
        raise ValueError(f"platform {value!r} must be 'os[/arch[/variant]]', e.g. 'linux/amd64'")
    return value


Platform = Annotated[
    str,
    BeforeValidator(_platform),
    WithJsonSchema({"type": "string", "pattern": _PLATFORM.pattern}),
]

# --------------------------------------------------------------------------- logging


class Logging(SpecModel):
    """Where the engine sends the service's output (Compose's ``logging``)."""

    driver: str = "json-file"
    options: StrMap = Field(default_factory=dict)


# --------------------------------------------------------------------------- gpus


class DeviceRequest(SpecModel):
    """Devices a driver hands out (Compose's ``deploy.resources.reservations.devices``)."""

    driver: str = ""
    count: Annotated[int, WithJsonSchema({"anyOf": [{"type": "integer"}, {"const": "all"}]})] = 0
    device_ids: list[str] = Field(default_factory=list)
    capabilities: list[str] = Field(default_factory=list)
    options: StrMap = Field(default_factory=dict)

    @field_validator("count", mode="before")
    @classmethod
    def _all(cls, v: Any) -> Any:
        if v == "all":
            return -1
        if isinstance(v, int) and not isinstance(v, bool) and v < -1:
            raise ValueError(f"count {v} must be a positive number or 'all'")
        return v

    @model_validator(mode="after")
    def _what(self) -> DeviceRequest:
        if self.count and self.device_ids:
            raise ValueError("a device request takes 'count' or 'device_ids', not both")
        return self


_REQUEST_SCHEMA = {
    "type": "object",
    "properties": {
        "driver": {"type": "string"},
        "count": {"anyOf": [{"type": "integer", "minimum": -1}, {"const": "all"}]},
        "device_ids": {"type": "array", "items": {"type": "string"}},
        "capabilities": {"type": "array", "items": {"type": "string"}},
        "options": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def _gpus(value: Any) -> Any:
    """``"all"``, a count, or a list of requests; the short forms ask for GPUs."""
    if value == "all":
        return [{"count": -1, "capabilities": ["gpu"]}]
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"gpus = {value}: ask for at least one GPU, or 'all'")
        return [{"count": value, "capabilities": ["gpu"]}]
    if isinstance(value, str):
        raise ValueError(f"gpus = {value!r}: use 'all', a number, or a list of device requests")
    return value


Gpus = Annotated[
    list[DeviceRequest],
    BeforeValidator(_gpus),
    WithJsonSchema(
        {
            "anyOf": [
                {"const": "all"},
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": _REQUEST_SCHEMA},
            ],
            "description": "GPUs: 'all', a count, or device requests (driver, count, device_ids, capabilities).",
        }
    ),
]

# Runtimes that come with the engine; any other is a host program the admin
# registered (nvidia hands over GPUs, others may weaken isolation): consent.
DEFAULT_RUNTIMES = frozenset({"", "runc", "io.containerd.runc.v2"})

# Settings a swarm task cannot carry, with why: the notes of `envd deploy
# --target swarm` and of the stack export.
SWARM_MISSING = {
    "memswap_limit": "a swarm task has no swap limit",
    "shm_size": "a swarm task has no shm size (mount a tmpfs at /dev/shm)",
    "devices": "a swarm task cannot map host devices",
    "gpus": "a swarm reserves GPUs as generic resources the nodes advertise",
    "domainname": "a swarm task has no domainname",
    "runtime": "a swarm task runs with the node's default runtime",
    "security_opt": "a swarm task takes no security options",
    "pid": "a swarm task has no pid mode",
    "ipc": "a swarm task has no ipc mode",
}
