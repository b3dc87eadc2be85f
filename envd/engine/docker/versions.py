"""Which Engine API version envd speaks to an engine, and what the engine is.

envd reads ``/version`` once per engine object and speaks the lower of the
engine's ``ApiVersion`` and the newest version envd knows (``NEWEST``).
Engines older than ``OLDEST`` are refused. Where the API changed between
those two in a field the adapter sends or reads, ``envd.engine.docker.payloads``
builds the payload for the version in use (see docs/compatibility.md,
"Engine API versions").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envd.values.errors import EngineUnavailable

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


@dataclass(frozen=True)
class EngineInfo:
    """What ``/version`` said, and the API version envd speaks to that engine."""

    kind: str  # "Docker" | "Podman" | the engine's own name
    version: str  # the engine's version ("20.10.24", "4.3.1")
    api_version: str  # the newest API version the engine speaks
    api_used: str  # the version envd speaks to it
    os: str = ""
    arch: str = ""

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
    if engine_api < OLDEST:
        raise EngineUnavailable(
            f"the engine at {where} speaks Docker API {render(engine_api)}, older than the"
            f" {render(OLDEST)} envd needs (Docker 20.10 or newer, Podman 4 or newer)"
        )
    return EngineInfo(
        kind=_kind(doc),
        version=str(doc.get("Version") or ""),
        api_version=render(engine_api),
        api_used=render(min(engine_api, NEWEST)),
        os=str(doc.get("Os") or ""),
        arch=str(doc.get("Arch") or ""),
    )
