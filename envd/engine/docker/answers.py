"""Docker API answers to engine values: pure functions, no IO.

What the engine's lists and inspects say (containers, networks, volumes,
images, mounts, states) becomes the ``Observed*`` values envd plans from. The
requests going the other way are built in ``envd.engine.docker.payloads``.
Podman's answers differ in places (states, mount options): each difference is
read here, so nothing above the adapter sees it.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import replace
from typing import Any

from envd.values import labels
from envd.values.types import (
    ContainerState,
    IpamPool,
    ObservedContainer,
    ObservedImage,
    ObservedMount,
    ObservedNetwork,
    ObservedVolume,
    PortBinding,
)

Json = Any  # a decoded JSON value from the engine

ANONYMOUS_NAME = re.compile(r"[0-9a-f]{64}")  # how the engine names anonymous volumes
_HEALTH_RE = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_EXITED_RE = re.compile(r"^Exited \((-?\d+)\)")
# Podman's own states where Docker's API has none: "stopped" is an exited container
# whose cleanup has not run yet (it turns "exited" moments later), "stopping" still
# runs, "configured"/"initialized" were never started.
_PODMAN_STATES = {
    "stopped": "exited",
    "stopping": "running",
    "configured": "created",
    "initialized": "created",
}


# --------------------------------------------------------------------------- small parts


def health_from_status(status_text: str) -> str | None:
    """The health in a container list's status text ("Up 3s (healthy)")."""
    m = _HEALTH_RE.search(status_text)
    if not m:
        return None
    return "starting" if m.group(1) == "health: starting" else m.group(1)


def _summary_health(c: Json, status_text: str) -> str | None:
    """A container list entry's health: API 1.52 added ``Health``; before, only the text."""
    summary = c.get("Health")
    if isinstance(summary, dict) and summary.get("Status") in ("starting", "healthy", "unhealthy"):
        return str(summary["Status"])
    if isinstance(summary, dict) and summary.get("Status") == "none":
        return None
    return health_from_status(status_text)


def observed_containers(doc: Json) -> list[ObservedContainer]:
    """A ``/containers/json`` answer."""
    out: list[ObservedContainer] = []
    for c in doc or []:
        status = str(c.get("State") or "")
        status = _PODMAN_STATES.get(status, status)
        status_text = str(c.get("Status") or "")
        exit_code: int | None = None
        if status in ("exited", "dead"):
            m = _EXITED_RE.match(status_text)
            exit_code = int(m.group(1)) if m else None
        names = c.get("Names") or []
        ports = tuple(
            PortBinding(
                container_port=int(p["PrivatePort"]),
                protocol=str(p.get("Type") or "tcp"),
                host_ip=str(p.get("IP") or ""),
                host_port=int(p["PublicPort"]) if p.get("PublicPort") else None,
            )
            # Podman lists a created container's bindings too; Docker only
            # those of a running one, which is what is published.
            for p in ((c.get("Ports") or []) if status == "running" else [])
            if p.get("PublicPort")
        )
        out.append(
            ObservedContainer(
                id=str(c["Id"]),
                name=str(names[0]).lstrip("/") if names else "",
                labels=dict(c.get("Labels") or {}),
                status=status,
                health=_summary_health(c, status_text) if status == "running" else None,
                exit_code=exit_code,
                image_id=str(c.get("ImageID") or ""),
                ports=ports,
                status_text=status_text,
                network_mode=str((c.get("HostConfig") or {}).get("NetworkMode") or ""),
                volumes=_listed_volumes(c),
            )
        )
    return out


# --- down without an inspect per container (issue 15)
def _listed_volumes(c: Json) -> tuple[str, ...] | None:
    """The volume names a list entry shows mounted; None when it has no ``Mounts``."""
    listed = c.get("Mounts")
    if not isinstance(listed, list):
        return None
    return tuple(
        str(m.get("Name") or "")
        for m in listed
        if isinstance(m, dict) and m.get("Type") == "volume"
    )


def may_be_anonymous(volume_names: tuple[str, ...]) -> bool:
    """Whether any of these volumes is named like one the engine named itself (64 hex)."""
    return any(ANONYMOUS_NAME.fullmatch(name) for name in volume_names)


def observed_networks(doc: Json) -> list[ObservedNetwork]:
    """A ``/networks`` answer."""
    return [
        ObservedNetwork(
            id=str(n["Id"]),
            name=str(n["Name"]),
            labels=dict(n.get("Labels") or {}),
            driver=str(n.get("Driver") or ""),
            internal=bool(n.get("Internal")),
            ipam_driver=str((n.get("IPAM") or {}).get("Driver") or ""),
            ipam=_ipam_pools((n.get("IPAM") or {}).get("Config")),
            enable_ipv6=bool(n.get("EnableIPv6")),
        )
        for n in doc or []
    ]


def _ipam_pools(config: Json) -> tuple[IpamPool, ...]:
    return tuple(
        IpamPool(
            str(c.get("Subnet") or ""),
            str(c.get("IPRange") or ""),
            str(c.get("Gateway") or ""),
            tuple(sorted((str(k), str(v)) for k, v in (c.get("AuxiliaryAddresses") or {}).items())),
        )
        for c in config or []
        if isinstance(c, dict)
    )


def observed_volumes(doc: Json) -> list[ObservedVolume]:
    """A ``/volumes`` answer."""
    return [
        ObservedVolume(name=str(v["Name"]), labels=dict(v.get("Labels") or {}))
        for v in (doc or {}).get("Volumes") or []
    ]


def observed_image(ref: str, doc: Json) -> ObservedImage:
    """An image inspect, for the reference it was asked by."""
    config = doc.get("Config") or {}
    return ObservedImage(
        ref=ref,
        id=str(doc["Id"]),
        labels=dict(config.get("Labels") or {}),
        repo_digests=tuple(doc.get("RepoDigests") or ()),
        volumes=tuple(sorted(config.get("Volumes") or {})),
    )


def container_state(doc: Json) -> ContainerState:
    """A container inspect."""
    state = doc.get("State") or {}
    status = str(state.get("Status") or "")
    status = _PODMAN_STATES.get(status, status)
    hc = (doc.get("Config") or {}).get("Healthcheck") or {}
    test = hc.get("Test") or []
    has_hc = bool(test) and test[0] != "NONE"
    health = (state.get("Health") or {}).get("Status") or None
    return ContainerState(
        id=str(doc["Id"]),
        status=status,
        exit_code=int(state.get("ExitCode") or 0) if status in ("exited", "dead") else None,
        # Like the list: no health once it stopped (the engine keeps the last).
        health=str(health) if has_hc and health and status == "running" else None,
        has_healthcheck=has_hc,
        oom_killed=bool(state.get("OOMKilled")),
        error=str(state.get("Error") or ""),
        started_at=engine_time(state.get("StartedAt")),
        finished_at=engine_time(state.get("FinishedAt")),
    )


def engine_time(value: object) -> float | None:
    """An engine timestamp (RFC 3339, nanoseconds) as epoch seconds; None for its zero time."""
    if not isinstance(value, str) or not value or value.startswith("0001-"):
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python parses at most microseconds: keep six digits of the fraction.
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{(digits + '000000')[:6]}{zone}"
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def stop_timeout(doc: Json) -> int:
    """The grace period a container inspect says it was created with."""
    configured = (doc.get("Config") or {}).get("StopTimeout")
    return 10 if configured is None else int(configured)  # 10: the engine's default


def mounts(doc: Json, podman: bool = False) -> list[ObservedMount]:
    """A container inspect's mounts, anonymous volumes marked (not yet the secret ones).

    A volume is anonymous when the engine named it (64 hex) and the spec did
    not ask for it by name, or it was handed over from a replaced container.
    """
    host = doc.get("HostConfig") or {}
    asked = {str(m.get("Source") or "") for m in host.get("Mounts") or []}
    if not podman:
        # Podman reports every mount (anonymous ones too) under Binds.
        asked |= {str(b).split(":", 1)[0] for b in host.get("Binds") or []}
    config_labels = (doc.get("Config") or {}).get("Labels") or {}
    handed = set(str(config_labels.get(labels.ANONYMOUS_VOLUMES) or "").split(","))
    asked |= set(str(config_labels.get(labels.HEX_NAMED_VOLUMES) or "").split(","))
    secret_targets = set(str(config_labels.get(labels.SECRET_MOUNTS) or "").split(","))
    out: list[ObservedMount] = []
    for m in doc.get("Mounts") or []:
        kind = str(m.get("Type") or "")
        name = str((m.get("Name") if kind == "volume" else m.get("Source")) or "")
        anonymous = (
            kind == "volume"
            and ANONYMOUS_NAME.fullmatch(name) is not None
            and (name not in asked or name in handed)
        )
        target = str(m.get("Destination") or "")
        secret = anonymous and target in secret_targets
        found = ObservedMount(kind, target, name, not m.get("RW", True), anonymous, secret)
        if kind in ("bind", "volume"):
            modes = str(m.get("Mode") or "").split(",")
            relabel = "Z" if "Z" in modes else "z" if "z" in modes else ""
            propagation = str(m.get("Propagation") or "") if kind == "bind" else ""
            found = replace(found, selinux=relabel, propagation=propagation)
        out.append(found)
    return out


def mark_secret_volumes(found: list[ObservedMount], secret_volumes: Json) -> list[ObservedMount]:
    """``found`` with the anonymous volumes listed in ``secret_volumes`` marked as secrets."""
    secret = {str(v.get("Name")) for v in (secret_volumes or {}).get("Volumes") or []}
    return [
        ObservedMount(m.type, m.target, m.source, m.read_only, True, True)
        if m.anonymous and m.source in secret
        else m
        for m in found
    ]
