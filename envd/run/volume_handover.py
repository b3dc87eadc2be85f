"""A recreate's anonymous volumes, handed over from the old container to the new one.

Like Compose, a recreate keeps the data in the old container's anonymous
volumes (an image's ``VOLUME``, a spec entry without a source): the new
container mounts the same volumes at the same paths instead of fresh ones.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace

from envd.core.desired import DesiredProject
from envd.engine.base import Engine
from envd.values.errors import NotFound
from envd.values.types import ContainerCreate, Mount, ObservedImage


def hand_over_volumes(
    engine: Engine,
    desired: DesiredProject,
    image: ObservedImage | None,
    old_id: str,
    spec: ContainerCreate,
) -> tuple[ContainerCreate, str]:
    """(``spec`` with the old container's anonymous volumes mounted at the same paths,
    the paths handed over, comma-separated, or "" when none is).

    A path the spec mounts something else at (a named volume, a bind, a
    tmpfs) keeps what the spec says; an anonymous volume the spec asks for
    at that path is the old one. Only paths the new container would get an
    anonymous volume at are served (the spec's entries without a source and
    the new image's ``VOLUME``s), as Compose does: a volume the spec and the
    image dropped is left behind, not mounted. envd's secret volumes are
    never handed over: they go with their container. ``image`` is the new
    image as observed (None: unknown, so every anonymous volume is kept).
    """
    try:
        old = engine.container_mounts(old_id)
    except NotFound:
        return spec, ""  # gone already: nothing to hand over
    named = {v.name for v in desired.volumes.values()}
    anonymous = {
        posixpath.normpath(m.target): m
        for m in old
        if m.type == "volume" and m.anonymous and not m.secrets and m.source not in named
    }
    if image is not None:  # unknown image: keep everything rather than guess
        wanted = {posixpath.normpath(p) for p in image.volumes} | {
            posixpath.normpath(m.target) for m in spec.mounts if m.type == "volume" and not m.source
        }
        anonymous = {path: m for path, m in anonymous.items() if path in wanted}
    if not anonymous:
        return spec, ""
    mounts: list[Mount] = []
    for m in spec.mounts:
        prev = anonymous.pop(posixpath.normpath(m.target), None)
        if prev is not None and m.type == "volume" and not m.source:
            mounts.append(replace(m, source=prev.source))
        else:
            mounts.append(m)
    for path, _ in spec.tmpfs:
        anonymous.pop(posixpath.normpath(path), None)
    mounts += [Mount("volume", m.target, m.source, m.read_only) for m in anonymous.values()]
    handed = tuple(m.source for m in mounts if m not in spec.mounts)
    if not handed:
        return spec, ""
    where = ", ".join(sorted(m.target for m in mounts if m.source in handed))
    return replace(spec, mounts=tuple(mounts), anonymous_volumes=handed), where
