"""The pure vocabulary of envd on Swarm: object names, labels, restart and update
mapping, tmpfs sizes and the hashes that decide when a service must roll.

Shared by ``desire_swarm`` and the stack export, so both map a spec the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from envd.core.container_hash import FIRST_CREATE_FIELDS
from envd.core.desired import DesiredService
from envd.core.hashing import at_default, digest, hash_fields, plain_deep

# Re-exported: the swarm vocabulary in one import for desire_swarm and its tests.
from envd.spec.compose_words import restart_condition as restart_condition
from envd.values import labels
from envd.values.errors import (
    UsageError,
)
from envd.values.swarm_types import TASK_HASH_LABEL, SwarmServiceSpec, TmpfsMount
from envd.values.types import ContainerCreate, HostSettings

if TYPE_CHECKING:
    from envd.spec.models import Service

TARGET_LABEL = labels.TARGET
SECRET_LABEL = labels.SECRET
IMAGE_ID_LABEL = labels.IMAGE_ID
# What `docker stack` commands look for: `docker stack ps <project>` works.
STACK_NAMESPACE = "com.docker.stack.namespace"
TARGET = "swarm"
SECRET_NAME_MAX = 64
SECRETS_DIR = "/run/secrets/"
CONFIG_LABEL = labels.CONFIG
# A swarm takes a config of 1 to 1023999 bytes ("config data must be larger
# than 0 and less than 1024000 bytes"); envd's own cap is a little higher.
SWARM_CONFIG_MAX = 1000 * 1024


class NotSwarmManager(UsageError):
    """The engine is not a manager of an active swarm (exit 2: nothing was changed)."""


# --------------------------------------------------------------------------- desired


@dataclass(frozen=True)
class SwarmSecret:
    key: str  # the name in the spec
    name: str  # the versioned swarm name
    labels: Mapping[str, str]
    value: bytes = field(default=b"", repr=False, compare=False)


# configs (Compose's `configs`): immutable in swarm, so versioned by content
@dataclass(frozen=True)
class SwarmConfig:
    key: str  # the name in the spec
    name: str  # the versioned swarm name
    labels: Mapping[str, str]
    value: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True)
class SwarmNetwork:
    key: str
    name: str
    labels: Mapping[str, str]
    internal: bool = False
    driver: str = "overlay"
    external: bool = False


@dataclass(frozen=True)
class SwarmService:
    service: str  # the name in the spec
    spec: SwarmServiceSpec
    config_hash: str
    task_hash: str
    field_hashes: str
    order_reason: str = ""


@dataclass(frozen=True)
class SwarmDesired:
    project: str
    environment: str | None
    services: Mapping[str, SwarmService]
    networks: Mapping[str, SwarmNetwork]
    secrets: Mapping[str, SwarmSecret]  # by swarm name
    notes: tuple[str, ...] = ()
    # Images a deploy would build first (only filled when preparing without building).
    builds: tuple[str, ...] = ()
    configs: Mapping[str, SwarmConfig] = field(default_factory=dict)  # by swarm name

    def common_labels(self) -> dict[str, str]:
        return project_labels(self.project)


def project_labels(project: str) -> dict[str, str]:
    """The labels every swarm object of a project carries (what `down` removes)."""
    return {labels.PROJECT: project, TARGET_LABEL: TARGET}


def service_name(project: str, service: str) -> str:
    return f"{project}_{service}"


def secret_name(project: str, key: str, value_digest: str) -> str:
    """``<project>_<secret>_<digest[:12]>``, shortened to swarm's 64 characters."""
    suffix = "_" + value_digest[:12]
    return f"{project}_{key}"[: SECRET_NAME_MAX - len(suffix)] + suffix


def check_swarm_config(key: str, value: bytes) -> None:
    """Refuse, before anything is deployed, a config content a swarm would reject."""
    if not value:
        raise UsageError(f"configs.{key}: a swarm config cannot be empty; give it some content")
    if len(value) >= SWARM_CONFIG_MAX:
        raise UsageError(
            f"configs.{key}: {len(value)} bytes is too large for a swarm config"
            f" (less than {SWARM_CONFIG_MAX} bytes)"
        )


def config_name(project: str, key: str, value: bytes) -> str:
    """``<project>_<config>_<sha256[:12]>`` of its content (not secret), like ``secret_name``."""
    return secret_name(project, key, hashlib.sha256(value).hexdigest())


def update_order(svc: DesiredService, endpoint_mode: str = "vip") -> tuple[str, str]:
    """``start-first`` unless two tasks of the service must not run at once; and why.

    With virtual IPs, published ports go through the routing mesh (ingress),
    where no task binds the host port, so a fixed published port does not stop
    the new task from starting before the old one stops. With DNS round robin
    ports are published in host mode: the task itself binds the node's port, and
    a new task cannot bind a fixed port the old one holds. State on the node
    stops it too: a writable named volume or bind mount would be shared by the
    old and the new task (two databases on one data directory).
    """
    if endpoint_mode == "dnsrr":
        for p in svc.template.ports:
            if p.host_port:
                return "stop-first", f"fixed host-mode port {p.host_port}"
    for m in svc.template.mounts:
        if m.type in ("volume", "bind") and m.source and not m.read_only:
            kind = "volume" if m.type == "volume" else "bind mount"
            return "stop-first", f"writable {kind} {m.source} at {m.target}"
    return "start-first", ""


def swarm_net_notes(where: str, svc: Service) -> list[str]:
    """What a swarm cannot do of a service's names and networking, one note each."""
    notes: list[str] = []
    if svc.container_name:
        notes.append(
            f"{where}.container_name: a swarm names its task containers itself;"
            f" {svc.container_name!r} is unused (the service is {where.rsplit('.', 1)[-1]})"
        )
    if svc.expose:
        notes.append(
            f"{where}.expose: recorded only; tasks reach each other on every port of an"
            " overlay network"
        )
    if svc.network_mode:
        notes.append(
            f"{where}.network_mode: {svc.network_mode!r} cannot be expressed on a swarm;"
            " the service is left on no project network"
        )
    for key, net in svc.networks.items():
        for attr in ("ipv4_address", "ipv6_address"):
            if getattr(net, attr):
                notes.append(
                    f"{where}.networks.{key}.{attr}: a swarm assigns task addresses itself;"
                    f" {getattr(net, attr)} is unused"
                )
    return notes


_SIZE = re.compile(r"^(\d+)([kmgKMG]?)[bB]?$")
_UNIT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_tmpfs(path: str, options: str) -> tuple[TmpfsMount, list[str]]:
    """A tmpfs mount and the options swarm cannot express."""
    size: int | None = None
    mode: int | None = None
    rest: list[str] = []
    for opt in filter(None, options.split(",")):
        key, _, value = opt.partition("=")
        if key == "size" and _SIZE.match(value):
            m = _SIZE.match(value)
            assert m is not None
            size = int(m.group(1)) * _UNIT[m.group(2).lower()]
        elif key == "mode" and re.fullmatch(r"[0-7]{3,4}", value):
            mode = int(value, 8)
        else:
            rest.append(opt)
    return TmpfsMount(path, size, mode), rest


_TASK_FIELDS = (
    "container",
    "endpoint_mode",
    "networks",
    "secrets",
    "ports",
    "tmpfs",
    "volume_options",
    "restart_condition",
)
_SERVICE_FIELDS = ("replicas", "update_order", "labels")


def _drop_unset_bind_options(mounts: list[dict[str, Any]]) -> None:
    """Bind options join the hash only when set, so hashes of earlier envd stay valid."""
    for m in mounts:
        for key in ("selinux", "propagation"):
            if not m.get(key):
                m.pop(key, None)


def _container_plain(container: ContainerCreate) -> dict[str, Any]:
    """The task's container as hashed: the host settings and configs of issue 12
    and a healthcheck's start_interval only when set, so an upgrade rolls nothing."""
    out: dict[str, Any] = plain_deep(container)
    if container.host == HostSettings():
        del out["host"]
    if out["healthcheck"] is not None and not out["healthcheck"]["start_interval_s"]:
        del out["healthcheck"]["start_interval_s"]
    _drop_unset_bind_options(out["mounts"])
    for f in fields(container):
        # Any other field envd learned after swarm hashes were first given out
        # (configs, exposed ports, network mode, a restart count…) joins only when set.
        if f.name not in FIRST_CREATE_FIELDS and f.name in out and at_default(f, out[f.name]):
            del out[f.name]
    return out


def _attachments_plain(networks: Any) -> list[dict[str, Any]]:
    """Attachments as hashed: static addresses only when set (a swarm takes none)."""
    return [
        {k: v for k, v in plain_deep(a).items() if v or k not in ("ipv4_address", "ipv6_address")}
        for a in networks
    ]


def spec_hashes(spec: SwarmServiceSpec) -> tuple[str, str, str]:
    """(config hash, task hash, per-field short hashes) of a service spec.

    The hash labels themselves and the envd version are left out, so a
    hash only moves when something swarm would act on moved.
    """
    container = replace(
        spec.container,
        labels={k: v for k, v in spec.container.labels.items() if k != TASK_HASH_LABEL},
    )
    service_labels = {
        k: v
        for k, v in spec.labels.items()
        if k not in (labels.CONFIG_HASH, labels.FIELD_HASHES, labels.VERSION)
    }
    parts: dict[str, Any] = {}
    for name in _TASK_FIELDS:
        if name == "container":
            parts[name] = _container_plain(container)
        elif name == "networks":
            parts[name] = _attachments_plain(spec.networks)
        else:
            parts[name] = plain_deep(getattr(spec, name))
    task_fields: tuple[str, ...] = _TASK_FIELDS
    if spec.configs:  # configs joined later: hashed only when set, so an upgrade rolls nothing
        parts["configs"] = plain_deep(spec.configs)
        task_fields = (*_TASK_FIELDS, "configs")
    parts["replicas"] = spec.replicas
    parts["update_order"] = spec.update_order
    parts["labels"] = service_labels
    task = digest({k: parts[k] for k in task_fields})
    full = digest(parts)
    # Per field of the container too, so a plan can say "env changed".
    short: dict[str, Any] = {k: parts[k] for k in task_fields if k != "container"}
    short.update({k: parts[k] for k in _SERVICE_FIELDS})
    for key, value in parts["container"].items():
        if key in ("name", "ports", "networks", "secrets", "tmpfs"):
            continue
        short[f"container.{key}"] = value
    _, field_hashes = hash_fields(short)
    return full, task, field_hashes
