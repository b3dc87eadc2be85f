"""The desired state as JSON, and back through explicit typed decoders.

The desired cache stores what this module writes: plain JSON objects, one per
dataclass, keyed by field name. Reading it back constructs each dataclass
from a table of one decoder per field that checks the JSON type of its value;
an object with a missing, extra or mistyped field raises ``BadCache``. Nothing
in the file names a type or a function, so a planted file can at worst be
refused: unlike pickle, decoding runs no code of the file's choosing.

Secret values never reach the file: a ``SecretFile.value`` is written only
when empty, and read back only as ``b""``. A ``ConfigFile.value`` is not
secret: it is written as base64 (``value_b64``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from envd.core.desired import (
    DesiredBuild,
    DesiredDependency,
    DesiredHeal,
    DesiredNetwork,
    DesiredProject,
    DesiredService,
    DesiredVolume,
)
from envd.inputs.buildctx import BuildInputs
from envd.values.types import (
    ConfigFile,
    ContainerCreate,
    DeviceMapping,
    DeviceRequest,
    ExecHook,
    ExecOptions,
    Healthcheck,
    HostSettings,
    IpamPool,
    LogConfig,
    Mount,
    MountType,
    NetworkAttachment,
    PortBinding,
    SecretFile,
    Ulimit,
)

T = TypeVar("T")
Decoder = Callable[[object], Any]


class BadCache(ValueError):
    """The JSON does not describe the value it should: the cache is a miss."""


# Encoding: a generic walk (only on a miss, when the entry is stored).


def encode(value: object) -> object:
    """``value`` as JSON-ready data: dataclasses become objects, tuples lists.

    A field equal to its default is left out (the decoder lets the dataclass
    fill it in): most of a container's fields are defaults, and fewer fields
    make a faster hit.
    """
    if isinstance(value, ConfigFile):
        return _encode_config(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, object] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if isinstance(item, bytes):
                if item:  # a secret value: never written
                    raise BadCache(f"refusing to store a non-empty {f.name}")
            elif not _is_default(f, item):
                out[f.name] = encode(item)
        return out
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise BadCache(f"cannot store a {type(value).__name__}")


def _encode_config(value: ConfigFile) -> dict[str, object]:
    """A config file with its (not secret) content as base64."""
    import base64

    return {
        "target": value.target,
        "uid": value.uid,
        "gid": value.gid,
        "mode": value.mode,
        "value_b64": base64.b64encode(value.value).decode(),
    }


def _decode_config(v: object) -> ConfigFile:
    import base64
    import binascii

    if not isinstance(v, dict) or set(v) != {"target", "uid", "gid", "mode", "value_b64"}:
        raise BadCache("expected a config file")
    try:
        value = base64.b64decode(string(v["value_b64"]), validate=True)
    except (binascii.Error, ValueError):
        raise BadCache("a config file's content is not base64") from None
    return ConfigFile(
        target=string(v["target"]),
        uid=integer(v["uid"]),
        gid=integer(v["gid"]),
        mode=integer(v["mode"]),
        value=value,
    )


def _is_default(f: dataclasses.Field[Any], item: object) -> bool:
    if f.default is not dataclasses.MISSING:
        return type(item) is type(f.default) and item == f.default
    if f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
        return type(item) is type(default) and item == default
    return False


# Decoding: one typed decoder per field, nothing taken on trust.


def string(v: object) -> str:
    if not isinstance(v, str):
        raise BadCache("expected a string")
    return v


def integer(v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise BadCache("expected an integer")
    return v


def number(v: object) -> float:
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise BadCache("expected a number")
    return float(v)


def boolean(v: object) -> bool:
    if not isinstance(v, bool):
        raise BadCache("expected a boolean")
    return v


def _empty_bytes(v: object) -> bytes:
    if v != "":
        raise BadCache("a secret value in the cache")
    return b""


def _mount_type(v: object) -> MountType:
    if v not in ("volume", "bind", "tmpfs"):
        raise BadCache("unknown mount type")
    return v


def optional(decode: Callable[[object], T]) -> Callable[[object], T | None]:
    return lambda v: None if v is None else decode(v)


def _list(v: object) -> list[object]:
    if not isinstance(v, list):
        raise BadCache("expected a list")
    return v


def tuple_of(decode: Callable[[object], T]) -> Callable[[object], tuple[T, ...]]:
    return lambda v: tuple([decode(x) for x in _list(v)])


def strings(v: object) -> tuple[str, ...]:
    """A list of strings as a tuple (the commonest field, checked in one pass)."""
    if type(v) is not list or not all(type(x) is str for x in v):
        raise BadCache("expected a list of strings")
    return tuple(v)


def string_pairs(v: object) -> tuple[tuple[str, str], ...]:
    """A list of two-string lists as a tuple of pairs (env, tmpfs, build args)."""
    if type(v) is not list or not all(
        type(x) is list and len(x) == 2 and type(x[0]) is str and type(x[1]) is str for x in v
    ):
        raise BadCache("expected a list of string pairs")
    return tuple([(x[0], x[1]) for x in v])


def string_map(v: object) -> dict[str, str]:
    """An object of strings (labels, build args, driver options)."""
    if type(v) is not dict or not all(type(x) is str for x in v.values()):
        raise BadCache("expected an object of strings")
    return dict(v)


def pair(first: Callable[[object], Any], second: Callable[[object], Any]) -> Decoder:
    def decode(v: object) -> tuple[Any, Any]:
        items = _list(v)
        if len(items) != 2:
            raise BadCache("expected a pair")
        return first(items[0]), second(items[1])

    return decode


def map_of(decode: Callable[[object], T]) -> Callable[[object], dict[str, T]]:
    def decode_map(v: object) -> dict[str, T]:
        if not isinstance(v, dict):
            raise BadCache("expected an object")
        return {string(k): decode(x) for k, x in v.items()}

    return decode_map


def _record(cls: type[T], fields: Mapping[str, Decoder]) -> Callable[[object], T]:
    info = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    defaults = {n: f.default for n, f in info.items() if f.default is not dataclasses.MISSING}
    factories = {
        n: f.default_factory
        for n, f in info.items()
        if f.default_factory is not dataclasses.MISSING
    }
    required = info.keys() - defaults.keys() - factories.keys()
    if any(f.init is False for f in info.values()) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} cannot be decoded field by field")

    def decode(v: object) -> T:
        # A field left out is the dataclass's default; a required one left out
        # is a miss.
        if type(v) is not dict or not v.keys() <= fields.keys() or not required <= v.keys():
            raise BadCache(f"not a {cls.__name__}")
        # Filled in as pickle does, past the frozen __init__ (these classes
        # have no __post_init__, checked above): a hit builds some hundred
        # objects, and this keeps it as cheap as unpickling was.
        obj = object.__new__(cls)
        state = obj.__dict__
        state.update(defaults)
        for name, factory in factories.items():
            if name not in v:
                state[name] = factory()
        for name, item in v.items():
            state[name] = fields[name](item)
        return obj

    return decode


# Each table names every init field of its class; a test holds them equal, so
# a field added to a dataclass cannot be silently dropped on a cache hit.
TABLES: dict[type, dict[str, Decoder]] = {}


def table(cls: type[T], **fields: Decoder) -> Callable[[object], T]:
    TABLES[cls] = fields
    return _record(cls, fields)


_port = table(
    PortBinding,
    container_port=integer,
    protocol=string,
    host_ip=string,
    host_port=optional(integer),
)
_mount = table(
    Mount,
    type=_mount_type,
    target=string,
    source=string,
    read_only=boolean,
    selinux=string,
    propagation=string,
)
_health = table(
    Healthcheck,
    test=strings,
    interval_s=number,
    timeout_s=number,
    retries=integer,
    start_period_s=number,
    start_interval_s=number,
)
_attachment = table(
    NetworkAttachment, network=string, aliases=strings, ipv4_address=string, ipv6_address=string
)
_ipam_pool = table(
    IpamPool, subnet=string, ip_range=string, gateway=string, aux_addresses=string_pairs
)
_secret_file = table(
    SecretFile,
    target=string,
    uid=integer,
    gid=integer,
    mode=integer,
    value=_empty_bytes,
)
# Container-level host settings (issue 12).
_ulimit = table(Ulimit, name=string, soft=integer, hard=integer)
_device = table(DeviceMapping, host=string, container=string, permissions=string)
_device_request = table(
    DeviceRequest,
    driver=string,
    count=integer,
    device_ids=strings,
    capabilities=tuple_of(strings),
    options=string_pairs,
)
_log_config = table(LogConfig, driver=string, options=string_pairs)
_host = table(
    HostSettings,
    nano_cpus=integer,
    memory=integer,
    memory_reservation=integer,
    memory_swap=integer,
    pids_limit=integer,
    shm_size=integer,
    ulimits=tuple_of(_ulimit),
    sysctls=string_pairs,
    extra_hosts=strings,
    dns=strings,
    dns_search=strings,
    dns_options=strings,
    devices=tuple_of(_device),
    device_requests=tuple_of(_device_request),
    domainname=string,
    platform=string,
    runtime=string,
    security_opt=strings,
    pid_mode=string,
    ipc_mode=string,
    log_config=optional(_log_config),
)
_container = table(
    ContainerCreate,
    name=string,
    image=string,
    labels=string_map,
    command=optional(strings),
    entrypoint=optional(strings),
    working_dir=string,
    user=string,
    hostname=string,
    env=string_pairs,
    ports=tuple_of(_port),
    mounts=tuple_of(_mount),
    tmpfs=string_pairs,
    networks=tuple_of(_attachment),
    healthcheck=optional(_health),
    restart=string,
    restart_max_attempts=integer,
    init=boolean,
    stop_signal=string,
    stop_timeout=integer,
    read_only=boolean,
    cap_add=strings,
    cap_drop=strings,
    secrets=tuple_of(_secret_file),
    auto_remove=boolean,
    tty=boolean,
    stdin_open=boolean,
    exposed=strings,  # names and networking
    network_mode=string,
    anonymous_volumes=strings,
    host=_host,
    # configs (Compose's `configs`); a cache written before them has none
    configs=tuple_of(_decode_config),
)
_build = table(
    DesiredBuild, context=string, dockerfile=string, args=string_map, target=string, digest=string
)
_dependency = table(DesiredDependency, condition=string, required=boolean, restart=boolean)
# supervisor
_heal = table(DesiredHeal, enabled=boolean, max=integer, window=number, backoff=number)
# Lifecycle hooks (post_start / pre_stop); a cache written before them has
# none, which the dataclass defaults fill in.
_exec_options = table(
    ExecOptions, user=string, privileged=boolean, working_dir=string, env=string_pairs
)
_exec_hook = table(ExecHook, command=strings, options=_exec_options)
_service = table(
    DesiredService,
    name=string,
    replicas=integer,
    depends_on=map_of(_dependency),
    image_ref=string,
    pull=string,
    build=optional(_build),
    template=_container,
    restart=string,
    secret_digests=strings,
    heal=_heal,
    oneshot=boolean,
    post_start=tuple_of(_exec_hook),
    pre_stop=tuple_of(_exec_hook),
    fixed_name=string,
)
_network = table(
    DesiredNetwork,
    key=string,
    name=string,
    external=boolean,
    driver=string,
    internal=boolean,
    labels=string_map,
    ipam_driver=string,
    ipam=tuple_of(_ipam_pool),
    enable_ipv6=boolean,
)
_volume = table(
    DesiredVolume,
    key=string,
    name=string,
    external=boolean,
    driver=string,
    driver_opts=string_map,
    labels=string_map,
)
decode_project = table(
    DesiredProject,
    project=string,
    environment=optional(string),
    project_dir=string,
    services=map_of(_service),
    networks=map_of(_network),
    volumes=map_of(_volume),
    bind_dirs=strings,
)
decode_build_inputs = table(
    BuildInputs,
    context=string,
    dockerfile=string,
    args=string_pairs,
    target=string,
    exclude=strings,
)
