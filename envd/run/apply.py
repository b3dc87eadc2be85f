"""Execute a plan against an engine, in dependency order, in parallel.

``apply`` decides nothing: the plan says what to do. It owns *when*: a
service's containers are touched only once each of its dependencies meets its
``depends_on`` condition (started / healthy / completed), independent services
proceed in parallel on a bounded pool, and — when asked — it waits until every
service is running and healthy (or completed) and reports the ones that are not.

A recreate sets the old container aside and makes its successor beside it
(``envd.run.recreate``), handing over its anonymous volumes as Compose does
(``envd.run.volume_handover``); a crash between any two steps leaves a state
the next plan repairs (a stopped stale container is recreated, a missing one
created, a created one started, one set aside removed). Only ``down -v``
deletes anonymous volumes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait

from envd.core.desired import DesiredProject
from envd.core.observed import Observed
from envd.core.plan import ONESHOT_DONE, ONESHOT_FAILED, Action, Plan
from envd.engine.base import Engine
from envd.run import hooks
from envd.run.bind_dirs import create_bind_dirs
from envd.run.engine_wake import Waits
from envd.run.readiness import (
    CONVERGED,
    CONVERGING,
    FAILED,
    PENDING,
    READY,
    ServiceProgress,
    condition_met,
    crashed,
    settle,
    timeout_reason,
)
from envd.run.recreate import Recreates, create_container
from envd.run.resources import RESOURCE_KINDS, apply_resource
from envd.run.teardown import stop_and_remove
from envd.run.volume_handover import hand_over_volumes
from envd.values import labels
from envd.values.errors import EngineError, EnvironmentFailed, ServiceFailure
from envd.values.events import Clock, Emit, Event, Phase, SystemClock, discard
from envd.values.types import (
    ContainerCreate,
    ObservedContainer,
    ObservedImage,
)

# Called with (service, container id) right after envd started a container,
# before its post_start hooks: the daemon's first sync of watch targets.
AfterStart = Callable[[str, str], None]


class Applier:
    def __init__(
        self,
        engine: Engine,
        desired: DesiredProject,
        emit: Emit = discard,
        clock: Clock | None = None,
        # Creating and starting containers is the engine's work, not ours: keep
        # enough requests in flight that a busy dockerd stays busy with them
        # (Compose allows 64). At 50 services on a loaded 2-core machine, 32
        # instead of 8 made a cold `up` 10-15 % faster (docs/benchmarks.md).
        workers: int = 32,
        poll_interval: float = 0.1,
        held: frozenset[str] = frozenset(),
        after_start: AfterStart | None = None,
        events: bool = False,
    ) -> None:
        """``held``: services left as they are and not judged (stopped on purpose,
        or waiting for a secret only `envd up` can read)."""
        self.held = held
        self.after_start = after_start
        self.engine = engine
        self.desired = desired
        self.emit = emit
        self.clock = clock or SystemClock()
        self.workers = workers
        self.poll_interval = poll_interval
        # Wait for readiness on the engine's events (envd.run.engine_wake), not a timer.
        self._waits = Waits(engine, desired.project, self.clock, poll_interval, events)
        self._images: Mapping[str, ObservedImage | None] = {}
        self._recreates = Recreates(engine, self.emit)

    # ------------------------------------------------------------------ phases
    def apply(
        self,
        plan: Plan,
        observed: Observed,
        wait_ready: bool = True,
        timeout: float | None = None,
    ) -> dict[str, ServiceProgress]:
        """Run the plan; raise EnvironmentFailed listing services that did not converge."""
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        self._images = observed.images
        with (
            ThreadPoolExecutor(max_workers=self.workers) as pool,
            self._recreates.side_pool(self.workers),
        ):
            self._parallel(pool, [a for a in plan.actions if a.kind in RESOURCE_KINDS])
            self._check_external()
            # Missing bind sources become directories, as with Compose (before
            # any container that mounts one is created or started).
            create_bind_dirs(self.desired, self.emit)
            self._parallel(pool, [a for a in plan.actions if a.kind == "remove"])
            try:
                progress = self._converge(pool, plan, observed, wait_ready, deadline)
            finally:
                self._waits.close()
            gone = self._recreates.removed_aside()
            self._parallel(
                pool, [a for a in plan.actions if a.kind == "remove-network"], tolerate=True
            )
        failures = gone + [
            ServiceFailure(p.name, p.error or "failed", _first_container(p))
            for p in progress.values()
            if p.settled == FAILED
        ]
        if failures:
            raise EnvironmentFailed(sorted(failures, key=lambda f: f.service))
        return progress

    def _check_external(self) -> None:
        for net in self.desired.networks.values():
            if net.external and not self.engine.network_exists(net.name):
                raise EnvironmentFailed(
                    [
                        ServiceFailure(
                            "-", f"needs external network {net.name!r}, which does not exist"
                        )
                    ]
                )
        for vol in self.desired.volumes.values():
            if vol.external and not self.engine.volume_exists(vol.name):
                users = sorted(
                    s.name
                    for s in self.desired.services.values()
                    if any(m.source == vol.name for m in s.template.mounts)
                )
                if users:
                    raise EnvironmentFailed(
                        [
                            ServiceFailure(
                                users[0],
                                f"needs external volume {vol.name!r}, which does not exist",
                            )
                        ]
                    )

    def _parallel(
        self, pool: ThreadPoolExecutor, actions: list[Action], tolerate: bool = False
    ) -> None:
        if not actions:
            return
        futures = [pool.submit(self._run, a) for a in actions]
        errors: list[tuple[Action, EngineError]] = []
        for fut, action in zip(futures, actions, strict=True):
            try:
                fut.result()
            except EngineError as exc:
                if exc.exit_code == 3 or not tolerate:
                    errors.append((action, exc))
        for _, problem in errors:
            if problem.exit_code == 3:
                raise problem
        if errors:
            first, problem = errors[0]
            raise EnvironmentFailed(
                [
                    ServiceFailure(
                        first.service or "-", f"{first.kind} {first.resource} failed: {problem}"
                    )
                ]
            )

    # ------------------------------------------------------------------ one action
    def _run(self, action: Action) -> None:
        e = self.engine
        self.emit(Event(action.kind, action.resource, action.reason, "working", action.service))
        if action.kind in RESOURCE_KINDS:
            apply_resource(e, self.desired, action)
        elif action.kind == "remove-network":
            e.remove_network(action.name)
        elif action.kind == "remove":
            self._pre_stop(action)
            self._stop_remove(action.container_id, action.stop_timeout)
        elif action.kind == "start":
            e.start_container(action.container_id)
            self._started(action, action.container_id)
        elif action.kind in ("create", "recreate"):
            assert action.container is not None
            spec = action.container
            if action.kind == "recreate":
                spec = self._hand_over_volumes(action, spec)
                self._pre_stop(action)
                cid = self._recreates.replace(action, spec)
            else:
                cid = create_container(e, spec)
            e.start_container(cid)
            self._started(action, cid)
        elif action.kind == "ok":
            return
        else:
            raise AssertionError(f"apply cannot execute a {action.kind!r} action")
        self.emit(Event(action.kind, action.resource, "done", "done", action.service))

    # ------------------------------------------------------------------ lifecycle hooks
    def _started(self, action: Action, container_id: str) -> None:
        """After a start: the daemon's first sync, then the service's post_start hooks."""
        svc = self.desired.services.get(action.service)
        if svc is None:
            return
        if self.after_start is not None:
            self.after_start(svc.name, container_id)
        hooks.post_start(
            self.engine,
            container_id,
            svc.post_start,
            action.resource,
            svc.name,
            self.emit,
            self.clock,
            hooks.secret_values(svc),
        )

    def _pre_stop(self, action: Action) -> None:
        svc = self.desired.services.get(action.service)
        if svc is not None and svc.pre_stop:
            hooks.pre_stop(
                self.engine,
                action.container_id,
                svc.pre_stop,
                action.resource,
                svc.name,
                self.emit,
                self.clock,
                hooks.secret_values(svc),
            )

    def _stop_remove(self, container_id: str, timeout: int | None) -> None:
        # Anonymous volumes stay, as with Compose: a recreate hands them over,
        # and a container scaled away or left out of the spec leaves them
        # behind rather than deleting data. Only `down -v` removes them. (The
        # engine removes a read-only service's secret volume regardless.)
        stop_and_remove(self.engine, container_id, timeout, volumes=False)

    def _hand_over_volumes(self, action: Action, spec: ContainerCreate) -> ContainerCreate:
        svc = self.desired.services[action.service]
        handed, where = hand_over_volumes(
            self.engine, self.desired, self._images.get(svc.image_ref), action.container_id, spec
        )
        if where:
            self.emit(
                Event(
                    action.kind,
                    action.resource,
                    f"keeping anonymous volume(s) at {where}",
                    "working",
                    action.service,
                )
            )
        return handed

    # ------------------------------------------------------------------ scheduling
    def _converge(
        self,
        pool: ThreadPoolExecutor,
        plan: Plan,
        observed: Observed,
        wait_ready: bool,
        deadline: float | None,
    ) -> dict[str, ServiceProgress]:
        services = self.desired.services
        progress = {name: ServiceProgress(name) for name in services}
        by_service = observed.by_service()
        # The remove phase took these away already (a leftover set aside by an
        # interrupted recreate among them): they say nothing about the service.
        removed = {a.container_id for a in plan.actions if a.kind == "remove"}
        for name, p in progress.items():
            p.containers = [c for c in by_service.get(name, []) if c.id not in removed]
            if name in self.held:
                p.state, p.settled = CONVERGED, READY
        running: dict[Future[None], str] = {}
        outstanding: dict[str, int] = {}
        if any(a.kind == "pending" for a in plan.actions):
            raise AssertionError("plan still has pending image actions; plan again after images")
        # Grouped once: plan.for_service scans every action (O(n²) at 500 services).
        of_service: dict[str, list[Action]] = {}
        for a in plan.actions:
            of_service.setdefault(a.service, []).append(a)

        def deps_state(name: str) -> tuple[bool, str]:
            """(all satisfied, error) for a service's dependencies."""
            for dep, cond in services[name].depends_on.items():
                if dep not in progress:
                    if cond.required:
                        return False, f"dependency {dep!r} is not active (check profiles)"
                    continue
                dp = progress[dep]
                if dp.settled == FAILED:
                    return False, f"dependency {dep!r} failed: {dp.error}"
                ok, err = condition_met(dp, cond.condition, services[dep].replicas)
                if err:
                    return False, f"dependency {dep!r} {err}"
                if not ok:
                    return False, ""
            return True, ""

        last_refresh = [float("-inf")]

        def refresh() -> None:
            last_refresh[0] = self.clock.monotonic()
            current = self.engine.list_containers(self.desired.project)
            grouped: dict[str, list[ObservedContainer]] = {}
            for c in current:
                if c.labels.get(labels.ONE_OFF) == "1":
                    continue
                grouped.setdefault(c.service, []).append(c)
            for name, p in progress.items():
                if p.state == CONVERGED:
                    fixed = services[name].fixed_name  # the spec's container_name
                    p.containers = [
                        c
                        for c in grouped.get(name, [])
                        if c.name == fixed
                        or (not fixed and c.name.startswith(f"{self.desired.project}-{name}-"))
                    ]

        while True:
            # Start every service whose dependencies are satisfied.
            for name, p in progress.items():
                if p.state != PENDING:
                    continue
                ok, err = deps_state(name)
                if err:
                    p.state, p.settled, p.error = CONVERGED, FAILED, err
                    self.emit(Event("failed", f"service {name}", err, "error", name))
                    continue
                if not ok:
                    continue
                actions = [
                    a for a in of_service.get(name, ()) if a.kind in ("create", "recreate", "start")
                ]
                p.state = CONVERGING
                outstanding[name] = len(actions)
                if not actions:
                    p.state = CONVERGED
                    self._skipped_oneshot(of_service.get(name, []))
                if actions:
                    self._waits.starting()
                for a in actions:
                    running[pool.submit(self._run, a)] = name
            # Settle services whose containers reached a final state.
            for name, p in progress.items():
                if p.state == CONVERGED and p.settled == "":
                    settled, err = settle(p, services[name].replicas, services[name].restart)
                    if settled == READY and self.desired.oneshot(name):
                        settled = ""  # a one-shot still running: it settles when it exits
                    if settled:
                        p.settled, p.error = settled, err
                        phase: Phase = "error" if settled == FAILED else "done"
                        self.emit(Event(settled, f"service {name}", err or settled, phase, name))
                elif (
                    p.settled == READY and services[name].restart == "no" and name not in self.held
                ):
                    # "Ready" when last seen running; it may have exited since.
                    why = crashed(p)
                    if why:
                        p.settled, p.error = FAILED, why
                        self.emit(Event(FAILED, f"service {name}", why, "error", name))
            unsettled = [n for n, p in progress.items() if p.settled == ""]
            blocking = [n for n in unsettled if wait_ready or self._is_dependency(n, progress)]
            if not running and not blocking and all(p.state != PENDING for p in progress.values()):
                break
            if deadline is not None and self.clock.monotonic() >= deadline:
                podman = self._engine_is_podman()
                for name in unsettled:
                    p = progress[name]
                    p.settled = FAILED
                    p.error = p.error or timeout_reason(p, podman)
                    self.emit(Event("timeout", f"service {name}", p.error, "error", name))
                for fut in running:
                    fut.cancel()
                break
            if running:
                done, _ = wait(list(running), timeout=self.poll_interval)
                for fut in done:
                    name = running.pop(fut)
                    outstanding[name] -= 1
                    try:
                        fut.result()
                    except EngineError as exc:
                        if exc.exit_code == 3:
                            raise
                        progress[name].settled = FAILED
                        progress[name].error = str(exc)
                        self.emit(Event("failed", f"service {name}", str(exc), "error", name))
                    if outstanding[name] == 0:
                        progress[name].state = CONVERGED
                if done:
                    refresh()
                continue
            self._waits.sleep(deadline)
            refresh()
        if wait_ready:
            # A service seen running may have exited since: report it. An
            # observation taken within the last few milliseconds (the loop's
            # own, after the last start returned) is as good as a new one.
            if self.clock.monotonic() - last_refresh[0] >= self.poll_interval / 2:
                refresh()
            for name, p in progress.items():
                why = crashed(p) if services[name].restart == "no" else ""
                if p.settled == READY and why:
                    p.settled, p.error = FAILED, why
                    self.emit(Event(FAILED, f"service {name}", why, "error", name))
        return progress

    def _skipped_oneshot(self, actions: list[Action]) -> None:
        """Say that a finished one-shot is left alone, and why (supervisor)."""
        for a in actions:
            if a.kind == "ok" and a.reason.startswith((ONESHOT_DONE, ONESHOT_FAILED)):
                why = (
                    "completed (exit 0) and its inputs are unchanged: not run again"
                    if a.reason == ONESHOT_DONE
                    else a.reason
                )
                service = a.service
                self.emit(
                    Event("skipped", f"service {service}", f"one-shot {why}", "info", service)
                )
                return

    def _engine_is_podman(self) -> bool:
        """Whether the engine is Podman (its timeouts on health then say why)."""
        try:
            return self.engine.describe().get("name") == "Podman"
        except EngineError:
            return False

    def _is_dependency(self, name: str, progress: Mapping[str, ServiceProgress]) -> bool:
        return any(
            name in self.desired.services[other].depends_on and p.state == PENDING
            for other, p in progress.items()
        )


def _first_container(p: ServiceProgress) -> str:
    return p.containers[0].id if p.containers else ""
