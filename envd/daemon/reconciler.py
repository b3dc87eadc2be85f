"""The level-triggered reconcile loop.

Triggers (a file change, a Docker event, SIGHUP, a periodic resync, a reload
request) only mark the project dirty and say why; they never decide what to
do. Each pass re-reads the spec, observes the engine, plans and applies. A bad
spec is terminal until the spec changes: the pass records the error and the
last good environment keeps running untouched. Engine trouble is transient:
the pass is retried with exponential back-off, at most every
``ENGINE_RETRY_CAP`` s while the engine is unreachable, so its return is
noticed within seconds. Stopping dockerd stops the containers; after such an
outage the first pass that reaches the engine starts again the containers it
had left running (the engine stopped them, not their own exit), and then
converges as usual.

The spec is read with the process environment of the last ``envd up`` (sent
with its reload request), so every ``up`` uses its shell's variables and
``env`` secrets; until one sends an environment, the daemon's own. That
environment stays in memory: it is never logged, published or reported.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from envd.core.desired import DesiredProject
from envd.daemon.actions import ServiceActions
from envd.daemon.engine_return import running_ids, running_in, start_stopped_by_engine
from envd.daemon.hub import EventHub
from envd.daemon.log import Logger
from envd.daemon.status_report import PlanMemo, StatusHook, daemon_status
from envd.daemon.timing import Backoff, Debouncer
from envd.engine.base import Engine
from envd.inputs.prepare import Target, prepare
from envd.inputs.secrets import CommandValue, CommandValues
from envd.run.apply import AfterStart
from envd.run.converge import converge, plan_project
from envd.run.project_lock import LockBusy, converging
from envd.spec.load import LoadedSpec
from envd.values import errors
from envd.values.errors import EngineError, EngineUnavailable, EnvironmentFailed, SpecError
from envd.values.events import Clock, Event, Phase, SystemClock

RESYNC_SECONDS = 60.0
# A periodic resync (a safety net: files and engine events trigger passes)
# may cost at most 1/RESYNC_SHARE of a core: at 500 services a no-op pass
# costs ~0.15 s CPU (seen), so its resync comes every ~150 s, not 60.
RESYNC_SHARE = 1000.0
# The longest wait between passes while the engine is unreachable.
ENGINE_RETRY_CAP = 2.0

# How a pass ended ("none": no pass yet); `envd status` and the pass-done event carry it.
PassResult = Literal[
    "none", "ok", "failed", "invalid-spec", "engine-unavailable", "engine-error", "internal-error"
]
DesiredListener = Callable[[DesiredProject], None]
# Called inside the converge lock after each pass that reached apply, with
# the pass's reasons: the level-triggered sync of watch targets.
ConvergedListener = Callable[[DesiredProject, str], None]


@dataclass
class PassRequest:
    wait_timeout: float | None = None
    restart_exited: bool = False
    # The environment the pass reads the spec with (variables, `env` secrets);
    # None: the reconciler's current one.
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    # (action, service) asked for by `envd restart|stop|start` or the dashboard.
    actions: list[tuple[str, str]] = field(default_factory=list)
    # supervisor: services `envd up --rerun` asks to run again (recreated)
    rerun: frozenset[str] = frozenset()


# supervisor: what `envd status` adds per service (heal counts, one-shot results)


@dataclass
class DaemonState:
    generation: int = 0  # passes requested so far
    completed: int = 0  # the generation the last finished pass covered
    passes: int = 0
    last_reconcile: float | None = None  # wall time of the last finished pass
    last_result: PassResult = "none"
    last_error: str = ""
    last_error_at: float | None = None


class Reconciler:
    def __init__(
        self,
        target: Target,
        engine: Engine,
        hub: EventHub,
        log: Logger,
        clock: Clock | None = None,
        debouncer: Debouncer | None = None,
        resync: float = RESYNC_SECONDS,
    ) -> None:
        self.target = target
        self.engine = engine
        self.hub = hub
        self.log = log
        self.clock = clock or SystemClock()
        self.debounce = debouncer or Debouncer()
        self.backoff = Backoff()
        self.resync = resync
        self.state = DaemonState()
        self.desired: DesiredProject | None = None  # the last good desired state
        self.loaded: LoadedSpec | None = None
        self._cond = threading.Condition()
        self._reasons: list[str] = []
        self._request = PassRequest()
        self._environ: Mapping[str, str] | None = None  # from the last `envd up`
        # What the command secrets printed when the last `envd up` ran them:
        # the daemon runs no host command itself.
        self.commands = CommandValues()
        self._retry_at: float | None = None
        self._stopping = False
        self._listeners: list[DesiredListener] = []
        self.status_hooks: list[StatusHook] = []
        self.plans = PlanMemo()  # status reuses a plan whose inputs are unchanged
        self.rerun_hooks: list[Callable[[frozenset[str]], None]] = []
        # Each service's last settled state ("ready", "completed", "failed"):
        # a background pass reports only what changed, not fifty "ready" lines.
        self._settled: dict[str, str] = {}
        # Ids of the project's containers running after the last good pass, and
        # whether the engine went away since: then those that are now stopped
        # were stopped by the engine and are started again.
        self._running: frozenset[str] = frozenset()
        self._pass_cpu = 0.0  # CPU seconds of the last pass (this thread's)
        self._engine_lost = False
        # Level-triggered sync: after_start runs for each container a pass
        # starts (before its post_start hooks and readiness), the converged
        # listeners after the pass (adoption, edits made while we were away).
        self.after_start: AfterStart | None = None
        self._converged: list[ConvergedListener] = []
        # Per-service actions and the services stopped on purpose (main.py
        # gives it the state directory, so the latter survive a restart).
        self.actions = ServiceActions()

    # ------------------------------------------------------------------ triggers
    def trigger(
        self,
        reason: str,
        wait_timeout: float | None = None,
        restart_exited: bool = False,
        environ: Mapping[str, str] | None = None,
        commands: Mapping[str, CommandValue] | None = None,
        rerun: frozenset[str] = frozenset(),
    ) -> int:
        """Mark dirty; return the generation whose pass will cover this trigger.

        ``environ`` (from `envd up`) replaces the environment the spec is read
        with, for the pass covering this trigger and every later one;
        ``commands`` (from `envd up` too) what its command secrets printed.
        """
        with self._cond:
            if environ is not None:
                self._environ = dict(environ)
            if commands is not None:
                self.commands.provide(commands)
            if environ is not None:
                self.actions.start_all()  # `envd up` starts what was stopped, as Compose's does
            self.state.generation += 1
            self._reasons.append(reason)
            if wait_timeout is not None:
                self._request.wait_timeout = max(self._request.wait_timeout or 0, wait_timeout)
            self._request.restart_exited |= restart_exited
            self._request.rerun |= rerun
            self.debounce.mark(self.clock.monotonic())
            self._cond.notify_all()
            return self.state.generation

    def request_action(self, action: str, service: str) -> int:
        """Queue ``action`` on ``service`` for the next pass; return its generation."""
        with self._cond:
            self._request.actions.append((action, service))
            if action == "start":
                self._request.restart_exited = True
        return self.trigger(f"{action} {service} requested")

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment passes read the spec with: the last `envd up`'s, else ours."""
        with self._cond:
            return self._environ if self._environ is not None else os.environ

    def engine_lost(self, reason: str) -> None:
        """The engine went away (its event stream broke): the next pass that reaches it heals."""
        with self._cond:
            self._engine_lost = True
        self.trigger(reason)

    def on_desired(self, listener: DesiredListener) -> None:
        """Call ``listener(desired)`` after each pass that loaded a good spec."""
        self._listeners.append(listener)

    def on_converged(self, listener: ConvergedListener) -> None:
        """Call ``listener(desired, reason)`` after each pass's apply, still under its lock."""
        self._converged.append(listener)

    def _after_converge(self, desired: DesiredProject, reasons: list[str]) -> None:
        """Run the converged listeners; the pass is over before `envd up` is answered."""
        reason = "; ".join(sorted(set(reasons)))[:200] or "pass"
        for listener in self._converged:
            try:
                listener(desired, reason)
            except EngineUnavailable:
                raise
            except EngineError as exc:  # reported by the listener; the pass stands
                self.log.warning("converged.listener", error=str(exc))

    # ------------------------------------------------------------------ loop
    def next_pass(self) -> tuple[int, list[str], PassRequest] | None:
        """Block until a pass is due; None when stopping."""
        with self._cond:
            while not self._stopping:
                now = self.clock.monotonic()
                if self.debounce.pending:
                    wait = self.debounce.remaining(now)
                elif self._retry_at is not None:
                    wait = max(0.0, self._retry_at - now)
                    if wait == 0:
                        self._reasons.append("retry after a transient failure")
                else:
                    resync = self.resync
                    if resync > 0:
                        resync = max(resync, self._pass_cpu * RESYNC_SHARE)
                    signalled = self._cond.wait(resync)
                    if not signalled and not self._stopping and not self.debounce.pending:
                        self.state.generation += 1
                        self._reasons.append("periodic resync")
                        self.debounce.mark(self.clock.monotonic())
                    continue
                if wait <= 0:
                    generation = self.state.generation
                    reasons, self._reasons = self._reasons, []
                    request, self._request = self._request, PassRequest()
                    request.environ = self._environ
                    self.debounce.reset()
                    self._retry_at = None
                    return generation, reasons, request
                self._cond.wait(wait)
        return None

    def run(self) -> None:
        while True:
            due = self.next_pass()
            if due is None:
                return
            self.run_pass(*due)

    def run_pass(self, generation: int, reasons: list[str], request: PassRequest) -> None:
        rid = uuid.uuid4().hex[:12]
        log = self.log.bind(reconcile_id=rid)
        started = time.monotonic()
        cpu = time.thread_time()
        self.publish(
            "reconcile",
            "project",
            "; ".join(sorted(set(reasons)))[:500],
            "working",
            reconcile_id=rid,
            generation=generation,
        )
        log.info("reconcile.start", reasons=sorted(set(reasons)), generation=generation)
        result: PassResult = "ok"
        error = ""
        try:
            environ = request.environ if request.environ is not None else self.environ
            loaded, desired = prepare(self.target, environ, acting=True, commands=self.commands)
            unread = self._unread_commands(loaded)
            self.loaded, self.desired = loaded, desired
            for listener in self._listeners:
                listener(desired)

            # A client waiting on this pass (`envd up`) is shown every
            # service's state; passes nobody waits for only say what changed.
            quiet_settled = request.wait_timeout is None

            def emit(ev: Event) -> None:
                if ev.kind == "skipped" and ev.service:
                    # A finished one-shot left alone: said to `envd up`, and once otherwise.
                    if quiet_settled and self._settled.get(ev.service) in ("completed", "failed"):
                        return
                    log.info("action", kind=ev.kind, resource=ev.resource, message=ev.message)
                elif ev.kind in ("ready", "completed", "failed", "timeout") and ev.service:
                    before = self._settled.get(ev.service)
                    self._settled[ev.service] = ev.kind
                    if quiet_settled and before == ev.kind and ev.kind != "failed":
                        return
                elif ev.phase == "working" and ev.service:
                    self._settled.pop(ev.service, None)
                self.publish(
                    ev.kind, ev.resource, ev.message, ev.phase, service=ev.service, reconcile_id=rid
                )
                if ev.phase in ("done", "error"):
                    log.info(
                        "action",
                        kind=ev.kind,
                        resource=ev.resource,
                        phase=ev.phase,
                        message=ev.message,
                    )

            # One converge at a time: a CLI's `up --once`, `down`, `run` go first, then we re-plan.
            with converging(
                desired.project,
                "envd daemon",
                on_wait=lambda line: self.publish("lock", "project", line, "working"),
                cancelled=lambda: self._stopping,
            ):
                if self._engine_lost:
                    self._start_stopped_by_engine(desired)
                recreate = (
                    self.actions.run(request.actions, self.engine, desired, emit)
                    if request.actions
                    else frozenset()
                )
                rerun = self._rerun(desired, request.rerun)
                try:
                    _, progress = converge(
                        self.engine,
                        desired,
                        emit,
                        wait_ready=request.wait_timeout is not None,
                        timeout=request.wait_timeout if request.wait_timeout is not None else 120.0,
                        clock=self.clock,
                        restart_exited=request.restart_exited,
                        unread=unread,
                        force_recreate=recreate | rerun,
                        stopped=self.actions.stopped,
                        after_start=self.after_start,
                    )
                except EnvironmentFailed:
                    # The services that did converge still get their files.
                    self._after_converge(desired, reasons)
                    raise
                self._after_converge(desired, reasons)
            # The pass's own last observation, not another list: O(changed) per pass.
            self._running = running_in(self.engine, progress)
            self.backoff.succeeded()
        except (SpecError, errors.UsageError) as exc:
            # Terminal until the spec changes: keep what runs, say why (a UsageError:
            # e.g. limits this engine would drop, envd.run.engine_limits).
            result, error = "invalid-spec", str(exc)
            self.backoff.succeeded()
        except (EnvironmentFailed, LockBusy) as exc:
            # May be transient (a pull failed, a port was busy): retry with back-off.
            # A retry re-plans only; it never restarts what exited under restart = "no".
            result, error = "failed", str(exc)
            try:
                self._running = self._running_ids(self.desired.project if self.desired else "")
            except EngineError:
                pass  # the next pass that reaches the engine records them
            delay = self.backoff.failed()
            with self._cond:
                self._retry_at = self.clock.monotonic() + delay
        except EngineError as exc:  # EngineUnavailable among them
            result = "engine-unavailable" if isinstance(exc, EngineUnavailable) else "engine-error"
            error = str(exc)
            delay = self.backoff.failed()
            with self._cond:
                if isinstance(exc, EngineUnavailable):
                    delay = min(delay, ENGINE_RETRY_CAP)
                    self._engine_lost = True
                    # The retry still owes what this pass was asked for (`envd up`
                    # or the daemon's start restart exited containers).
                    self._request.restart_exited |= request.restart_exited
                    self._request.rerun |= request.rerun
                self._retry_at = self.clock.monotonic() + delay
            error += f" (retrying in {delay:.1f}s)"
        except Exception as exc:  # a bug must not kill the daemon: log, back off, retry
            result, error = "internal-error", f"{type(exc).__name__}: {exc}"
            log.exception("reconcile.crash")
            delay = self.backoff.failed()
            with self._cond:
                self._retry_at = self.clock.monotonic() + delay
        elapsed = time.monotonic() - started
        self._pass_cpu = time.thread_time() - cpu
        with self._cond:
            self.state.completed = max(self.state.completed, generation)
            self.state.passes += 1
            self.state.last_reconcile = time.time()
            self.state.last_result = result
            if error:
                self.state.last_error, self.state.last_error_at = error, time.time()
            else:
                self.state.last_error = ""
        log.info("reconcile.done", result=result, error=error, seconds=round(elapsed, 3))
        self.publish(
            "pass-done",
            "project",
            error or result,
            "error" if error else "done",
            reconcile_id=rid,
            generation=generation,
            result=result,
            seconds=round(elapsed, 3),
        )

    def plan(self) -> dict[str, object]:
        """What a pass would do now (``GET /v1/plan``): read-only, no host command;
        command secrets are compared by the values the last `envd up` sent."""
        from envd.core.status import unchecked_secrets

        loaded, desired = prepare(self.target, self.environ, commands=self.commands)
        plan, _ = plan_project(self.engine, desired, restart_exited=False)
        return unchecked_secrets(plan, self._unread_commands(loaded)).to_json()

    def _unread_commands(self, loaded: LoadedSpec) -> dict[str, tuple[str, ...]]:
        from envd.inputs.consent import unread_commands

        return unread_commands(loaded, self.commands)

    def _rerun(self, desired: DesiredProject, asked: frozenset[str]) -> frozenset[str]:
        """The services of ``asked`` to recreate this pass; their heal records start afresh."""
        rerun = frozenset(n for n in asked if n in desired.services)
        if rerun:
            for hook in self.rerun_hooks:
                hook(rerun)
        return rerun

    def _running_ids(self, project: str) -> frozenset[str]:
        return running_ids(self.engine, project)

    def _start_stopped_by_engine(self, desired: DesiredProject) -> None:
        start_stopped_by_engine(self.engine, desired, self._running, self.publish)
        with self._cond:
            self._engine_lost = False

    def publish(
        self, kind: str, resource: str, message: str, phase: Phase, **extra: object
    ) -> None:
        self.hub.publish(
            {
                "kind": kind,
                "resource": resource,
                "message": message,
                "phase": phase,
                "time": time.time(),
                **extra,
            }
        )

    # ------------------------------------------------------------------ queries
    def status(self) -> dict[str, Any]:
        return daemon_status(
            self.state,
            self.engine,
            self.desired,
            self.actions.stopped,
            self.status_hooks,
            self.plans,
        )
