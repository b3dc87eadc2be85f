"""Typed models of ``envd.toml`` (contract §2): a service, the top-level
sections (project, volumes, networks, secrets) and the whole ``Spec``.

Every model is frozen and forbids unknown fields (``model_base``). The parts
of a service and their short syntaxes are in ``service_parts``. Field names
follow the Compose specification where one exists.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from envd.spec.configs import ConfigDef as ConfigDef
from envd.spec.configs import ServiceConfig as ServiceConfig
from envd.spec.configs import ServiceConfigs
from envd.spec.host_isolation import (
    DeviceEntry,
    Gpus,
    IpcMode,
    Logging,
    PidMode,
    Platform,
    SecurityOpts,
)
from envd.spec.host_parts import (
    ByteSize,
    Cpus,
    DnsServers,
    ExtraHosts,
    SwapSize,
    Sysctls,
    Ulimits,
)
from envd.spec.model_base import PROJECT_NAME as PROJECT_NAME
from envd.spec.model_base import (
    SERVICE_NAME,
    Command,
    Duration,
    EnvMap,
    SpecModel,
    StrList,
    StrMap,
)
from envd.spec.net_parts import ContainerName, Expose, Ipam, NetworkMode, network_rules

# The parts of a service live in service_parts and ports; callers meet them here.
from envd.spec.ports import Port as Port
from envd.spec.ports import Ports

# The parts of a service live in service_parts and ports; callers meet them here.
from envd.spec.service_parts import Build as Build
from envd.spec.service_parts import (
    BuildSection,
    DependsOn,
    Networks,
    ServiceSecrets,
    Signal,
    Volumes,
)
from envd.spec.service_parts import Dependency as Dependency
from envd.spec.service_parts import Heal as Heal
from envd.spec.service_parts import Healthcheck as Healthcheck
from envd.spec.service_parts import Hook as Hook
from envd.spec.service_parts import ServiceNetwork as ServiceNetwork
from envd.spec.service_parts import ServiceSecret as ServiceSecret
from envd.spec.service_parts import VolumeMount as VolumeMount
from envd.spec.service_parts import WatchRule as WatchRule
from envd.values.labels import PREFIX as RESERVED_LABEL_PREFIX

_MIN_MEMORY = 6 * 1024 * 1024


class Service(SpecModel):
    """One service: a set of identical containers (``replicas``)."""

    image: str | None = None
    build: BuildSection = None
    pull: Literal["missing", "always", "never", "build"] = "missing"
    command: Command | None = None
    entrypoint: Command | None = None
    working_dir: str = ""
    user: str = ""
    hostname: str = ""
    # --- names and networking (container_name, expose, network_mode; net_parts)
    container_name: ContainerName | None = None
    expose: Expose = Field(default_factory=list)
    network_mode: NetworkMode | None = None
    # --- end names and networking
    env: EnvMap = Field(default_factory=dict)
    env_file: StrList = Field(default_factory=list)
    ports: Ports = Field(default_factory=list)
    volumes: Volumes = Field(default_factory=list)
    tmpfs: StrList = Field(default_factory=list)
    networks: Networks = Field(default_factory=dict)
    depends_on: DependsOn = Field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    restart: Annotated[
        Literal["no", "always", "on-failure", "unless-stopped"],
        WithJsonSchema(
            {
                "anyOf": [
                    {"enum": ["no", "always", "on-failure", "unless-stopped"]},
                    {"type": "string", "pattern": "^on-failure:[0-9]+$"},
                    {"const": False},
                ]
            }
        ),
    ] = "no"
    # Set by `restart = "on-failure:N"` (Compose's spelling): give up after N restarts.
    restart_max_attempts: int = Field(default=0, ge=0)
    init: bool = True
    stop_signal: Signal = "SIGTERM"
    stop_grace_period: Duration = 10.0
    secrets: ServiceSecrets = Field(default_factory=list)
    labels: StrMap = Field(default_factory=dict)
    read_only: bool = False
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    replicas: int = Field(default=1, ge=0)
    profiles: list[str] = Field(default_factory=list)
    watch: list[WatchRule] = Field(default_factory=list)
    # --- container-level host settings (issue 12), Compose's names and meaning
    cpus: Cpus = 0.0
    mem_limit: ByteSize = 0
    mem_reservation: ByteSize = 0
    memswap_limit: SwapSize = 0
    pids_limit: int = Field(default=0, ge=-1)
    shm_size: ByteSize = 0
    ulimits: Ulimits = Field(default_factory=dict)
    sysctls: Sysctls = Field(default_factory=dict)
    extra_hosts: ExtraHosts = Field(default_factory=list)
    dns: DnsServers = Field(default_factory=list)
    dns_search: StrList = Field(default_factory=list)
    dns_opt: list[str] = Field(default_factory=list)
    devices: list[DeviceEntry] = Field(default_factory=list)
    domainname: str = ""
    platform: Platform = ""
    runtime: str = ""
    tty: bool = False
    stdin_open: bool = False
    security_opt: SecurityOpts = Field(default_factory=list)
    pid: PidMode = ""
    ipc: IpcMode = ""
    logging: Logging | None = None
    gpus: Gpus = Field(default_factory=list)

    @model_validator(mode="after")
    def _memory(self) -> Service:
        # The engine's own rules, said before anything is created.
        if self.mem_limit and self.mem_limit < _MIN_MEMORY:
            raise ValueError(
                f"mem_limit {self.mem_limit} bytes is below the engine's minimum of 6m"
            )
        if self.mem_reservation and self.mem_limit and self.mem_reservation > self.mem_limit:
            raise ValueError("mem_reservation is above mem_limit")
        if self.memswap_limit and self.memswap_limit != -1:
            if not self.mem_limit:
                raise ValueError("memswap_limit needs mem_limit (it is memory plus swap)")
            if self.memswap_limit < self.mem_limit:
                raise ValueError("memswap_limit is memory plus swap: it cannot be below mem_limit")
        return self

    # configs (Compose's `configs`: read-only files)
    configs: ServiceConfigs = Field(default_factory=list)

    # supervisor: healing unhealthy containers, and services that run to completion
    heal: Annotated[
        Heal, WithJsonSchema({"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/Heal"}]})
    ] = Field(default_factory=Heal)
    oneshot: bool = False
    # Lifecycle hooks (Compose's post_start / pre_stop): run in each container.
    post_start: list[Hook] = Field(default_factory=list)
    pre_stop: list[Hook] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _restart_count(cls, data: Any) -> Any:
        # Compose's "on-failure:N" is two settings to the engine: the policy and its count.
        if isinstance(data, dict):
            v = data.get("restart")
            if isinstance(v, str) and v.startswith("on-failure:"):
                count = v.partition(":")[2]
                if not (count.isascii() and count.isdigit()):
                    raise ValueError(f"restart {v!r}: the retry count must be a whole number")
                data = {**data, "restart": "on-failure", "restart_max_attempts": int(count)}
        return data

    @field_validator("restart", mode="before")
    @classmethod
    def _restart(cls, v: Any) -> Any:
        # TOML has no bare `no`, but YAML-minded users write false.
        if v is False:
            return "no"
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if key.startswith(RESERVED_LABEL_PREFIX):
                raise ValueError(f"label {key!r} uses the reserved prefix 'dev.envd.'")
        return v

    @model_validator(mode="after")
    def _oneshot(self) -> Service:
        if self.oneshot and self.restart in ("always", "unless-stopped"):
            raise ValueError(
                f"oneshot = true runs to completion, but restart = {self.restart!r} would"
                " start it again for ever; use 'no' or 'on-failure'"
            )
        return self

    @model_validator(mode="after")
    def _image_or_build(self) -> Service:
        if not self.image and self.build is None:
            raise ValueError("a service needs an 'image' or a 'build'")
        if self.pull == "build" and self.build is None:
            raise ValueError("pull = 'build' needs a 'build' section")
        return self

    @model_validator(mode="after")
    def _names_and_network(self) -> Service:
        network_rules(self)
        return self


class Project(SpecModel):
    name: str | None = None
    # A plain $VAR whose variable is not set is an error, not a warning.
    strict_variables: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not PROJECT_NAME.match(v):
            raise ValueError(
                f"project name {v!r} must be lowercase letters, digits, '-' or '_',"
                " starting with a letter or digit"
            )
        return v


class VolumeDef(SpecModel):
    """A named volume. ``external = true``: it exists already and envd never manages it."""

    external: bool = False
    name: str | None = None
    driver: str = "local"
    driver_opts: StrMap = Field(default_factory=dict)
    labels: StrMap = Field(default_factory=dict)


class NetworkDef(SpecModel):
    external: bool = False
    name: str | None = None
    driver: str = "bridge"
    internal: bool = False
    labels: StrMap = Field(default_factory=dict)
    # Static addressing (net_parts): the pools services take ipv4/ipv6_address from.
    ipam: Ipam | None = None
    enable_ipv6: bool = False


class SecretDef(SpecModel):
    """Where a secret's value comes from: exactly one of file, env, command."""

    file: str | None = None
    env: str | None = None
    command: Command | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretDef:
        given = [k for k in ("file", "env", "command") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a secret needs exactly one of 'file', 'env' or 'command'")
        return self


def _resource_name(name: str) -> str:
    if not SERVICE_NAME.match(name):
        raise ValueError(
            f"name {name!r} is invalid: use letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


# Validated per key, so an error names the offending entry (services.<name>).
Name = Annotated[str, AfterValidator(_resource_name)]


class Spec(SpecModel):
    """The whole ``envd.toml``."""

    project: Project = Field(default_factory=Project)
    services: dict[Name, Service] = Field(default_factory=dict)
    volumes: dict[Name, VolumeDef] = Field(default_factory=dict)
    networks: dict[Name, NetworkDef] = Field(default_factory=dict)
    secrets: dict[Name, SecretDef] = Field(default_factory=dict)
    # configs (Compose's `configs`: read-only files)
    configs: dict[Name, ConfigDef] = Field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
