"""The daemon's supervisor: heal unhealthy containers, restart dependents.

Runs beside the reconcile loop in its own thread. It wakes on the engine's
container events (its own stream, filtered to lifecycle and health changes),
at a heal's back-off deadline, and every ``TICK`` seconds as a safety net,
then looks at the project once (one list call; an inspect only of the
services a ``depends_on.restart`` names) and lets ``envd.core.heal`` decide.
Every change it makes holds the project's converge lock, like a reconcile
pass, and is checked again under it: a pass may have replaced the container
meanwhile. Each heal, flap and dependent restart is an event on the hub and a
line in the daemon's log, with its reason and timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from envd.core.desired import DesiredProject, DesiredService
from envd.core.heal import (
    ServiceRun,
    current,
    decide,
    dependents_to_restart,
    flapped,
    healed,
    reset,
    restart_watched,
)
from envd.daemon.heal_store import HealStore
from envd.daemon.log import Logger
from envd.engine.base import Engine
from envd.run.project_lock import LockBusy, converging
from envd.run.supervision import redact
from envd.values import labels
from envd.values.errors import EngineError, EnvdError, NotFound
from envd.values.events import Phase
from envd.values.types import ContainerState, ObservedContainer

TICK = 2.0
# The safety-net look (events wake the supervisor; the tick catches what they
# missed) may cost at most 1/SAFETY_SHARE of a core: a project whose list
# call costs 14 ms (500 containers) is looked at every 28 s, a small one
# every TICK. Never rarer than SAFETY_CAP.
SAFETY_SHARE = 2000.0
SAFETY_CAP = 30.0
# With nothing to watch (no container has a healthcheck, none is healing, no
# dependent restarts with its dependency) only an engine event can give the
# supervisor work, and events wake it: the safety net then looks every
# SAFETY_CAP s, not every TICK (an idle daemon's largest cost after the file
# watcher's).
LOG_LINES = 10
_WAKE_ON = ("start", "die", "stop", "destroy", "create", "health_status", "oom", "kill")

Publish = Callable[..., None]


class Supervisor:
    def __init__(
        self,
        engine: Engine,
        project: str,
        desired: Callable[[], DesiredProject | None],
        store: HealStore,
        publish: Publish,
        log: Logger,
        stop: threading.Event,
        now: Callable[[], float] = time.time,
        lock_dir: Path | None = None,  # tests: a private converge-lock directory
        stopped: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        """``stopped``: the services stopped on purpose (``envd stop``), neither
        healed nor restarted as dependents until started again."""
        self.stopped = stopped
        self.engine = engine
        self.project = project
        self.desired = desired
        self.store = store
        self._publish = publish
        self.log = log
        self.stop = stop
        self.now = now
        self.lock_dir = lock_dir
        self._wake = threading.Event()
        self._due: dict[str, float] = {}  # service -> when its backed-off heal may run
        self._unhealthy_since: dict[str, float] = {}  # container id -> first seen unhealthy
        self._healing: dict[str, float] = {}  # container id -> first seen unhealthy, until healthy
        self._said_off: set[str] = set()  # containers whose "healing is off" was said
        # (service, dependency start) pairs handled: a failed restart is not retried in a loop.
        self._restarted: set[tuple[str, float]] = set()
        self.watching = True  # the last look found something only a look would see change

    # ------------------------------------------------------------------ threads
    def start(self) -> None:
        threading.Thread(target=self._loop, name="envd-supervisor", daemon=True).start()
        threading.Thread(target=self._follow, name="envd-supervisor-events", daemon=True).start()

    def wake(self) -> None:
        self._wake.set()

    def _follow(self) -> None:
        while not self.stop.is_set():
            try:
                for ev in self.engine.stream_events(self.project):
                    action = str(ev.get("Action") or ev.get("status") or "")
                    if action.startswith(_WAKE_ON):
                        self._wake.set()
                    if self.stop.is_set():
                        return
            except EnvdError:
                pass  # the engine is away; the tick keeps looking meanwhile
            if self.stop.wait(TICK):
                return

    def _loop(self) -> None:
        said = False
        tick = TICK
        while not self.stop.is_set():
            wait = tick
            if self._due:
                wait = max(0.0, min(tick, min(self._due.values()) - self.now()))
            self._wake.wait(wait)
            self._wake.clear()
            if self.stop.is_set():
                return
            try:
                cpu = time.thread_time()
                self.check()
                tick = self.next_tick(time.thread_time() - cpu)
                if not said and self.desired() is not None:
                    said = True
                    self._started()
            except (EngineError, LockBusy):
                pass  # transient: the next wake looks again
            except Exception:  # a bug must not end supervision: log it, go on
                self.log.exception("supervisor.crash")

    def next_tick(self, look_cpu: float) -> float:
        """Seconds until the safety net's next look, after one that cost ``look_cpu``."""
        if not self.watching:
            return SAFETY_CAP
        return min(SAFETY_CAP, max(TICK, look_cpu * SAFETY_SHARE))

    # ------------------------------------------------------------------ one look
    def check(self) -> None:
        desired = self.desired()
        if desired is None:
            return
        stopped = self.stopped()
        containers = [c for c in self._containers(desired) if c.service not in stopped]
        self._heal_all(desired, containers)
        self._confirm_healed(containers)
        self._restart_dependents(desired)
        self.watching = bool(
            self._healing
            or self._due
            or restart_watched(desired)
            or any(c.health for c in containers)
        )

    def _started(self) -> None:
        """Say once, after the first look, what the heal records restored from .envd/ hold."""
        kept = self.store.all()
        flapping = sorted(n for n, r in kept.items() if r.flapping)
        counts = ", ".join(f"{n} {r.total}" for n, r in sorted(kept.items()) if r.total)
        message = "supervising: " + (
            "; ".join(
                filter(
                    None,
                    [
                        f"{', '.join(flapping)} flapping (not healed)" if flapping else "",
                        f"heals so far: {counts}" if counts else "",
                    ],
                )
            )
            or "no heal records"
        )
        self._publish("supervise", "project", message, "info")
        self.log.info("supervisor", kind="supervise", message=message)

    def reset(self, services: Iterable[str]) -> None:
        """Forget heal windows and flap marks (`envd up --rerun`)."""
        for name in services:
            self.store.put(name, reset(self.store.get(name)))
            self._due.pop(name, None)

    def heal_report(self, desired: DesiredProject) -> dict[str, dict[str, Any]]:
        """Per service: heal counts and flap state, for `envd status`."""
        now = self.now()
        out: dict[str, dict[str, Any]] = {}
        for name, svc in desired.services.items():
            r = self.store.get(name)
            out[name] = {
                "enabled": svc.heal.enabled,
                "heals": r.total,
                "recent_heals": len(r.recent(svc.heal, now)),
                "last_heal": r.heals[-1] if r.heals else None,
                "flapping": r.flapping,
                "flapping_since": r.flapping_since,
            }
        return out

    def _containers(self, desired: DesiredProject) -> list[ObservedContainer]:
        return [
            c
            for c in self.engine.list_containers(desired.project)
            if c.labels.get(labels.ONE_OFF) != "1" and c.service in desired.services
        ]

    # ------------------------------------------------------------------ heal
    def _heal_all(self, desired: DesiredProject, containers: list[ObservedContainer]) -> None:
        unhealthy = {c.id for c in containers if c.status == "running" and c.health == "unhealthy"}
        for cid in list(self._unhealthy_since):
            if cid not in unhealthy:
                del self._unhealthy_since[cid]
        live: dict[str, set[str]] = {}
        for c in containers:
            live.setdefault(c.service, set()).add(c.id)
        for name, ids in live.items():
            # Containers replaced since (a recreate, `down` + `up`): their record starts afresh.
            self.store.put(name, current(self.store.get(name), frozenset(ids)))
        for c in containers:
            svc = desired.services[c.service]
            record = self.store.get(svc.name)
            if c.id not in unhealthy:
                continue
            now = self.now()
            self._unhealthy_since.setdefault(c.id, now)
            decision = decide(svc.heal, record, now)
            if decision.action == "off":
                if c.id not in self._said_off:
                    self._said_off.add(c.id)
                    self._event("heal", c, decision.reason, "info")
            elif decision.action == "wait":
                if svc.name not in self._due:
                    self._event("heal", c, decision.reason, "waiting")
                self._due[svc.name] = decision.due
            elif decision.action == "flap":
                self._due.pop(svc.name, None)
                self.store.put(svc.name, flapped(record, now, c.id))
                logs = self._last_logs(desired, c.id)
                self._event(
                    "flapping",
                    c,
                    decision.reason,
                    "error",
                    heals=record.total,
                    logs=logs,
                )
            elif decision.action == "heal":
                self._due.pop(svc.name, None)
                self._heal(desired, svc, c, decision.reason)

    def _heal(
        self, desired: DesiredProject, svc: DesiredService, c: ObservedContainer, reason: str
    ) -> None:
        since = self._unhealthy_since.get(c.id, self.now())
        with self._locked(desired, "envd daemon (heal)"):
            try:
                state = self.engine.container_state(c.id)
            except NotFound:
                return  # a pass replaced it meanwhile
            if state.status != "running" or state.health != "unhealthy":
                return
            started = time.monotonic()
            self._event("heal", c, reason, "working")
            # The engine stops with the container's own stop signal; the grace is the spec's.
            self.engine.stop_container(c.id, svc.template.stop_timeout)
            self.engine.start_container(c.id)
            seconds = round(time.monotonic() - started, 3)
        record = healed(self.store.get(svc.name), svc.heal, self.now(), c.id)
        self.store.put(svc.name, record)
        self._healing[c.id] = since
        self._event(
            "heal",
            c,
            f"restarted in {seconds:.1f}s (heal {record.total}); waiting for it to be healthy",
            "done",
            seconds=seconds,
            heals=record.total,
        )

    def _confirm_healed(self, containers: list[ObservedContainer]) -> None:
        by_id = {c.id: c for c in containers}
        for cid, since in list(self._healing.items()):
            c = by_id.get(cid)
            if c is None or c.status != "running":
                del self._healing[cid]
                continue
            if c.health == "healthy":
                del self._healing[cid]
                seconds = round(self.now() - since, 3)
                self._event(
                    "healed",
                    c,
                    f"{seconds:.1f}s after it was seen unhealthy",
                    "done",
                    seconds=seconds,
                )

    def _last_logs(self, desired: DesiredProject, container_id: str) -> list[str]:
        try:
            lines = self.engine.container_logs(container_id, tail=LOG_LINES)
        except EnvdError:
            return []
        return redact(desired, lines)

    # ------------------------------------------------------------------ dependents
    def _runs(self, desired: DesiredProject) -> dict[str, ServiceRun]:
        watched = restart_watched(desired)
        if not watched:
            return {}
        states: dict[str, list[ContainerState]] = {}
        for c in self._containers(desired):
            if c.service not in watched:
                continue
            if not c.name.startswith(f"{desired.project}-{c.service}-"):
                continue
            try:
                states.setdefault(c.service, []).append(self.engine.container_state(c.id))
            except NotFound:
                continue
        return {name: service_run(desired.services[name], states.get(name, [])) for name in watched}

    def _restart_dependents(self, desired: DesiredProject) -> None:
        if not restart_watched(desired):
            return
        runs = self._runs(desired)
        stopped = self.stopped()
        todo = [
            (s, deps)
            for s, deps in dependents_to_restart(desired, runs)
            if _key(s, deps, runs) not in self._restarted and s not in stopped
        ]
        if not todo:
            return
        with self._locked(desired, "envd daemon (restart dependents)"):
            # Again under the lock: a pass may have recreated them meanwhile.
            runs = self._runs(desired)
            for service, deps in dependents_to_restart(desired, runs):
                key = _key(service, deps, runs)
                if key in self._restarted or service in stopped:
                    continue
                self._restarted.add(key)
                self._restart(desired, desired.services[service], deps)

    def _restart(self, desired: DesiredProject, svc: DesiredService, deps: list[str]) -> None:
        started = time.monotonic()
        why = f"{', '.join(deps)} restarted (depends_on.restart)"
        self._publish("restart-dependent", f"service {svc.name}", why, "working", service=svc.name)
        for c in self._containers(desired):
            if c.service != svc.name or not c.name.startswith(f"{desired.project}-{svc.name}-"):
                continue
            try:
                if c.status == "running":
                    self.engine.stop_container(c.id, svc.template.stop_timeout)
                self.engine.start_container(c.id)
            except NotFound:
                continue
            except EngineError as exc:
                if exc.exit_code == 3:
                    raise
                self._publish(
                    "restart-dependent", f"container {c.name}", str(exc), "error", service=svc.name
                )
                return
        seconds = round(time.monotonic() - started, 3)
        self._publish(
            "restart-dependent",
            f"service {svc.name}",
            f"restarted in {seconds:.1f}s: {why}",
            "done",
            service=svc.name,
            seconds=seconds,
            dependencies=deps,
        )
        self.log.info("supervisor", kind="restart-dependent", service=svc.name, deps=deps)

    def _locked(self, desired: DesiredProject, command: str) -> AbstractContextManager[None]:
        return converging(
            desired.project, command, cancelled=self.stop.is_set, directory=self.lock_dir
        )

    # ------------------------------------------------------------------ events
    def _event(
        self, kind: str, c: ObservedContainer, message: str, phase: Phase, **extra: object
    ) -> None:
        self._publish(kind, f"container {c.name}", message, phase, service=c.service, **extra)
        fields = {k: v for k, v in extra.items() if k != "logs"}  # logs stay out of the file
        self.log.info("supervisor", kind=kind, container=c.name, message=message, **fields)


def service_run(svc: DesiredService, states: list[ContainerState]) -> ServiceRun:
    """What the dependents rule needs of one service's containers."""
    starts = [s.started_at for s in states if s.started_at is not None]
    enough = len(states) >= svc.replicas
    return ServiceRun(
        first_start=min(starts) if starts else None,
        last_start=max(starts) if starts else None,
        satisfied={
            "started": enough and all(s.status == "running" for s in states),
            "healthy": enough
            and all(s.status == "running" and s.health == "healthy" for s in states),
            "completed": enough and all(s.status == "exited" and s.exit_code == 0 for s in states),
        },
    )


def _key(service: str, deps: list[str], runs: dict[str, ServiceRun]) -> tuple[str, float]:
    return service, max((runs[d].last_start or 0.0) for d in deps)
