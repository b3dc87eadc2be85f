"""Observe the engine: what exists for a project, in as few calls as possible."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from envd.engine.base import Engine
from envd.engine.types import ObservedContainer, ObservedImage, ObservedNetwork, ObservedVolume


@dataclass(frozen=True)
class Observed:
    containers: tuple[ObservedContainer, ...] = ()
    networks: tuple[ObservedNetwork, ...] = ()
    volumes: tuple[ObservedVolume, ...] = ()
    images: Mapping[str, ObservedImage | None] = field(default_factory=dict)

    def by_service(self) -> dict[str, list[ObservedContainer]]:
        out: dict[str, list[ObservedContainer]] = {}
        for c in self.containers:
            out.setdefault(c.service, []).append(c)
        return out


def observe(engine: Engine, project: str, image_refs: Iterable[str] = ()) -> Observed:
    """One labelled list call per object kind, plus one inspect per distinct image."""
    containers = tuple(
        c for c in engine.list_containers(project) if c.labels.get("dev.envd.one-off") != "1"
    )
    networks = tuple(engine.list_networks(project))
    volumes = tuple(engine.list_volumes(project))
    images = {ref: engine.inspect_image(ref) for ref in sorted(set(image_refs))}
    return Observed(containers, networks, volumes, images)
