"""A recreate's mechanics: the old container set aside, its successor made beside it.

Recreate renames the old container aside, then stops it while the new one is
created, starts the new one once the old one has stopped, and removes the old
one meanwhile: the creation and the removal are off the path to ready (the
engine's stop, then its start, are what a one-service change waits for). At
no moment do two containers claim one name (the old one gives its name up
before the new one takes it: ``aside_name``), never do both run, and a crash
between any two steps leaves a state the next plan repairs (a container set
aside, running or not, is removed as left over from an interrupted change).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from envd.core.plan import Action, aside_name
from envd.engine.base import Engine
from envd.run.teardown import stop_and_remove
from envd.values.errors import Conflict, EngineError, NotFound, ServiceFailure
from envd.values.events import Emit, Event
from envd.values.types import ContainerCreate


def create_container(engine: Engine, spec: ContainerCreate) -> str:
    """Create ``spec``'s container; a name taken by a container not of this project is
    the user's to clear, said in one sentence."""
    try:
        return engine.create_container(spec)
    except Conflict:
        raise EngineError(
            f"a container named {spec.name!r} already exists and is not"
            " managed by this project; remove or rename it"
        ) from None


class Recreates:
    """One run's recreates: the side pool they create and remove on, and the
    containers set aside that are still being removed."""

    def __init__(self, engine: Engine, emit: Emit) -> None:
        self.engine = engine
        self.emit = emit
        self._side: ThreadPoolExecutor | None = None
        self._leaving: list[tuple[Future[None], str, str]] = []  # (removal, service, aside name)

    @contextmanager
    def side_pool(self, workers: int) -> Iterator[None]:
        """The side work's own pool, so an action never waits on a task queued behind it."""
        try:
            with ThreadPoolExecutor(max_workers=workers) as self._side:
                yield
        finally:
            self._side = None

    def replace(self, action: Action, spec: ContainerCreate) -> str:
        """The new container of a recreate, created while the old one (renamed aside,
        freeing its name) stops; the old one is removed in the background."""
        aside = aside_name(spec.name, action.container_id)
        try:
            self.engine.rename_container(action.container_id, aside)
        except NotFound:
            return create_container(self.engine, spec)  # gone already: its name is free
        assert self._side is not None, "replace runs inside side_pool()"
        created = self._side.submit(create_container, self.engine, spec)
        try:
            self.engine.stop_container(action.container_id, action.stop_timeout)
        except NotFound:
            pass
        # Without its volumes: from here on they belong to the new container
        # (a crash before it exists leaves them orphaned, never deleted).
        removal = self._side.submit(
            stop_and_remove, self.engine, action.container_id, None, volumes=False, stop=False
        )
        self._leaving.append((removal, action.service, aside))
        return created.result()

    def removed_aside(self) -> list[ServiceFailure]:
        """Wait until the containers set aside are gone; each one that could not be
        removed fails its service's run (the next plan removes it)."""
        failures = []
        for removal, service, aside in self._leaving:
            try:
                removal.result()
            except EngineError as exc:
                if exc.exit_code == 3:
                    raise
                failures.append(ServiceFailure(service, f"remove container {aside} failed: {exc}"))
                self.emit(Event("failed", f"container {aside}", str(exc), "error", service))
        self._leaving.clear()
        return failures
