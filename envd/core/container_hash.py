"""The config hash of a container: what forces a recreate, as a digest.

``canonical`` is the hashed view of a create request: stable, JSON-able,
secret-free (a secret is its keyed digest, a config its content's sha256).
Fields envd learned after the first hashes were given out join the view only
when set, so an upgrade recreates nothing. ``desired_hash`` is the planner's
cheap path; ``config_hash`` also gives the per-field short hashes that let a
plan say "changed: env".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from envd.core.hashing import at_default, digest, hash_fields, plain_deep
from envd.core.host_settings import host_canonical
from envd.values.types import ContainerCreate

if TYPE_CHECKING:
    from envd.core.desired import DesiredService

_HASHED_FIELDS = (
    "image",
    "command",
    "entrypoint",
    "working_dir",
    "user",
    "hostname",
    "env",
    "ports",
    "mounts",
    "tmpfs",
    "networks",
    "healthcheck",
    "restart",
    "restart_max_attempts",
    "init",
    "stop_signal",
    "stop_timeout",
    "read_only",
    "cap_add",
    "cap_drop",
    "labels",
    "secrets",
    "exposed",  # names and networking: hashed only when set (not in _FIRST_FIELDS)
    "network_mode",
)


# The create request's fields when hashes were first given out (containers'
# and swarm tasks' alike). Those fields are always hashed where they are hashed
# at all; a field added since joins the hash only when it differs from its
# default, so what an older envd created keeps its hash and an upgrade
# recreates nothing. (New fields need no entry here.)
FIRST_CREATE_FIELDS = frozenset(
    {
        "name",
        "image",
        "labels",
        "command",
        "entrypoint",
        "working_dir",
        "user",
        "hostname",
        "env",
        "ports",
        "mounts",
        "tmpfs",
        "networks",
        "healthcheck",
        "restart",
        "init",
        "stop_signal",
        "stop_timeout",
        "read_only",
        "cap_add",
        "cap_drop",
        "secrets",
        "auto_remove",
        "tty",
        "stdin_open",
        "anonymous_volumes",
    }
)
# The same for each value inside a create request that is hashed field by field.
_FIRST_FIELDS: Mapping[str, frozenset[str]] = {
    "ContainerCreate": FIRST_CREATE_FIELDS,
    "Mount": frozenset({"type", "target", "source", "read_only"}),
    "Healthcheck": frozenset({"test", "interval_s", "timeout_s", "retries", "start_period_s"}),
    "NetworkAttachment": frozenset({"network", "aliases"}),
    "PortBinding": frozenset({"container_port", "protocol", "host_ip", "host_port"}),
}


def _view(value: Any) -> dict[str, Any]:
    """``plain(value)`` less the fields added after the first hashes that are at their default."""
    first = _FIRST_FIELDS[type(value).__name__]
    return {
        f.name: getattr(value, f.name)
        for f in fields(value)
        if f.name in first or not at_default(f, getattr(value, f.name))
    }


_CREATE_FIELDS = {f.name: f for f in fields(ContainerCreate)}


def canonical(spec: ContainerCreate, secret_digests: Sequence[str] = ()) -> dict[str, Any]:
    """The hashed view of a container: stable, JSON-able, secret-free.

    ``secret_digests`` holds the keyed digest of each of ``spec.secrets``'
    values, in order (``DesiredService.secret_digests``).
    """
    data: dict[str, Any] = {}
    for name in _HASHED_FIELDS:
        value = getattr(spec, name)
        if name == "secrets":
            value = [
                {
                    "target": s.target,
                    "uid": s.uid,
                    "gid": s.gid,
                    "mode": s.mode,
                    "digest": d,
                }
                for s, d in zip(value, secret_digests, strict=True)
            ]
        elif name == "healthcheck":
            value = _view(value) if value is not None else None
        elif name in ("ports", "mounts", "networks"):
            value = [_view(v) for v in value]
        elif name == "labels":
            value = dict(sorted(value.items()))
        elif name not in _FIRST_FIELDS["ContainerCreate"] and at_default(
            _CREATE_FIELDS[name], value
        ):
            continue  # added since the first hashes, and not set
        data[name] = value
    data.update(host_canonical(spec))
    if spec.configs:
        # Only when there are some: every existing container's hash stays as it was.
        data["configs"] = [
            {
                "target": c.target,
                "uid": c.uid,
                "gid": c.gid,
                "mode": c.mode,
                "digest": hashlib.sha256(c.value).hexdigest(),
            }
            for c in spec.configs
        ]
    return data


def config_hash(
    spec: ContainerCreate,
    secret_digests: Sequence[str] = (),
    hooks: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """(full hash, per-field short hashes as ``field=abcd1234,...``).

    The full hash is the sha256 of ``canonical(spec)`` (plus ``hooks``, see
    ``hooks_view``) as compact, key-sorted JSON (``envd.core.hashing``).
    """
    return hash_fields({**canonical(spec, secret_digests), **(hooks or {})})


def hooks_view(service: DesiredService) -> dict[str, Any]:
    """The hashed view of a service's lifecycle hooks; empty when it has none,
    so containers of a service without hooks keep the hash they had before
    hooks existed (no recreate on upgrade)."""
    view: dict[str, Any] = {}
    if service.post_start:
        view["post_start"] = plain_deep(service.post_start)
    if service.pre_stop:
        view["pre_stop"] = plain_deep(service.pre_stop)
    return view


def desired_hash(service: DesiredService, image_id: str) -> str:
    """Only the config hash of a service's containers (equal to ``config_hash``'s first).

    The cheap path for planning: a converged container needs this comparison
    and nothing else.
    """
    data = canonical(service.template, service.secret_digests)
    data["image"] = image_id
    data.update(hooks_view(service))
    return digest(data)
