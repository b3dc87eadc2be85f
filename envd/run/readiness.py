"""When a service counts as ready, completed or failed, from its observed containers.

The rules ``apply`` waits by: a dependency's ``depends_on`` condition
(started / healthy / completed), a service settling once its containers reach
a final state, a service seen ready that crashed since, and what a timeout
reports. Pure: each reads the last observation in a ``ServiceProgress``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from envd.values.types import ObservedContainer

# pending → converging (its actions run) → converged (its actions are done).
ServiceState = Literal["pending", "converging", "converged"]
# "" until known; then ready, completed (exited 0 as its policy allows) or failed.
Settled = Literal["", "ready", "completed", "failed"]

PENDING: Literal["pending"] = "pending"
CONVERGING: Literal["converging"] = "converging"
CONVERGED: Literal["converged"] = "converged"
READY: Literal["ready"] = "ready"
COMPLETED: Literal["completed"] = "completed"
FAILED: Literal["failed"] = "failed"


@dataclass
class ServiceProgress:
    name: str
    state: ServiceState = PENDING
    error: str = ""
    settled: Settled = ""
    containers: list[ObservedContainer] = field(default_factory=list)


def condition_met(p: ServiceProgress, condition: str, replicas: int) -> tuple[bool, str]:
    """(satisfied, error) of one dependency condition from the last observation."""
    if p.state != CONVERGED:
        return False, ""
    if replicas == 0:
        return True, ""
    cs = p.containers
    if len(cs) < replicas:
        return False, ""
    if condition == "started":
        return all(c.status in ("running", "exited", "restarting") for c in cs), ""
    if condition == "healthy":
        for c in cs:
            if c.status == "exited":
                return False, f"exited with code {c.exit_code} before becoming healthy"
            if c.status == "running" and c.health is None:
                return False, "has no healthcheck; use condition 'started' or add one"
            if c.health == "unhealthy":
                return False, "is unhealthy"
        return all(c.health == "healthy" for c in cs), ""
    # completed
    for c in cs:
        if c.status == "exited" and c.exit_code not in (0, None):
            return False, f"exited with code {c.exit_code}"
    return all(c.status == "exited" and c.exit_code == 0 for c in cs), ""


def settle(p: ServiceProgress, replicas: int, restart: str) -> tuple[Settled, str]:
    if p.settled == FAILED:
        return FAILED, p.error
    if replicas == 0:
        return READY, ""
    cs = p.containers
    if len(cs) < replicas:
        return "", ""
    states: list[Settled] = []
    for c in cs:
        if c.status == "running":
            if c.health in (None, "healthy"):
                states.append(READY)
            elif c.health == "unhealthy":
                return FAILED, f"is unhealthy (container {c.name})"
            else:
                return "", ""
        elif c.status == "exited":
            if c.exit_code == 0 and restart in ("no", "on-failure"):
                states.append(COMPLETED)
            elif restart in ("no",) or (restart == "on-failure" and c.exit_code == 0):
                return FAILED, f"exited with code {c.exit_code} (container {c.name})"
            else:
                return "", ""  # the engine will restart it
        elif c.status == "dead":
            return FAILED, f"container {c.name} is dead"
        else:
            return "", ""
    return (COMPLETED if all(s == COMPLETED for s in states) else READY), ""


def crashed(p: ServiceProgress) -> str:
    """Why a service seen ready has failed since: a container exited non-zero."""
    for c in p.containers:
        if c.status == "exited" and c.exit_code not in (0, None):
            return f"exited with code {c.exit_code} (container {c.name})"
    return ""


# Podman 4.3 runs healthchecks from systemd timers: without systemd (containers,
# CI sandboxes) they never run and health stays "starting" for ever.
PODMAN_HEALTH_HINT = (
    "; Podman runs healthchecks from systemd timers, so without systemd they never run"
    " (docs/compatibility.md, Podman)"
)


def timeout_reason(p: ServiceProgress, podman: bool = False) -> str:
    """Why ``p`` is not ready at the deadline; on Podman a check still "starting" says why."""
    if p.state == PENDING:
        return "timed out waiting for its dependencies"
    if not p.containers:
        return "timed out before its containers were created"
    c = p.containers[0]
    detail = c.status + (f", health {c.health}" if c.health else "")
    if c.status == "exited":
        detail += f" with code {c.exit_code}"
    hint = PODMAN_HEALTH_HINT if podman and c.health == "starting" else ""
    return f"timed out waiting to become ready (state: {detail}){hint}"
