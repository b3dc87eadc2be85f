"""The parts of a service and their short syntaxes: volume mounts,
secrets, dependencies, healthcheck, build, networks and watch rules.

Short and long syntaxes are normalised here (a port string becomes ``Port``
values in ``envd.spec.ports``, a volume string a ``VolumeMount``…), so everything downstream sees one
shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from envd.spec.compose_words import CONDITION_FROM_COMPOSE
from envd.spec.model_base import (
    Command,
    Duration,
    SpecModel,
    StrMap,
)
from envd.spec.net_parts import check_static_address

# --------------------------------------------------------------------------- volumes


Propagation = Literal["private", "rprivate", "shared", "rshared", "slave", "rslave"]
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")


class VolumeMount(SpecModel):
    """A mount. Short syntax: ``name:/path[:ro]``, ``./host:/path[:ro]`` or ``/path``."""

    type: Literal["volume", "bind", "tmpfs"] = "volume"
    source: str = ""
    target: str
    read_only: bool = False
    # --- bind options (issue 12): SELinux relabel and mount propagation, as Compose's bind.*
    selinux: Literal["z", "Z"] | None = None
    propagation: Propagation | None = None
    # A missing bind source is created at `up` (Compose's short syntax, and
    # Compose v2's long one); false refuses it instead (Compose's
    # bind.create_host_path). Left out of dumps when true, so `envd diff` rows
    # keep their shape.
    create_host_path: bool = Field(default=True, exclude_if=lambda v: v is True)

    @property
    def creates_host_path(self) -> bool:
        return self.type == "bind" and self.create_host_path

    @field_validator("target")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"mount target {v!r} must be an absolute path in the container")
        return v

    @model_validator(mode="after")
    def _source(self) -> VolumeMount:
        if self.type == "bind" and not self.source:
            raise ValueError("a bind mount needs a source path")
        if self.type == "tmpfs" and self.source:
            raise ValueError("a tmpfs mount takes no source")
        if self.type != "bind" and self.propagation:
            raise ValueError("propagation applies to bind mounts only")
        if self.selinux and not (self.type == "bind" or (self.type == "volume" and self.source)):
            raise ValueError("selinux relabelling applies to bind mounts and named volumes only")
        if self.type != "bind" and not self.create_host_path:
            raise ValueError("create_host_path applies to bind mounts only")
        return self


def parse_volume(text: str) -> dict[str, Any]:
    parts = text.split(":")
    mode = ""
    if len(parts) == 3:
        mode = parts.pop()
    elif len(parts) > 3:
        raise ValueError(f"invalid volume {text!r}: use SOURCE:TARGET[:MODE]")
    if len(parts) == 1:
        return {"type": "volume", "source": "", "target": parts[0]}
    source, target = parts
    kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    out: dict[str, Any] = {"type": kind, "source": source, "target": target, "read_only": False}
    # Compose's modes, comma-separated in any order: ro|rw, z|Z, a propagation.
    seen: set[str] = set()
    for word in mode.split(",") if mode else []:
        group = (
            "access"
            if word in ("ro", "rw")
            else "selinux"
            if word in ("z", "Z")
            else "propagation"
            if word in PROPAGATIONS
            else ""
        )
        if not group:
            raise ValueError(
                f"invalid volume mode {word!r} in {text!r}: use ro or rw, z or Z,"
                f" and a propagation ({', '.join(PROPAGATIONS)}), separated by commas"
            )
        if group in seen:
            raise ValueError(f"invalid volume mode {mode!r} in {text!r}: two {group} modes")
        seen.add(group)
        if group == "access":
            out["read_only"] = word == "ro"
        elif kind != "bind" and group == "propagation":
            raise ValueError(f"invalid volume mode {word!r} in {text!r}: only for bind mounts")
        else:
            out[group] = word  # z/Z on a named volume relabels its data, as the engine does
    return out


def _volume(value: Any) -> Any:
    return parse_volume(value) if isinstance(value, str) else value


# Parsed per item, so an error names the offending entry (volumes[1]).
Volumes = Annotated[
    list[Annotated[VolumeMount, BeforeValidator(_volume)]],
    WithJsonSchema(
        {"type": "array", "items": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/VolumeMount"}]}}
    ),
]

# --------------------------------------------------------------------------- secrets


def _id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


NumericId = Annotated[
    str,
    BeforeValidator(_id),
    WithJsonSchema({"type": ["string", "integer"], "pattern": "^[0-9]+$", "minimum": 0}),
]


class ServiceSecret(SpecModel):
    """A secret delivered to a service as ``/run/secrets/<target>``."""

    source: str
    target: str = ""
    uid: NumericId = "0"
    gid: NumericId = "0"
    mode: int = Field(default=0o400, ge=0, le=0o777)

    @field_validator("uid", "gid")
    @classmethod
    def _numeric(cls, v: str) -> str:
        if not v.isdigit():
            raise ValueError(f"{v!r} is not a numeric id")
        return v

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if v and (".." in v.split("/")):
            raise ValueError("a secret target cannot contain '..'")
        return v

    @property
    def path(self) -> str:
        target = self.target or self.source
        return target if target.startswith("/") else f"/run/secrets/{target}"


def _secrets(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [{"source": v} if isinstance(v, str) else v for v in value]


ServiceSecrets = Annotated[
    list[ServiceSecret],
    BeforeValidator(_secrets),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/ServiceSecret"}]},
        }
    ),
]

# --------------------------------------------------------------------------- depends_on

Condition = Literal["started", "healthy", "completed"]


_CONDITION_SCHEMA = {"enum": ["started", "healthy", "completed", *CONDITION_FROM_COMPOSE]}


class Dependency(SpecModel):
    condition: Annotated[Condition, WithJsonSchema(_CONDITION_SCHEMA)] = "started"
    required: bool = True
    # Compose's name: the daemon restarts the dependent whenever this dependency
    # is recreated, restarted or healed (once it meets the condition again).
    restart: bool = False

    @field_validator("condition", mode="before")
    @classmethod
    def _alias(cls, v: Any) -> Any:
        return CONDITION_FROM_COMPOSE.get(v, v) if isinstance(v, str) else v


def _depends_on(value: Any) -> Any:
    if isinstance(value, list):
        if not all(isinstance(name, str) for name in value):
            raise ValueError("a depends_on list holds service names (strings)")
        return {name: {"condition": "started"} for name in value}
    if isinstance(value, dict):
        return {k: {"condition": v} if isinstance(v, str) else v for k, v in value.items()}
    return value


DependsOn = Annotated[
    dict[str, Dependency],
    BeforeValidator(_depends_on),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {
                    "type": "object",
                    "additionalProperties": {
                        "anyOf": [
                            _CONDITION_SCHEMA,
                            {"$ref": "#/$defs/Dependency"},
                        ]
                    },
                },
            ]
        }
    ),
]

# --------------------------------------------------------------------------- heal (supervisor)


class Heal(SpecModel):
    """How the daemon heals a service whose container turns unhealthy.

    Not part of the config hash: changing it never recreates a container.
    """

    enabled: bool = True
    max: int = Field(default=5, ge=1)  # heals allowed per window; one more is flapping
    window: Duration = 300.0
    backoff: Duration = 2.0  # wait before a second heal, doubled for each further one

    @model_validator(mode="before")
    @classmethod
    def _flag(cls, data: Any) -> Any:
        # `heal = false` / `heal = true`: the short form of `enabled`.
        return {"enabled": data} if isinstance(data, bool) else data


# --------------------------------------------------------------------------- the rest


class Healthcheck(SpecModel):
    """How the engine decides a service is healthy."""

    test: Command = Field(default_factory=list)
    interval: Duration = 5.0
    timeout: Duration = 10.0
    retries: int = Field(default=3, ge=1)
    start_period: Duration = 0.0
    disable: bool = False
    # Probe interval during start_period (Compose); needs Docker API 1.44.
    start_interval: Duration = 0.0

    @model_validator(mode="before")
    @classmethod
    def _shell_string(cls, data: Any) -> Any:
        # A string test is a shell command (Compose); a list must say how.
        if isinstance(data, dict) and isinstance(data.get("test"), str):
            return {**data, "test": ["CMD-SHELL", data["test"]]}
        return data

    @model_validator(mode="after")
    def _test(self) -> Healthcheck:
        if self.disable:
            return self
        if not self.test:
            raise ValueError("a healthcheck needs a 'test' (or disable = true)")
        if self.test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise ValueError(
                'healthcheck test must start with "CMD", "CMD-SHELL" or "NONE",'
                f" got {self.test[0]!r}"
            )
        if len(self.test) < 2 and self.test[0] != "NONE":
            raise ValueError(f"healthcheck test {self.test[0]} needs a command")
        return self


class Build(SpecModel):
    """Build an image through the engine. Short syntax: the context path."""

    context: str = "."
    dockerfile: str = "Dockerfile"
    args: StrMap = Field(default_factory=dict)
    target: str = ""


def _build(value: Any) -> Any:
    return {"context": value} if isinstance(value, str) else value


class ServiceNetwork(SpecModel):
    aliases: list[str] = Field(default_factory=list)
    # A static address; the network needs an ipam subnet holding it.
    ipv4_address: str = ""
    ipv6_address: str = ""

    @field_validator("ipv4_address", "ipv6_address")
    @classmethod
    def _address(cls, v: str, info: ValidationInfo) -> str:
        return check_static_address(str(info.field_name), v) if v else v


def _networks(value: Any) -> Any:
    if isinstance(value, list):
        if not all(isinstance(name, str) for name in value):
            raise ValueError("a networks list holds network names (strings)")
        return {name: {} for name in value}
    if isinstance(value, dict):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- hooks and watch


class Hook(SpecModel):
    """A command run in a service's container: a ``post_start`` / ``pre_stop``
    lifecycle hook, or the ``exec`` of a ``sync+exec`` watch rule (Compose's
    ``ServiceHook``)."""

    command: Command = Field(min_length=1)
    user: str = ""
    privileged: bool = False
    working_dir: str = ""
    environment: StrMap = Field(default_factory=dict)

    @field_validator("working_dir")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if v and not v.startswith("/"):
            raise ValueError(f"working_dir {v!r} must be an absolute path")
        return v


SYNC_ACTIONS = ("sync", "sync+restart", "sync+exec")


class WatchRule(SpecModel):
    """A file-watch rule for the daemon's hot reload."""

    path: str
    action: Literal["sync", "rebuild", "restart", "sync+restart", "sync+exec"]
    target: str = ""
    ignore: list[str] = Field(default_factory=list)
    # sync+exec: run in each container after the files were copied.
    exec: Hook | None = None

    @model_validator(mode="after")
    def _target(self) -> WatchRule:
        if self.action in SYNC_ACTIONS and not self.target:
            raise ValueError(f"a '{self.action}' watch rule needs a 'target' in the container")
        if self.target and not self.target.startswith("/"):
            raise ValueError(f"watch target {self.target!r} must be an absolute path")
        if self.action == "sync+exec" and self.exec is None:
            raise ValueError("a 'sync+exec' watch rule needs an 'exec' table with a 'command'")
        if self.exec is not None and self.action != "sync+exec":
            raise ValueError(f"'exec' applies to 'sync+exec' rules only, not '{self.action}'")
        return self


Signal = Annotated[str, Field(pattern=r"^(SIG[A-Z0-9+-]+|[0-9]+)$")]


BuildSection = Annotated[
    Build | None,
    BeforeValidator(_build),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": "The build context directory."},
                {"$ref": "#/$defs/Build"},
            ]
        }
    ),
]

Networks = Annotated[
    dict[str, ServiceNetwork],
    BeforeValidator(_networks),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "object", "additionalProperties": {"$ref": "#/$defs/ServiceNetwork"}},
            ]
        }
    ),
]
