"""Container-level host settings of a service that touch its isolation, with
Compose's names and syntaxes: ``devices``, ``gpus`` (device requests),
``security_opt``, ``pid`` / ``ipc`` modes, ``platform``, ``runtime`` and
``logging``. Resources, ulimits, sysctls and DNS are in ``host_parts``.

Short syntaxes are normalised here (a device string to ``Device``, ``gpus =
"all"`` to a request…); a bad value is refused with a sentence naming it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from envd.spec.model_base import SpecModel, StrMap

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


DeviceEntry = Annotated[
    Device,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "host[:container[:permissions]]"},
                {
                    "type": "object",
                    "properties": {
                        "source": {"type": "string"},
                        "target": {"type": "string"},
                        "permissions": {"type": "string", "pattern": "^[rwm]{1,3}$"},
                    },
                    "required": ["source"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]

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
