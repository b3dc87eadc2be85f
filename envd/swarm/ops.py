"""Swarm operations on the engine that are not a deploy: observing a project,
waiting for services to run their current spec, and ``down`` (``status`` is
``envd.swarm.status``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from envd.engine.swarm.base import SwarmEngine
from envd.run.retry import retry
from envd.swarm.mapping import (
    TARGET,
    TARGET_LABEL,
    NotSwarmManager,
    SwarmDesired,
    SwarmService,
    project_labels,
)
from envd.swarm.plan import (
    CONFIGS,
    SECRETS,
    ObservedVersioned,
    SwarmObserved,
    VersionedKind,
)
from envd.values.errors import (
    EnvironmentFailed,
    NotFound,
    ServiceFailure,
)
from envd.values.events import Clock, Emit, Event, SystemClock, discard
from envd.values.swarm_types import ObservedService, ObservedTask

# Swarm restarts a failed task after 5 s: two failures already say "keeps
# failing", and the deploy reports it within 15 s instead of waiting it out.
FAILED_TASKS_LIMIT = 2
# How long a task may wait with an error from the scheduler ("no suitable
# node (host-mode port already in use on 1 node)") before the deploy fails
# with that reason: a moment for a port or a node to free up, not the timeout.
STUCK_SECONDS = 5.0
UPDATE_FAILED = ("paused", "rollback_started", "rollback_completed", "rollback_paused")


def require_manager(engine: SwarmEngine) -> None:
    """Raise ``NotSwarmManager`` unless the engine manages an active swarm."""
    info = engine.swarm_info()
    if info.state == "active" and info.manager:
        return
    if info.state == "active":
        why = "it is a swarm worker; run envd against a manager node"
    elif info.state == "locked":
        why = "its swarm is locked; unlock it with `docker swarm unlock`"
    else:
        why = (
            f"swarm mode is {info.state}; start one with `docker swarm init`"
            " or point DOCKER_HOST at a manager"
        )
    raise NotSwarmManager(f"the Docker engine at {engine.host} is not a swarm manager: {why}")


def observe_swarm(engine: SwarmEngine, project: str) -> SwarmObserved:
    common = project_labels(project)
    return SwarmObserved(
        services=tuple(engine.list_services(common)),
        secrets=tuple(engine.list_secrets(common)),
        networks=tuple(engine.list_swarm_networks(common)),
        configs=tuple(engine.list_configs(common)),
    )


def remove_network(engine: SwarmEngine, name: str) -> None:
    try:
        engine.remove_network(name)
    except NotFound:
        pass


def remove_volume(engine: SwarmEngine, name: str) -> None:
    try:
        engine.remove_volume(name)
    except NotFound:
        pass


def service_state(
    svc: SwarmService,
    observed: ObservedService | None,
    tasks: list[ObservedTask],
    update_baseline: str | None = None,
) -> tuple[str, str]:
    """(state, detail) of one service from one observation: running, completed,
    converging or failed. Pure.

    ``update_baseline`` is when the service's last rolling update had started
    before this deploy touched it ("" for none): only an update that started
    since then is this deploy's, and only its failure fails the service. None:
    the deploy did not touch the service, whose update status is history.
    """
    if observed is None:
        return "converging", "not created yet"
    ours = update_baseline is not None and observed.update_started != update_baseline
    if ours and observed.update_state in UPDATE_FAILED:
        msg = observed.update_message or observed.update_state
        if observed.update_state.startswith("rollback"):
            return (
                "failed",
                f"failed its rolling update; swarm rolled it back to the previous spec ({msg})",
            )
        return "failed", f"failed its rolling update, which is paused ({msg})"
    mine = [t for t in tasks if t.service_id == observed.id]
    current = [t for t in mine if t.task_hash == svc.task_hash]
    stale = [t for t in mine if t.desired_state == "running" and t.task_hash != svc.task_hash]
    failed = [t for t in current if t.state in ("failed", "rejected")]
    replicas = svc.spec.replicas
    running = [t for t in current if t.desired_state == "running" and t.state == "running"]
    if replicas == 0:
        active = [t for t in mine if t.desired_state == "running"]
        return ("running", "scaled to 0") if not active else ("converging", "scaling down")
    updating = ours and observed.update_state not in ("", "completed")
    if len(running) >= replicas and not stale and not updating:
        return "running", f"{len(running)}/{replicas} tasks running"
    completed = [t for t in current if t.state == "complete"]
    if svc.spec.restart_condition == "none" and len(completed) >= replicas and not running:
        return "completed", "every task completed"
    if len(failed) >= FAILED_TASKS_LIMIT:
        last = max(failed, key=lambda t: t.timestamp)
        code = f" (exit code {last.exit_code})" if last.exit_code else ""
        return (
            "failed",
            f"had {len(failed)} tasks fail; the last: {last.error or last.message}{code}",
        )
    detail = f"{len(running)}/{replicas} tasks running"
    if stale:
        detail += f", {len(stale)} on the previous spec"
    if updating:
        detail += ", rolling update in progress"
    waiting = [t for t in current if t.desired_state == "running" and t.state != "running"]
    stuck = next((t for t in waiting if t.error), None)
    if stuck is not None:  # e.g. "no suitable node (host-mode port already in use on 1 node)"
        detail += f"; a task is {stuck.state}: {stuck.error}"
    elif failed:
        last = max(failed, key=lambda t: t.timestamp)
        detail += f"; last failure: {last.error or last.message}"
    return "converging", detail


STABLE_SECONDS = 2.0


def stuck_task(
    svc: SwarmService, observed: ObservedService | None, tasks: list[ObservedTask]
) -> ObservedTask | None:
    """A task of the current spec that should run but waits with an error from the engine. Pure."""
    if observed is None:
        return None
    return next(
        (
            t
            for t in tasks
            if t.service_id == observed.id
            and t.task_hash == svc.task_hash
            and t.desired_state == "running"
            and t.state not in ("running", "failed", "rejected", "complete")
            and t.error
        ),
        None,
    )


def _needs_watching(svc: SwarmService) -> bool:
    hc = svc.spec.container.healthcheck
    return hc is None or not hc.test or hc.test[0] == "NONE"


def _failed_tasks(
    svc: SwarmService, observed: ObservedService | None, tasks: list[ObservedTask]
) -> int:
    if observed is None:
        return 0
    return sum(
        1
        for t in tasks
        if t.service_id == observed.id
        and t.task_hash == svc.task_hash
        and t.state in ("failed", "rejected")
    )


def wait_converged(
    engine: SwarmEngine,
    desired: SwarmDesired,
    service_ids: Mapping[str, str],
    baselines: Mapping[str, str],
    emit: Emit,
    timeout: float,
    clock: Clock,
) -> dict[str, str]:
    """Poll (one service list + one task list per tick) until every service settles."""
    deadline = clock.monotonic() + timeout
    settled: dict[str, str] = {}
    last_detail: dict[str, str] = {}
    common = desired.common_labels()
    touched = set(baselines)
    running_since: dict[str, tuple[float, int]] = {}
    stuck_since: dict[str, float] = {}
    for name in sorted(touched):
        emit(Event("waiting", f"service {desired.services[name].spec.name}", "", "waiting", name))
    while True:
        observed = {s.name: s for s in engine.list_services(common)}
        ids = [s.id for s in observed.values()] or list(service_ids.values())
        tasks = engine.list_tasks(ids)
        failures: list[ServiceFailure] = []
        for name, svc in sorted(desired.services.items()):
            if name in settled:
                continue
            state, detail = service_state(
                svc, observed.get(svc.spec.name), tasks, baselines.get(name)
            )
            last_detail[name] = detail
            resource = f"service {svc.spec.name}"
            if state == "running" and name in touched and _needs_watching(svc):
                # Without a healthcheck, "running" may be a crash loop between two
                # crashes: the tasks must stay up, without new failures, a moment.
                obs = observed.get(svc.spec.name)
                failures_now = _failed_tasks(svc, obs, tasks)
                since = running_since.setdefault(name, (clock.monotonic(), failures_now))
                if failures_now > since[1]:
                    running_since[name] = (clock.monotonic(), failures_now)
                    state, detail = "converging", "a task failed; watching again"
                elif clock.monotonic() - since[0] < STABLE_SECONDS:
                    state = "converging"
            elif state != "running":
                running_since.pop(name, None)
            stuck = stuck_task(svc, observed.get(svc.spec.name), tasks)
            if stuck is None or state != "converging":
                stuck_since.pop(name, None)
            elif clock.monotonic() - stuck_since.setdefault(name, clock.monotonic()) >= (
                STUCK_SECONDS
            ):
                state, detail = "failed", f"a task cannot run; it is {stuck.state}: {stuck.error}"
            if state in ("running", "completed"):
                settled[name] = state
                if name in touched:
                    emit(
                        Event(
                            "ready" if state == "running" else "completed",
                            resource,
                            detail,
                            "done",
                            name,
                        )
                    )
            elif state == "failed":
                emit(Event("failed", resource, detail, "error", name))
                failures.append(ServiceFailure(name, detail))
        if failures:
            raise EnvironmentFailed(failures)
        if len(settled) == len(desired.services):
            return settled
        if clock.monotonic() >= deadline:
            raise EnvironmentFailed(
                [
                    ServiceFailure(n, f"did not converge within {timeout:g}s ({last_detail[n]})")
                    for n in sorted(desired.services)
                    if n not in settled
                ]
            )
        clock.sleep(0.25)


# --------------------------------------------------------------------------- down / status


@dataclass
class DownResult:
    services: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VersionedObjects:
    """One kind of versioned object (secrets, configs) and the engine's calls for it."""

    kind: VersionedKind
    create: Callable[[str, Mapping[str, str], bytes], str]
    listing: Callable[[Mapping[str, str]], Sequence[ObservedVersioned]]
    remove: Callable[[str], None]


def versioned_objects(engine: SwarmEngine) -> tuple[VersionedObjects, VersionedObjects]:
    """Secrets, then configs."""
    return (
        VersionedObjects(SECRETS, engine.create_secret, engine.list_secrets, engine.remove_secret),
        VersionedObjects(CONFIGS, engine.create_config, engine.list_configs, engine.remove_config),
    )


def down(
    engine: SwarmEngine,
    project: str,
    emit: Emit = discard,
    volumes: bool = False,
    timeout: float = 60.0,
    clock: Clock | None = None,
) -> DownResult:
    """Remove every service, secret, config and network (and with ``volumes`` this node's
    volumes) labelled as this project's swarm deploy."""
    clock = clock or SystemClock()
    common = project_labels(project)
    result = DownResult()
    for svc in sorted(engine.list_services(common), key=lambda s: s.name):
        emit(Event("remove", f"service {svc.name}", "", "working"))
        engine.remove_service(svc.id)
        result.services.append(svc.name)
        emit(Event("remove", f"service {svc.name}", "", "done"))
    deadline = clock.monotonic() + timeout
    secrets, configs = versioned_objects(engine)
    for objects, removed in ((secrets, result.secrets), (configs, result.configs)):
        noun, kind = objects.kind.noun, objects.kind.remove
        for obj in sorted(objects.listing(common), key=lambda o: o.name):
            emit(Event(kind, f"{noun} {obj.name}", "", "working"))
            if retry(partial(objects.remove, obj.id), clock, deadline) is None:
                removed.append(obj.name)
                emit(Event(kind, f"{noun} {obj.name}", "", "done"))
            else:
                result.warnings.append(f"{noun} {obj.name} is still in use")
    # The tasks' containers leave their networks asynchronously.
    for net in sorted(engine.list_swarm_networks(common), key=lambda n: n.name):
        emit(Event("remove-network", f"network {net.name}", "", "working"))
        if retry(partial(remove_network, engine, net.id), clock, deadline) is None:
            result.networks.append(net.name)
            emit(Event("remove-network", f"network {net.name}", "", "done"))
        else:
            result.warnings.append(f"network {net.name} is still in use")
    # A removed overlay network lingers on the node until the tasks' containers
    # are gone; a deploy right after `down` must not find it.
    while engine.list_swarm_networks(common):
        if clock.monotonic() >= deadline:
            result.warnings.append("the project's networks are still being removed")
            break
        clock.sleep(0.2)
    if volumes:
        for vol in engine.list_volumes(project):
            if vol.labels.get(TARGET_LABEL) != TARGET:
                continue

            emit(Event("remove", f"volume {vol.name}", "", "working"))
            if retry(partial(remove_volume, engine, vol.name), clock, deadline) is None:
                result.volumes.append(vol.name)
                emit(Event("remove", f"volume {vol.name}", "", "done"))
            else:
                result.warnings.append(f"volume {vol.name} is still in use")
    return result
