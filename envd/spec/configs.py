"""Configs: read-only files delivered into a service's containers (Compose's ``configs``).

A top-level ``[configs.NAME]`` says where the content comes from (exactly one
of ``file``, relative to the project; ``content``, inline; ``environment``, the
name of a variable); a service lists the configs it gets, by name or in the
long form ``{ source, target, uid, gid, mode }``. The default target is
``/NAME``, as in Compose. Unlike secrets, a config's content is not secret: it
may appear in the desired cache and its digest in labels and hashes.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from envd.spec.model_base import SpecModel
from envd.spec.service_parts import NumericId

# The engine's archive API takes any size, but a config is a configuration
# file: one far bigger is a mistake (or a device), refused before it is read.
MAX_CONFIG_BYTES = 1024 * 1024
CONFIG_MODE = 0o444  # Compose's default: world-readable, nobody writes


class ConfigDef(SpecModel):
    """Where a config's content comes from: exactly one of file, content, environment."""

    file: str | None = None
    content: str | None = None
    environment: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ConfigDef:
        given = [k for k in ("file", "content", "environment") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a config needs exactly one of 'file', 'content' or 'environment'")
        if self.content is not None and len(self.content.encode()) > MAX_CONFIG_BYTES:
            raise ValueError(f"config content is larger than {MAX_CONFIG_BYTES} bytes")
        return self


MAX_ID = 2**32 - 2  # the largest uid/gid Linux has ((uid_t)-1 means "none")


class ServiceConfig(SpecModel):
    """A config delivered to a service as a read-only file at ``target`` (default ``/<source>``)."""

    source: str
    target: str = ""
    uid: NumericId = "0"
    gid: NumericId = "0"
    mode: int = Field(default=CONFIG_MODE, ge=0, le=0o777)

    @field_validator("uid", "gid")
    @classmethod
    def _id(cls, v: str) -> str:
        if not v.isdigit():
            raise ValueError(f"{v!r} is not a numeric id")
        if int(v) > MAX_ID:
            raise ValueError(f"{v!r} is larger than the largest id, {MAX_ID}")
        return v

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if ".." in v.split("/"):
            raise ValueError("a config target cannot contain '..'")
        if "\0" in v:
            raise ValueError("a config target cannot contain a NUL byte")
        return v

    @property
    def path(self) -> str:
        """The absolute path in the container (a relative target is taken from ``/``)."""
        return posixpath.normpath("/" + (self.target or self.source).lstrip("/"))


def _configs(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [{"source": v} if isinstance(v, str) else v for v in value]


ServiceConfigs = Annotated[
    list[ServiceConfig],
    BeforeValidator(_configs),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/ServiceConfig"}]},
        }
    ),
]


def check_configs(
    spec: Any,
    add: Callable[..., None],
    mount_over: Callable[[str, Any, Any], str | None],
    is_file: Callable[[str], bool],
    swarm: bool = False,
) -> None:
    """Cross-checks of configs: defined sources, distinct targets, no target under a mount
    (``swarm``: a swarm mounts them, so a mount or a read-only root is no obstacle).

    ``mount_over(target, volumes, tmpfs)`` names the service's mount holding a
    target; ``is_file(rel)`` says whether a project-relative file exists.
    """
    for name, svc in spec.services.items():
        secret_paths = {s.path for s in svc.secrets}
        targets: dict[str, str] = {}
        for i, cfg in enumerate(svc.configs):
            where = ("services", name, "configs", i)
            if cfg.source not in spec.configs:
                from envd.spec.hints import did_you_mean

                add(
                    f"service {name!r} uses undefined config {cfg.source!r}"
                    f"{did_you_mean(cfg.source, spec.configs)}",
                    *where,
                )
            if cfg.path in targets:
                add(
                    f"service {name!r}: configs {targets[cfg.path]!r} and {cfg.source!r} both"
                    f" target {cfg.path}",
                    *where,
                )
            targets.setdefault(cfg.path, cfg.source)
            if cfg.path in secret_paths:
                add(f"service {name!r}: config {cfg.source!r} targets a secret's path", *where)
            if cfg.path == "/":
                add(f"service {name!r}: config {cfg.source!r} cannot target '/'", *where)
            # The engine writes config files through the container's filesystem,
            # as it does secrets: under a mount they would land in the host
            # directory or the volume (or hide under a tmpfs). A swarm mounts
            # each file on its own, over any mount, as it does secrets.
            over = None if swarm else mount_over(cfg.path, svc.volumes, svc.tmpfs)
            if over is not None:
                add(
                    f"service {name!r}: config {cfg.source!r} targets {cfg.path}, which lies"
                    f" under the {over}; the file would be written into it",
                    *where,
                )
        if svc.configs and svc.read_only and not swarm:
            add(
                f"service {name!r}: configs cannot be written into a read-only root filesystem"
                " (read_only = true); mount the file with a read-only bind instead",
                "services",
                name,
                "configs",
            )
    for name, cdef in spec.configs.items():
        if cdef.file is not None and not is_file(cdef.file):
            add(f"config {name!r}: file {cdef.file!r} does not exist", "configs", name, "file")
