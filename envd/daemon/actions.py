"""What a user asks the daemon to do to one service: restart, recreate,
rebuild, stop, start (``envd restart|stop|start``, the dashboard's buttons).

Each request is queued and carried out by the next reconcile pass, inside the
project's converge lock like every other change, and reported as events. A
service stopped on purpose is part of the desired state: drift repair does
not start it again until it is started (or an ``envd up`` starts everything,
as ``docker compose up`` does). That set is kept in ``.envd/stopped.json``,
so a daemon restart keeps it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal, get_args

from envd.core.build import build_request
from envd.core.desired import DesiredProject, DesiredService
from envd.engine.base import Engine
from envd.inputs.safefile import read_regular, write_replacing
from envd.run import hooks
from envd.values import labels
from envd.values.errors import EngineError, NotFound
from envd.values.events import Emit, Event

ActionKind = Literal["restart", "recreate", "rebuild", "stop", "start"]
ACTIONS: tuple[str, ...] = get_args(ActionKind)
STOPPED_FILE = "stopped.json"
_CAP = 1024 * 1024


class ServiceActions:
    """The queue of requested actions and the services stopped on purpose."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._path = state_dir / STOPPED_FILE if state_dir is not None else None
        self._stopped: set[str] = set(self._load())

    def _load(self) -> list[str]:
        if self._path is None:
            return []
        try:
            data = json.loads(read_regular(self._path, _CAP, follow=False, own=True))
        except (OSError, ValueError):
            return []  # none yet, or not ours: nothing is stopped on purpose
        if not isinstance(data, list):
            return []
        return [s for s in data if isinstance(s, str)]

    def _save(self) -> None:
        if self._path is not None:
            write_replacing(self._path, json.dumps(sorted(self._stopped)).encode(), 0o600)

    @property
    def stopped(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._stopped)

    def start_all(self) -> None:
        """``envd up``: nothing stays stopped on purpose."""
        with self._lock:
            if self._stopped:
                self._stopped.clear()
                self._save()

    def run(
        self,
        requests: Iterable[tuple[str, str]],
        engine: Engine,
        desired: DesiredProject,
        emit: Emit,
    ) -> frozenset[str]:
        """Carry out ``(action, service)`` requests; return the services the
        pass must recreate. Unknown services are reported, not raised."""
        recreate: set[str] = set()
        for kind, service in requests:
            svc = desired.services.get(service)
            resource = f"service {service}"
            if svc is None:
                emit(Event(kind, resource, f"no service {service!r} is active", "error", service))
                continue
            emit(Event(kind, resource, f"{kind} requested", "working", service))
            try:
                if kind in ("stop", "start", "restart"):
                    with self._lock:
                        if kind == "stop":
                            self._stopped.add(service)
                        else:
                            self._stopped.discard(service)
                        self._save()
                    self._each(engine, desired, service, _lifecycle(kind, engine, svc, emit))
                elif kind in ("recreate", "rebuild"):
                    if kind == "rebuild":
                        if svc.build is None:
                            emit(Event(kind, resource, "has no build section", "error", service))
                            continue
                        engine.build_image(build_request(desired.project, svc, svc.image_ref))
                    with self._lock:
                        self._stopped.discard(service)
                        self._save()
                    recreate.add(service)
            except EngineError as exc:
                emit(Event(kind, resource, str(exc), "error", service))
                continue
            if kind not in ("recreate", "rebuild"):  # those are done by the pass's apply
                emit(Event(kind, resource, "done", "done", service))
        return frozenset(recreate)

    @staticmethod
    def _each(
        engine: Engine,
        desired: DesiredProject,
        service: str,
        act: Callable[[str, int | None], None],
    ) -> None:
        """``act(container id, stop grace)`` on each of the service's containers."""
        grace = desired.services[service].template.stop_timeout
        for c in engine.list_containers(desired.project):
            if c.service == service and c.labels.get(labels.ONE_OFF) != "1":
                try:
                    act(c.id, grace)
                except NotFound:
                    pass  # gone meanwhile: the pass will see it


def _lifecycle(
    kind: str, engine: Engine, svc: DesiredService, emit: Emit
) -> Callable[[str, int | None], None]:
    """Stop, start or restart one container, with the hooks Compose runs around them."""
    resource = f"service {svc.name}"
    masked = hooks.secret_values(svc)

    def act(container_id: str, timeout: int | None) -> None:
        if kind in ("stop", "restart"):
            hooks.pre_stop(
                engine, container_id, svc.pre_stop, resource, svc.name, emit, secrets=masked
            )
            engine.stop_container(container_id, timeout)
        if kind in ("start", "restart"):
            engine.start_container(container_id)
            hooks.post_start(
                engine, container_id, svc.post_start, resource, svc.name, emit, secrets=masked
            )

    return act
