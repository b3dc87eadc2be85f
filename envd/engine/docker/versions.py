"""Which Engine API version envd speaks to an engine, and what the engine is.

envd learns an engine's API version once per engine object, from the
headers of its ``/_ping`` answer (``Api-Version``, ``Server``) or, when those
do not say, from ``/version``; it speaks the lower of the engine's version and
the newest version envd knows (``NEWEST``).
Engines older than ``OLDEST`` are refused. Where the API changed between
those two in a field the adapter sends or reads, ``envd.engine.docker.payloads``
builds the payload for the version in use (see docs/compatibility.md,
"Engine API versions").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from envd.values.errors import EngineUnavailable
from envd.values.limit_support import ALL_LIMITS, APPLIES_ALL, CGROUP_LIMITS, LimitSupport
from envd.values.record import value

Version = tuple[int, int]

OLDEST: Version = (1, 41)  # Docker 20.10
NEWEST: Version = (1, 55)  # Docker 29.7, the newest published when this was written

# Features by the first API version that has them.
MULTI_NETWORK_CREATE: Version = (1, 44)  # several EndpointsConfig at /containers/create
NO_CHECK_DUPLICATE: Version = (1, 44)  # networks/create: CheckDuplicate deprecated (always on)
START_INTERVAL: Version = (1, 44)  # a healthcheck's StartInterval (older engines ignore it)
TASK_TEMPLATE_NETWORKS: Version = (1, 44)  # services: top-level Networks deprecated

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def parse(text: str) -> Version | None:
    """``"1.44"`` → (1, 44); None when it is not a version."""
    m = _VERSION_RE.match(text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def render(v: Version) -> str:
    return f"{v[0]}.{v[1]}"


@value
class EngineInfo:
    """What the engine said it is (``/_ping`` or ``/version``), and the API version envd
    speaks to it."""

    kind: str  # "Docker" | "Podman" | the engine's own name
    version: str  # the engine's version ("20.10.24", "4.3.1")
    api_version: str  # the newest API version the engine speaks
    api_used: str  # the version envd speaks to it
    os: str = ""
    arch: str = ""  # "" when learnt from a ping (it does not say)

    @property
    def api(self) -> Version:
        return parse(self.api_used) or OLDEST

    @property
    def is_podman(self) -> bool:
        return self.kind == "Podman"


def _kind(doc: dict[str, object]) -> str:
    components = doc.get("Components")
    names = (
        [str(c.get("Name") or "") for c in components or [] if isinstance(c, dict)]
        if isinstance(components, list)
        else []
    )
    if any("podman" in n.lower() for n in names):
        return "Podman"
    platform = doc.get("Platform")
    name = str(platform.get("Name") or "") if isinstance(platform, dict) else ""
    if "podman" in name.lower():
        return "Podman"
    return "Docker"


def negotiate(doc: object, where: str) -> EngineInfo:
    """The ``EngineInfo`` for a ``/version`` answer; refuses an engine older than ``OLDEST``."""
    if not isinstance(doc, dict):
        raise EngineUnavailable(f"the engine at {where} gave no version information")
    engine_api = parse(str(doc.get("ApiVersion") or ""))
    if engine_api is None:
        raise EngineUnavailable(f"the engine at {where} did not say which API version it speaks")
    return _info(
        where,
        engine_api,
        kind=_kind(doc),
        version=str(doc.get("Version") or ""),
        os=str(doc.get("Os") or ""),
        arch=str(doc.get("Arch") or ""),
    )


# A ping's ``Server`` header: "Docker/20.10.24+dfsg1 (linux)", "Libpod/4.3.1 (linux)".
_SERVER_RE = re.compile(r"^(Docker|Libpod)/([^\s()]+)(?:\s+\((\w+)\))?$")


def from_ping(headers: Mapping[str, str], where: str) -> EngineInfo | None:
    """The ``EngineInfo`` a ``/_ping`` answer's headers give (lower-case names), or None
    when they do not name both the engine and its API version (then ask ``/version``).

    Docker and Podman both send ``Api-Version`` (the newest version they speak,
    as ``/version``'s ``ApiVersion``) and ``Server``; reading them spares a
    round trip on every command, and ``/version`` makes dockerd ask containerd
    (the slowest of the calls a one-service change makes before its work).
    Refuses an engine older than ``OLDEST`` as ``negotiate`` does.
    """
    engine_api = parse(headers.get("api-version", ""))
    server = _SERVER_RE.match(headers.get("server", "").strip())
    if engine_api is None or server is None:
        return None
    name, version, os_name = server.groups()
    kind = "Podman" if name == "Libpod" else "Docker"
    return _info(where, engine_api, kind=kind, version=version, os=os_name or "")


def _info(
    where: str, engine_api: Version, *, kind: str, version: str, os: str, arch: str = ""
) -> EngineInfo:
    if engine_api < OLDEST:
        raise EngineUnavailable(
            f"the engine at {where} speaks Docker API {render(engine_api)}, older than the"
            f" {render(OLDEST)} envd needs (Docker 20.10 or newer, Podman 4 or newer)"
        )
    return EngineInfo(
        kind=kind,
        version=version,
        api_version=render(engine_api),
        api_used=render(min(engine_api, NEWEST)),
        os=os,
        arch=arch,
    )


# Docker's /info flag saying whether its kernel supports each limit.
_LIMIT_FLAGS = {
    "cpus": "CpuCfsQuota",
    "mem_limit": "MemoryLimit",
    "mem_reservation": "MemoryLimit",
    "memswap_limit": "SwapLimit",
    "pids_limit": "PidsLimit",
}


def ignored_limits(info: object) -> LimitSupport:
    """Which resource limits the engine whose ``/info`` is ``info`` would silently drop.

    Rootless Podman on cgroups v1 cannot hand a container a cgroup of its own,
    so it creates the container without its CPU, memory, swap and pids limits;
    its Docker API drops the ulimits there too. Podman's compatible ``/info``
    has ``Rootless`` and ``CgroupVersion``.

    Docker without a cgroup manager (``CgroupDriver`` "none": rootless Docker on
    cgroups v1, or on v2 without systemd) runs containers without any cgroup
    limit. Otherwise Docker reports per limit whether its kernel supports it
    (``MemoryLimit``, ``SwapLimit``, ``CpuCfsQuota``, ``PidsLimit``); one that is
    false is discarded at create with only a warning in the create answer
    ("Limitation discarded"). A CPU quota it cannot apply is refused by Docker
    itself, but named here too, so the refusal comes before anything is made.
    Ulimits are rlimits, not cgroups: Docker applies them either way.
    """
    if not isinstance(info, dict):
        return APPLIES_ALL
    if info.get("Rootless") is True and str(info.get("CgroupVersion") or "") == "1":
        return LimitSupport(
            drops=frozenset(ALL_LIMITS),
            engine="rootless Podman on cgroups v1",
            remedy="use rootful Podman or a host with cgroups v2",
        )
    if "Rootless" in info:  # Podman's /info: rootful, or rootless on cgroups v2
        return APPLIES_ALL
    if info.get("CgroupDriver") == "none":
        return LimitSupport(
            drops=frozenset(CGROUP_LIMITS),
            engine="Docker without cgroups (rootless, no cgroup manager)",
            remedy="run rootless Docker on cgroups v2 with systemd, or rootful Docker",
        )
    drops = {name for name, flag in _LIMIT_FLAGS.items() if info.get(flag) is False}
    if not drops:
        return APPLIES_ALL
    missing = ", ".join(sorted({_LIMIT_FLAGS[name] for name in drops}))
    return LimitSupport(
        drops=frozenset(drops),
        engine=f"this Docker engine (its kernel lacks {missing} support)",
        remedy="enable those cgroup controllers on the host (for swap: swapaccount=1)",
    )
