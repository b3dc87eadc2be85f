"""What the engine has for a project, as one value the planner reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field

from envd.values.record import value
from envd.values.types import ObservedContainer, ObservedImage, ObservedNetwork, ObservedVolume


@value
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
