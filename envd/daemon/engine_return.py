"""When the engine comes back: which containers ran before it went away, and
starting those it stopped (dependencies first), as a daemon pass does first."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from envd.core.desired import DesiredProject
from envd.engine.base import Engine
from envd.run.readiness import ServiceProgress
from envd.values import labels
from envd.values.errors import EngineError, EngineUnavailable
from envd.values.events import Phase

Publish = Callable[..., None]


def running_ids(engine: Engine, project: str) -> frozenset[str]:
    """The project's running containers (one-offs aside), from an engine that
    accepts a new connection."""
    # A stopping dockerd closes its listener first and then stops the
    # containers, still answering on kept-alive connections: only an engine
    # that accepts a new one reports containers that exited on their own.
    engine.ping()
    return frozenset(
        c.id
        for c in engine.list_containers(project)
        if c.status == "running" and c.labels.get(labels.ONE_OFF) != "1"
    )


def running_in(engine: Engine, progress: Mapping[str, ServiceProgress]) -> frozenset[str]:
    """The running containers a converge saw last (its own observation, no list call)."""
    # The ping comes after that observation: an engine accepting a new
    # connection now had not begun stopping (it closes its listener first)
    # when the containers were listed.
    engine.ping()
    return frozenset(c.id for p in progress.values() for c in p.containers if c.status == "running")


def start_stopped_by_engine(
    engine: Engine, desired: DesiredProject, running: frozenset[str], publish: Publish
) -> None:
    """Start, dependencies first, the containers in ``running`` that the engine stopped."""
    stopped = [
        c
        for c in engine.list_containers(desired.project)
        if c.id in running and c.status in ("exited", "created")
    ]
    done: Phase = "done"
    for level in desired.levels():
        for c in stopped:
            if c.service not in level:
                continue
            try:
                engine.start_container(c.id)
            except EngineUnavailable:
                raise
            except EngineError as exc:  # the converge that follows says what to do
                publish("start", f"container {c.name}", str(exc), "error", service=c.service)
                continue
            publish(
                "start",
                f"container {c.name}",
                "started again: the engine stopped it when it went away",
                done,
                service=c.service,
            )
