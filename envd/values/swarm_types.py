"""Values that cross the Swarm engine boundary: what envd asks a swarm to run and what it observes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from envd.values import labels
from envd.values.types import ContainerCreate, NetworkAttachment

# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class SwarmInfo:
    """This engine's place in a swarm (``GET /info``)."""

    state: str  # "inactive" | "pending" | "active" | "error" | "locked"
    manager: bool
    node_id: str = ""
    error: str = ""


@dataclass(frozen=True)
class SecretRef:
    """A swarm secret mounted into a service's tasks."""

    secret: str  # the swarm secret's (versioned) name
    target: str  # file name under /run/secrets, or an absolute path
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o400


# configs (Compose's `configs`): versioned swarm config objects
@dataclass(frozen=True)
class ConfigRef:
    """A swarm config mounted into a service's tasks as a read-only file."""

    config: str  # the swarm config's (versioned) name
    target: str  # absolute path in the container
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


@dataclass(frozen=True)
class ObservedConfig:
    id: str
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class PublishedPort:
    target: int
    published: int | None = None  # None: the swarm picks one (30000-32767)
    protocol: str = "tcp"
    mode: str = "ingress"  # "ingress" (routing mesh) | "host"


@dataclass(frozen=True)
class TmpfsMount:
    target: str
    size_bytes: int | None = None
    mode: int | None = None


@dataclass(frozen=True)
class VolumeOptions:
    """Options for a named volume a task mounts (created on its node if absent)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    driver: str = ""
    driver_opts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SwarmServiceSpec:
    """Everything envd puts in a swarm service. Produced by ``envd.swarm.deploy``."""

    name: str
    labels: Mapping[str, str]  # service labels
    # The task's container: image, labels, command, entrypoint, env, mounts
    # (bind and volume), healthcheck, init… Its ports, networks, secrets, configs and
    # tmpfs are not used: the fields below carry them.
    container: ContainerCreate
    replicas: int = 1
    networks: tuple[NetworkAttachment, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    ports: tuple[PublishedPort, ...] = ()
    tmpfs: tuple[TmpfsMount, ...] = ()
    volume_options: Mapping[str, VolumeOptions] = field(default_factory=dict)  # by volume name
    restart_condition: str = "none"  # "none" | "on-failure" | "any"
    update_order: str = "start-first"  # "start-first" | "stop-first"
    endpoint_mode: str = "vip"  # "vip" (virtual IP, routing mesh) | "dnsrr" (DNS round robin)
    configs: tuple[ConfigRef, ...] = ()  # configs (Compose's `configs`)


@dataclass(frozen=True)
class ObservedService:
    id: str
    name: str
    version: int
    labels: Mapping[str, str]
    replicas: int | None  # None: not a replicated service
    image: str = ""
    update_state: str = ""  # "" | updating | paused | completed | rollback_started | …
    update_message: str = ""
    update_started: str = ""  # when the last rolling update started (engine time)
    running_tasks: int | None = None
    desired_tasks: int | None = None
    ports: tuple[PublishedPort, ...] = ()  # as the endpoint reports them (assigned ports too)
    # The versioned secret and config names its spec mounts (names only, never a value).
    secrets: tuple[str, ...] = ()
    configs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObservedTask:
    id: str
    service_id: str
    slot: int
    node_id: str
    state: str  # new … running | complete | failed | shutdown | rejected | orphaned | remove
    desired_state: str
    task_hash: str  # the dev.envd.task-hash label of the spec the task runs
    message: str = ""
    error: str = ""
    exit_code: int | None = None
    container_id: str = ""
    timestamp: str = ""
    ports: tuple[PublishedPort, ...] = ()  # host-mode ports this task published


@dataclass(frozen=True)
class ObservedSecret:
    id: str
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ObservedSwarmNetwork:
    id: str
    name: str
    driver: str
    scope: str
    labels: Mapping[str, str]


TASK_HASH_LABEL = labels.TASK_HASH
