"""The desired state as JSON, and back through explicit typed decoders.

The desired cache stores what this module writes: plain JSON objects, one per
dataclass, keyed by field name. Reading it back constructs each dataclass
from a table of one decoder per field that checks the JSON type of its value;
an object with a missing, extra or mistyped field raises ``BadCache``. Nothing
in the file names a type or a function, so a planted file can at worst be
refused: unlike pickle, decoding runs no code of the file's choosing.

Secret values never reach the file: a ``SecretFile.value`` is written only
when empty, and read back only as ``b""``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from envd.core.desired import (
    DesiredBuild,
    DesiredDependency,
    DesiredNetwork,
    DesiredProject,
    DesiredService,
    DesiredVolume,
)
from envd.inputs.buildctx import BuildInputs
from envd.values.types import (
    ContainerCreate,
    Healthcheck,
    Mount,
    MountType,
    NetworkAttachment,
    PortBinding,
    SecretFile,
)

T = TypeVar("T")
Decoder = Callable[[object], Any]


class BadCache(ValueError):
    """The JSON does not describe the value it should: the cache is a miss."""


# Encoding: a generic walk (only on a miss, when the entry is stored).


def encode(value: object) -> object:
    """``value`` as JSON-ready data: dataclasses become objects, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, object] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if isinstance(item, bytes):
                if item:  # a secret value: never written
                    raise BadCache(f"refusing to store a non-empty {f.name}")
                out[f.name] = ""
            else:
                out[f.name] = encode(item)
        return out
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise BadCache(f"cannot store a {type(value).__name__}")


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
    return lambda v: tuple(decode(x) for x in _list(v))


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
    def decode(v: object) -> T:
        if not isinstance(v, dict) or v.keys() != fields.keys():
            raise BadCache(f"not a {cls.__name__}")
        return cls(**{name: fields[name](v[name]) for name in fields})

    return decode


STRS = tuple_of(string)
STR_MAP = map_of(string)

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
_mount = table(Mount, type=_mount_type, target=string, source=string, read_only=boolean)
_health = table(
    Healthcheck,
    test=STRS,
    interval_s=number,
    timeout_s=number,
    retries=integer,
    start_period_s=number,
)
_attachment = table(NetworkAttachment, network=string, aliases=STRS)
_secret_file = table(
    SecretFile,
    target=string,
    uid=integer,
    gid=integer,
    mode=integer,
    value=_empty_bytes,
)
_container = table(
    ContainerCreate,
    name=string,
    image=string,
    labels=STR_MAP,
    command=optional(STRS),
    entrypoint=optional(STRS),
    working_dir=string,
    user=string,
    hostname=string,
    env=tuple_of(pair(string, string)),
    ports=tuple_of(_port),
    mounts=tuple_of(_mount),
    tmpfs=tuple_of(pair(string, string)),
    networks=tuple_of(_attachment),
    healthcheck=optional(_health),
    restart=string,
    init=boolean,
    stop_signal=string,
    stop_timeout=integer,
    read_only=boolean,
    cap_add=STRS,
    cap_drop=STRS,
    secrets=tuple_of(_secret_file),
    auto_remove=boolean,
    tty=boolean,
    stdin_open=boolean,
    anonymous_volumes=STRS,
)
_build = table(
    DesiredBuild, context=string, dockerfile=string, args=STR_MAP, target=string, digest=string
)
_dependency = table(DesiredDependency, condition=string, required=boolean)
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
    secret_digests=STRS,
)
_network = table(
    DesiredNetwork,
    key=string,
    name=string,
    external=boolean,
    driver=string,
    internal=boolean,
    labels=STR_MAP,
)
_volume = table(
    DesiredVolume,
    key=string,
    name=string,
    external=boolean,
    driver=string,
    driver_opts=STR_MAP,
    labels=STR_MAP,
)
decode_project = table(
    DesiredProject,
    project=string,
    environment=optional(string),
    project_dir=string,
    services=map_of(_service),
    networks=map_of(_network),
    volumes=map_of(_volume),
)
decode_build_inputs = table(
    BuildInputs,
    context=string,
    dockerfile=string,
    args=tuple_of(pair(string, string)),
    target=string,
    exclude=STRS,
)
