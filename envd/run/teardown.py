"""Take a project down: stop and remove containers, then networks, then volumes.

``envd down`` uses all of it; ``apply`` shares the stop-and-remove of one
container (a recreate, a scale-down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from envd.core.desired import DesiredProject
from envd.engine.base import Engine
from envd.run import hooks
from envd.run.retry import retry
from envd.values import labels
from envd.values.errors import Conflict, EngineError, NotFound
from envd.values.events import Clock, Emit, Event, SystemClock, discard
from envd.values.types import ExecHook, ObservedContainer

# How long a network may still count endpoints of just-removed containers.
NETWORK_RELEASE_GRACE = 5.0
# Stops and removes in flight during `down`. Fewer (8) looked slightly faster
# for 50 containers that exit at once (the engine serialises their network
# teardown), but each wave of services that wait out their grace period costs
# that whole period: 16 halves those waves.
DOWN_WORKERS = 16


def stop_and_remove(
    engine: Engine,
    container_id: str,
    timeout: int | None,
    *,
    volumes: bool,
    stop: bool = True,
    mounted: tuple[str, ...] | None = None,
) -> None:
    """Stop (with the container's own signal and grace) and remove; gone already is done.

    ``mounted``: the volume names the engine's list showed (spares an inspect).
    """
    try:
        if stop:
            engine.stop_container(container_id, timeout)
        engine.remove_container(container_id, volumes=volumes, mounted=mounted)
    except NotFound:
        pass


def remove_all(
    engine: Engine,
    containers: Iterable[ObservedContainer],
    stop_timeout: Callable[[ObservedContainer], int | None],
    emit: Emit = discard,
    workers: int = DOWN_WORKERS,
    volumes: bool = False,
    pre_stop: Callable[[ObservedContainer], Sequence[ExecHook]] | None = None,
) -> None:
    """Stop and remove containers in parallel (``down``); ``volumes``: anonymous ones too.

    ``pre_stop``: a container's ``pre_stop`` hooks, run before it is stopped.
    """
    items = list(containers)
    if not items:
        return

    def one(c: ObservedContainer) -> None:
        emit(Event("remove", f"container {c.name}", "stopping", "working", c.service))
        running = c.status in ("running", "restarting", "paused")
        if pre_stop is not None and c.status == "running":
            hooks.pre_stop(engine, c.id, pre_stop(c), f"container {c.name}", c.service, emit)
        stop_and_remove(
            engine, c.id, stop_timeout(c), volumes=volumes, stop=running, mounted=c.volumes
        )
        emit(Event("remove", f"container {c.name}", "removed", "done", c.service))

    # Podman refuses to remove a container others share a namespace of
    # ("has dependent containers"), and its list does not say who joins whom
    # (no HostConfig): a container refused that way is tried again once the
    # rest are gone. Those the list shows joined go first, so Docker-shaped
    # answers need no second try.
    refused: list[ObservedContainer] = []

    def first_try(c: ObservedContainer) -> None:
        try:
            one(c)
        except Conflict:
            refused.append(c)

    joined = [c for c in items if c.network_mode.startswith("container:")]
    rest = [c for c in items if not c.network_mode.startswith("container:")]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        for wave in (joined, rest):
            for fut in [pool.submit(first_try, c) for c in wave]:
                fut.result()
    for c in refused:
        one(c)  # still refused: the engine's reason is the caller's error


@dataclass(frozen=True)
class NetworkRemoval:
    """What ``remove_networks`` could not remove, and why."""

    # Still in use: a container outside the project (or a new one) is attached.
    stuck: dict[str, list[str]] = field(default_factory=dict)
    # No container attached, yet the engine counts endpoints on them: Docker
    # 20.10 loses endpoint-count updates when many containers on one network
    # stop at once (moby#42119) and keeps the wrong count until dockerd
    # restarts. Nothing envd can call clears it; the empty network is harmless
    # and the next `up` reuses it, so it is left in place with a warning.
    leaked: list[str] = field(default_factory=list)


def remove_networks(
    engine: Engine, project: str, emit: Emit = discard, clock: Clock | None = None
) -> NetworkRemoval:
    """Remove the project's networks; say which the engine would not let go."""
    clock = clock or SystemClock()
    result = NetworkRemoval()
    for net in engine.list_networks(project):
        resource = f"network {net.name}"
        emit(Event("remove-network", resource, "", "working"))
        # The engine releases endpoints of just-removed containers a moment
        # late (moby#42119): retry briefly before calling it a failure.
        deadline = clock.monotonic() + NETWORK_RELEASE_GRACE
        problem = retry(
            partial(_remove_network_or_gone, engine, net.name, emit),
            clock,
            deadline,
            # Usually released within a few tenths of a second: a short
            # interval keeps down from overshooting it by up to 0.2 s.
            interval=0.05,
            on=(EngineError,),
        )
        if problem is None:
            continue
        attached = engine.network_containers(net.name)
        if attached:
            emit(Event("remove-network", resource, str(problem), "error"))
            result.stuck[net.name] = attached
        else:
            emit(
                Event(
                    "remove-network",
                    resource,
                    "left in place: the engine still counts endpoints of removed containers",
                    "info",
                )
            )
            result.leaked.append(net.name)
    return result


def _remove_network_or_gone(engine: Engine, name: str, emit: Emit) -> None:
    try:
        engine.remove_network(name)
    except NotFound:
        return  # removed meanwhile: nothing to report
    emit(Event("remove-network", f"network {name}", "", "done"))


def remove_declared_volumes(
    engine: Engine, desired: DesiredProject, emit: Emit = discard
) -> list[str]:
    """Remove the named volumes the spec declares and this project created; their names."""
    declared = {v.name for v in desired.volumes.values() if not v.external}
    removed: list[str] = []
    for vol in engine.list_volumes(desired.project):
        if vol.name in declared and vol.labels.get(labels.PROJECT) == desired.project:
            emit(Event("remove", f"volume {vol.name}", "", "working"))
            engine.remove_volume(vol.name)
            removed.append(vol.name)
            emit(Event("remove", f"volume {vol.name}", "", "done"))
    return removed
