"""Plain values that cross the engine boundary.

Nothing here knows about the Docker SDK; the real adapter translates these to
API payloads and back, the fake keeps them in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Literal

from envd.values import labels
from envd.values.record import value

MountType = Literal["volume", "bind", "tmpfs"]


@value
class PortBinding:
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int | None = None  # None: the engine picks a free port


@value
class Mount:
    type: MountType
    target: str
    source: str = ""  # volume name (project-scoped) or absolute host path
    read_only: bool = False
    # --- bind options (issue 12): "" is the engine's default; hashed only when set
    selinux: str = ""  # "z" (shared relabel) or "Z" (private relabel)
    propagation: str = ""  # "rprivate", "rshared", …


@value
class Healthcheck:
    test: tuple[str, ...]  # ("CMD", ...), ("CMD-SHELL", "..."), or ("NONE",)
    interval_s: float = 30.0
    timeout_s: float = 30.0
    retries: int = 3
    start_period_s: float = 0.0
    # Needs API 1.44 (older engines ignore it); hashed only when set.
    start_interval_s: float = 0.0


@value
class NetworkAttachment:
    network: str  # the engine-side network name
    aliases: tuple[str, ...] = ()
    # Static addresses (the network's ipam subnet holds them); "" lets the engine pick.
    ipv4_address: str = ""
    ipv6_address: str = ""


@value
class IpamPool:
    """One address pool of a network (the engine's ``IPAM.Config`` entry)."""

    subnet: str = ""
    ip_range: str = ""
    gateway: str = ""
    aux_addresses: tuple[tuple[str, str], ...] = ()  # (host name, address), sorted


@value
class SecretFile:
    """A secret delivered as a file; the value never reaches a label or env."""

    target: str  # absolute path inside the container
    uid: int = 0
    gid: int = 0
    mode: int = 0o400
    value: bytes = field(default=b"", repr=False, compare=False)


# --- container-level host settings (issue 12: resources, kernel, DNS, devices,
# logging, GPUs). One value on ContainerCreate so the group travels as a unit;
# every field's default means "the engine's default" and is left out of the
# create payload and the config hash.


@value
class Ulimit:
    name: str  # "nofile", "nproc"… (without the RLIMIT_ prefix)
    soft: int
    hard: int


@value
class DeviceMapping:
    host: str  # a device path on the host
    container: str
    permissions: str = "rwm"


@value
class DeviceRequest:
    """A request for devices a driver hands out (GPUs): the API's ``DeviceRequests``."""

    driver: str = ""
    count: int = 0  # -1: all of them; 0 with device_ids: those ids
    device_ids: tuple[str, ...] = ()
    capabilities: tuple[tuple[str, ...], ...] = ()  # OR of ANDs, like the API
    options: tuple[tuple[str, str], ...] = ()


@value
class LogConfig:
    driver: str
    options: tuple[tuple[str, str], ...] = ()


@value
class HostSettings:
    nano_cpus: int = 0
    memory: int = 0  # bytes
    memory_reservation: int = 0
    memory_swap: int = 0  # memory plus swap; -1: unlimited swap
    pids_limit: int = 0  # -1: unlimited
    shm_size: int = 0
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    extra_hosts: tuple[str, ...] = ()  # "host:ip", as the API wants them
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    devices: tuple[DeviceMapping, ...] = ()
    device_requests: tuple[DeviceRequest, ...] = ()
    domainname: str = ""
    platform: str = ""  # a create query parameter, not part of HostConfig
    runtime: str = ""
    security_opt: tuple[str, ...] = ()
    pid_mode: str = ""
    ipc_mode: str = ""
    log_config: LogConfig | None = None


@value
class ConfigFile:
    """A config delivered as a read-only file; its content is not secret (it is hashed and cached)."""

    target: str  # absolute path inside the container
    uid: int = 0
    gid: int = 0
    mode: int = 0o444
    value: bytes = field(default=b"", repr=False)


@value
class ContainerCreate:
    """Everything needed to create one container. Produced by ``desired``."""

    name: str
    image: str
    labels: Mapping[str, str]
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[PortBinding, ...] = ()
    mounts: tuple[Mount, ...] = ()
    tmpfs: tuple[tuple[str, str], ...] = ()  # (path, options)
    networks: tuple[NetworkAttachment, ...] = ()
    healthcheck: Healthcheck | None = None
    restart: str = "no"
    # "on-failure:N": the engine gives up after N restarts (0: never gives up).
    restart_max_attempts: int = 0
    init: bool = True
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    secrets: tuple[SecretFile, ...] = ()
    auto_remove: bool = False
    tty: bool = False
    stdin_open: bool = False
    # --- names and networking: the engine's ExposedPorts keys ("8080/tcp") and
    # HostConfig.NetworkMode ("" joins ``networks``; "host", "none", "bridge",
    # "container:<name or id>"). With a mode set, ``networks`` is empty.
    exposed: tuple[str, ...] = ()
    network_mode: str = ""
    # Names of volumes in ``mounts`` that are anonymous volumes handed over
    # from the container this one replaces (what Compose does on recreate).
    # They stay anonymous: ``remove_container(volumes=True)`` removes them.
    # Not part of the config hash: it is how a container is made, not what.
    anonymous_volumes: tuple[str, ...] = ()
    # Container-level host settings (issue 12); tty/stdin_open above also
    # come from the service now.
    host: HostSettings = HostSettings()
    # configs (Compose's `configs`): written into the container before it starts
    configs: tuple[ConfigFile, ...] = ()


# --- exec hooks (post_start / pre_stop, sync+exec)


@value
class ExecOptions:
    """How a command runs inside a container (Docker's exec create options)."""

    user: str = ""
    privileged: bool = False
    working_dir: str = ""
    env: tuple[tuple[str, str], ...] = ()


@value
class ExecHook:
    """A command a service runs in its containers: a lifecycle hook or a sync+exec."""

    command: tuple[str, ...]
    options: ExecOptions = ExecOptions()


@value
class BuildRequest:
    context: str  # absolute path
    tag: str
    dockerfile: str = "Dockerfile"
    args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


ContainerStatus = Literal[
    "created", "running", "paused", "restarting", "removing", "exited", "dead"
]
Health = Literal["starting", "healthy", "unhealthy"]


@value
class ObservedContainer:
    """One container as a single list call reports it (no inspect needed)."""

    id: str
    name: str
    labels: Mapping[str, str]
    status: str  # ContainerStatus
    health: str | None = None  # Health, or None when no healthcheck
    exit_code: int | None = None
    image_id: str = ""
    # Published ports with the host port the engine chose (running containers).
    ports: tuple[PortBinding, ...] = ()
    # The engine's own words for the state ("Up 3 minutes (healthy)"): shown, never compared.
    status_text: str = field(default="", compare=False)
    # HostConfig.NetworkMode as the engine reports it: "container:<id>" once
    # resolved, so a replaced namespace owner shows.
    network_mode: str = ""
    # down (issue 15): the names of the volumes the list shows mounted, so
    # removing the container needs no inspect to look for anonymous ones to take
    # along; None when the list does not say (Podman): then it inspects.
    volumes: tuple[str, ...] | None = field(default=None, compare=False)

    @property
    def service(self) -> str:
        return self.labels.get(labels.SERVICE, "")

    @property
    def replica(self) -> int:
        try:
            return int(self.labels.get(labels.REPLICA, "0"))
        except ValueError:
            return 0

    @property
    def config_hash(self) -> str:
        return self.labels.get(labels.CONFIG_HASH, "")


@value
class ObservedMount:
    """One mount of an existing container, as an inspect reports it."""

    type: str  # "volume", "bind", "tmpfs"…
    target: str
    source: str = ""  # the volume's name, or the host path of a bind
    read_only: bool = False
    # A volume the engine named itself (64 hex digits) rather than one asked for
    # by name: from the image's VOLUME, a spec entry without a source, or handed
    # over from a replaced container (``ContainerCreate.anonymous_volumes``).
    anonymous: bool = False
    secrets: bool = False  # envd's own anonymous volume holding secret files
    # --- bind options (issue 12), as the engine reports them ("rprivate" is its default)
    selinux: str = ""
    propagation: str = ""


@value
class ContainerState:
    """Detail of one container from an inspect, for waiting on conditions."""

    id: str
    status: str
    exit_code: int | None
    health: str | None
    has_healthcheck: bool
    oom_killed: bool = False
    error: str = ""
    # supervisor: when it last started / exited, in seconds since the epoch (None: never)
    started_at: float | None = None
    finished_at: float | None = None


@value
class ObservedNetwork:
    id: str
    name: str
    labels: Mapping[str, str]
    driver: str = ""  # "" when the engine did not say
    internal: bool = False
    # Address management as the engine reports it (the subnets it chose or was given).
    ipam_driver: str = ""
    ipam: tuple[IpamPool, ...] = ()
    enable_ipv6: bool = False


@value
class ObservedVolume:
    name: str
    labels: Mapping[str, str]


@value
class ObservedImage:
    ref: str
    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    repo_digests: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()  # paths the image declares with VOLUME
