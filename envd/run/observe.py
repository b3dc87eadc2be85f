"""Observe the engine: what exists for a project, in as few calls as possible."""

from __future__ import annotations

from collections.abc import Iterable

from envd.core.observed import Observed
from envd.engine.base import Engine
from envd.values import labels


def observe(engine: Engine, project: str, image_refs: Iterable[str] = ()) -> Observed:
    """One labelled list call per object kind, plus one inspect per distinct image."""
    containers = tuple(
        c for c in engine.list_containers(project) if c.labels.get(labels.ONE_OFF) != "1"
    )
    networks = tuple(engine.list_networks(project))
    volumes = tuple(engine.list_volumes(project))
    images = {ref: engine.inspect_image(ref) for ref in sorted(set(image_refs))}
    return Observed(containers, networks, volumes, images)
