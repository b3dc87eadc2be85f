"""The ``up`` pipeline, shared by the CLI and the daemon.

load → read secrets → desire → observe → plan → (images → observe → plan) → apply.
Everything before ``observe`` is pure or reads only the project's files, so a
bad spec fails (exit 2) before the engine is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from envd.core.desired import DesiredProject
from envd.core.observed import Observed
from envd.core.plan import Plan, PlanProblem, make_plan
from envd.engine.base import Engine
from envd.run.apply import AfterStart, Applier
from envd.run.engine_limits import refuse_ignored_limits
from envd.run.observe import observe
from envd.run.readiness import ServiceProgress
from envd.values.errors import EnvironmentFailed, ServiceFailure
from envd.values.events import Clock, Emit, Event, discard


def image_refs(desired: DesiredProject) -> list[str]:
    return sorted({s.image_ref for s in desired.services.values()})


def plan_project(
    engine: Engine,
    desired: DesiredProject,
    pulled: frozenset[str] = frozenset(),
    force_recreate: frozenset[str] = frozenset(),
    restart_exited: bool = True,
) -> tuple[Plan, Observed]:
    observed = observe(engine, desired.project, image_refs(desired))
    plan = make_plan(
        desired,
        observed,
        pulled=pulled,
        force_recreate=force_recreate,
        restart_exited=restart_exited,
    )
    taken = foreign_names(engine, desired, observed)
    if taken:
        plan = replace(plan, problems=(*plan.problems, *taken))
    return plan, observed


def foreign_names(engine: Engine, desired: DesiredProject, observed: Observed) -> list[PlanProblem]:
    """A ``container_name`` held by a container outside the project: refused before any
    change (envd never removes what it does not manage). Asked only of names the
    project's containers do not have, so a converged project costs no call."""
    ours = {c.name for c in observed.containers}
    problems: list[PlanProblem] = []
    for svc in sorted(desired.services.values(), key=lambda s: s.name):
        name = svc.fixed_name
        if not name or svc.replicas < 1 or name in ours:
            continue
        owner = engine.container_name_owner(name)
        if owner is None or owner == desired.project:
            continue  # free, or ours under another service (the plan removes it first)
        whose = f"project {owner!r}" if owner else "no envd project"
        problems.append(
            PlanProblem(
                svc.name,
                f"container_name {name!r} is taken by a container of {whose}; remove or"
                " rename that container, or change container_name",
            )
        )
    return problems


def refuse_problems(plan: Plan) -> None:
    """Raise ``EnvironmentFailed`` naming each service whose problem no action can fix."""
    if plan.problems:
        raise EnvironmentFailed([ServiceFailure(p.service, p.message) for p in plan.problems])


def converge(
    engine: Engine,
    desired: DesiredProject,
    emit: Emit = discard,
    wait_ready: bool = True,
    timeout: float | None = None,
    clock: Clock | None = None,
    force_recreate: frozenset[str] = frozenset(),
    restart_exited: bool = True,
    unread: Mapping[str, tuple[str, ...]] | None = None,
    stopped: frozenset[str] = frozenset(),
    after_start: AfterStart | None = None,
    events: bool = False,
) -> tuple[Plan, dict[str, ServiceProgress]]:
    """Converge the engine onto ``desired``. Raises EnvironmentFailed on failure.

    ``unread`` (a daemon's): per service, the command secrets it has no value
    for; their containers are not created or recreated (``hold_unread``).
    ``stopped`` (a daemon's): services stopped on purpose, neither started,
    created nor recreated until started again. ``events``: wait for readiness
    on the engine's event stream (``envd.run.engine_wake``), not by polling.
    """
    refuse_ignored_limits(engine, desired)  # before anything is pulled or created
    plan, observed = plan_project(
        engine, desired, force_recreate=force_recreate, restart_exited=restart_exited
    )
    refuse_problems(plan)
    # Pulls and builds, and the holds below, are imported when a run needs them:
    # most `up`s do not, and every import is start-up time.
    if plan.image_actions:
        from envd.run.images import apply_images

        pulled = apply_images(plan, engine, desired, emit)
        plan, observed = plan_project(
            engine, desired, frozenset(pulled), force_recreate, restart_exited
        )
    held: set[str] = set()
    if unread:
        from envd.core.status import hold_unread

        plan, waiting = hold_unread(plan, unread)
        for service, why in sorted(waiting.items()):
            emit(Event("held", f"service {service}", why, "error", service))
        held |= set(waiting)
    if stopped:
        from envd.core.status import hold

        reason = "stopped on purpose; `envd start` starts it"
        plan, _ = hold(plan, dict.fromkeys(stopped & set(desired.services), reason))
        held |= stopped & set(desired.services)
    applier = Applier(
        engine, desired, emit, clock, held=frozenset(held), after_start=after_start, events=events
    )
    try:
        progress = applier.apply(plan, observed, wait_ready=wait_ready, timeout=timeout)
    except EnvironmentFailed:
        # An engine going away fails every action in its own words ("transport
        # is closing", exit 143 as it stops containers): say it is gone instead.
        engine.ping()
        raise
    return plan, progress
