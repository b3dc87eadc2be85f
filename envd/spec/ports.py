"""A service's published ports: the ``Port`` model and Compose's short syntax.

``"[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]"`` strings (and bare
numbers, and ranges) become ``Port`` values here, so everything downstream
sees one shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator

from envd.spec.model_base import SpecModel


class Port(SpecModel):
    """A published port. Short syntax: ``[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]``."""

    target: int = Field(ge=1, le=65535)
    published: Annotated[
        int | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": 65535},
                    {"type": "string", "pattern": "^[0-9]+$"},
                ]
            }
        ),
    ] = Field(default=None, ge=0, le=65535)
    host_ip: str = ""
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"

    @field_validator("published", mode="before")
    @classmethod
    def _published_str(cls, v: Any) -> Any:
        if isinstance(v, str):
            if not v.isdigit():
                raise ValueError(f"published port {v!r} is not a number")
            return int(v)
        return v


def _port_range(text: str) -> list[int]:
    lo, sep, hi = text.partition("-")
    if not lo.isdigit() or (sep and not hi.isdigit()):
        raise ValueError(f"invalid port {text!r}")
    start, end = int(lo), int(hi) if sep else int(lo)
    if end < start:
        raise ValueError(f"invalid port range {text!r}")
    return list(range(start, end + 1))


def parse_port(text: str) -> list[dict[str, Any]]:
    spec, _, proto = text.partition("/")
    proto = proto or "tcp"
    host_ip = ""
    if spec.startswith("["):
        close = spec.find("]")
        if close < 0 or spec[close + 1 : close + 2] != ":":
            raise ValueError(f"invalid port {text!r}")
        host_ip, spec = spec[1:close], spec[close + 2 :]
        parts = spec.split(":")
    else:
        parts = spec.split(":")
        if len(parts) == 3:
            host_ip = parts.pop(0)
    if len(parts) == 1:
        published: list[int | None] = []
        targets = _port_range(parts[0])
        published = [None] * len(targets)
    elif len(parts) == 2:
        targets = _port_range(parts[1])
        if parts[0] == "":
            published = [None] * len(targets)
        else:
            pub = _port_range(parts[0])
            if len(pub) == 1 and len(targets) > 1:
                raise ValueError(f"invalid port {text!r}: one host port for a range")
            if len(pub) != len(targets):
                raise ValueError(f"invalid port {text!r}: ranges differ in length")
            published = list(pub)
    else:
        raise ValueError(f"invalid port {text!r}: use [HOST_IP:][HOST_PORT:]CONTAINER_PORT")
    return [
        {"target": t, "published": p, "host_ip": host_ip, "protocol": proto}
        for t, p in zip(targets, published, strict=False)
    ]


def _ports(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str):
            out.extend(parse_port(item))
        else:
            out.append(item)
    return out


Ports = Annotated[
    list[Port],
    BeforeValidator(_ports),
    WithJsonSchema(
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "integer"},
                    {"$ref": "#/$defs/Port"},
                ]
            },
        }
    ),
]
