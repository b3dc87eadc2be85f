"""``envd status``: desired vs actual per service, from one observation.

Also how a read-only view stays honest without running host commands: a
secret whose value comes from a ``command`` source is not read by ``plan``,
``status`` or the daemon's plan endpoint, so its digest is unknown and the
``secrets`` field of its services cannot be compared (``unchecked_secrets``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from envd.core.desired import DesiredProject
from envd.core.observed import Observed
from envd.core.plan import Action, Plan
from envd.core.status_text import state_text as state_text  # the STATE column, light

NOT_CHECKED = "secrets not checked"

# What the project itself lacks or has in excess, outside any one service: a
# network or volume removed behind envd's back shows in status, not only to the
# next pass.
PROJECT_KINDS = frozenset({"create-network", "recreate-network", "remove-network", "create-volume"})


def unchecked_secrets(plan: Plan, unread: Mapping[str, tuple[str, ...]]) -> Plan:
    """``plan`` with the secrets field of ``unread`` services left uncompared.

    ``unread`` names, per service, the secrets whose values were not read.
    Every other field is still compared through the containers' field-hash
    labels: a recreate caused by the secrets alone becomes "ok", one with
    other changes keeps them and says the secrets were not checked.
    """
    if not unread:
        return plan
    actions: list[Action] = []
    for action in plan.actions:
        if action.service in unread and action.kind == "recreate":
            action = _without_secrets(action)
        actions.append(action)
    return replace(plan, actions=tuple(actions))


def hold_unread(plan: Plan, unread: Mapping[str, tuple[str, ...]]) -> tuple[Plan, dict[str, str]]:
    """A daemon's plan when some command secrets have no value (``unread``).

    ``unchecked_secrets`` first; then a container that would still be created
    or recreated is held instead (kind "ok"): it would get an empty secret.
    Returns the plan and, per held service, the sentence saying why.
    """
    plan = unchecked_secrets(plan, unread)
    why = {
        service: (
            f"held: secret {', '.join(repr(n) for n in names)} comes from a host command,"
            " which only `envd up` runs; run `envd up`"
        )
        for service, names in unread.items()
    }
    return hold(plan, why, ("create", "recreate"))


def hold(
    plan: Plan, why: Mapping[str, str], kinds: tuple[str, ...] = ("create", "recreate", "start")
) -> tuple[Plan, dict[str, str]]:
    """``plan`` with the ``kinds`` actions of the services in ``why`` turned into
    "ok" with that reason (a service stopped on purpose is not started again).
    Returns the plan and the services actually held."""
    held: dict[str, str] = {}
    actions: list[Action] = []
    for action in plan.actions:
        if action.service in why and action.kind in kinds:
            held[action.service] = why[action.service]
            action = replace(action, kind="ok", reason=why[action.service], container=None)
        actions.append(action)
    return replace(plan, actions=tuple(actions)), held


def _without_secrets(action: Action) -> Action:
    prefix = "changed: "
    if not action.reason.startswith(prefix):
        return replace(action, reason=f"{action.reason} ({NOT_CHECKED})")
    fields = [f for f in action.reason[len(prefix) :].split(", ") if f != "secrets"]
    if not fields:
        return replace(
            action, kind="ok", reason=f"up to date ({NOT_CHECKED}: their values come from commands)"
        )
    return replace(action, reason=f"{prefix}{', '.join(fields)} ({NOT_CHECKED})")


def project_status(
    desired: DesiredProject,
    observed: Observed,
    plan: Plan,
    unread: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """The report of ``envd status``; ``unread`` as for ``unchecked_secrets``."""
    unread = unread or {}
    by_service = observed.by_service()
    services: list[dict[str, Any]] = []
    for name in sorted(desired.services):
        svc = desired.services[name]
        containers = sorted(by_service.get(name, []), key=lambda c: c.replica)
        running = [c for c in containers if c.status == "running"]
        healths = {c.health for c in running if c.health}
        health = (
            "unhealthy"
            if "unhealthy" in healths
            else "starting"
            if "starting" in healths
            else "healthy"
            if healths
            else None
        )
        drift = [
            f"{a.kind}: {a.reason}"
            for a in plan.for_service(name)
            if a.mutating or a.kind == "pending"
        ]
        actual = f"{len(running)} running"
        exited = [c for c in containers if c.status == "exited"]
        if exited:
            codes = ",".join(str(c.exit_code) for c in exited)
            actual += f", {len(exited)} exited ({codes})"
        services.append(
            {
                "name": name,
                "desired_replicas": svc.replicas,
                "actual": actual,
                "running": len(running),
                "health": health,
                "image": svc.image_ref,
                "containers": [
                    {
                        "id": c.id[:12],
                        "name": c.name,
                        "status": c.status,
                        "health": c.health,
                        "exit_code": c.exit_code,
                        "replica": c.replica,
                        "status_text": c.status_text,
                        "image_id": c.image_id,
                        "ports": [
                            f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}"
                            for p in c.ports
                        ],
                    }
                    for c in containers
                ],
                "drift": drift,
                "in_sync": not drift,
                "secrets_not_checked": list(unread.get(name, ())),
            }
        )
    orphans = [
        {"id": c.id[:12], "name": c.name, "service": c.service, "status": c.status}
        for c in observed.containers
        if c.service not in desired.services
    ]
    project_drift = [
        f"{a.kind} {a.resource}: {a.reason}"
        for a in plan.actions
        if a.kind in PROJECT_KINDS and not a.service
    ]
    return {
        "project": desired.project,
        "environment": desired.environment,
        "services": services,
        "orphans": orphans,
        "drift": project_drift,
        "in_sync": all(s["in_sync"] for s in services) and not orphans and not project_drift,
    }


# --------------------------------------------------------------------------- supervisor


def service_state(entry: Mapping[str, Any], flapping: bool = False) -> str:
    """The one word `envd status` leads a service with (contract §3's states)."""
    if flapping:
        return "flapping"
    cs = entry["containers"]
    if not cs:
        return "stopped" if entry["desired_replicas"] == 0 else "missing"
    statuses = {c["status"] for c in cs}
    if statuses == {"exited"}:
        return "completed" if all(c["exit_code"] == 0 for c in cs) else "failed"
    if "running" in statuses:
        return str(entry["health"] or "running")
    if "restarting" in statuses:
        return "restarting"
    if "dead" in statuses:
        return "failed"
    return str(sorted(statuses)[0])
