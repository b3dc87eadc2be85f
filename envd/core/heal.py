"""The supervisor's decisions, pure: when to heal, when to give up, whom to restart.

Heal: a container the engine reports unhealthy is restarted. The first heal
of a service within its window is immediate; each further one waits
``backoff × 2^(n-1)`` after the previous (n: heals in the window so far),
capped at ``MAX_BACKOFF``. A service that needs more than ``max`` heals in its
``window`` is *flapping*: envd stops healing it until its container is
replaced (a config change recreates it, `envd down` + `envd up`) or the user
asks (`envd up --rerun SERVICE`).

Dependents: a service whose ``depends_on.<dep>.restart`` is true and whose
containers started before the dependency's latest start is restarted once
the dependency meets its condition again. Comparing start times makes the
rule level-triggered: a restart seen as an event, found after a daemon
restart, or done by hand is caught the same way.

Times are plain floats (wall-clock seconds for heal records, so they survive
a daemon restart; the engine's own start times for dependents).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from envd.core.desired import DesiredHeal, DesiredProject

MAX_BACKOFF = 300.0

HealAction = Literal["heal", "wait", "flap", "off", "flapping"]


@dataclass(frozen=True)
class HealRecord:
    """What the daemon remembers of one service's heals (persisted in ``.envd/``)."""

    heals: tuple[float, ...] = ()  # times of the heals still inside some window, oldest first
    total: int = 0  # every heal since the record began
    flapping: bool = False
    flapping_since: float | None = None
    # The containers the heals were counted against: once none of them is left
    # (recreated, removed), the record starts afresh.
    containers: tuple[str, ...] = ()

    def recent(self, policy: DesiredHeal, now: float) -> tuple[float, ...]:
        return tuple(t for t in self.heals if now - t < policy.window)


@dataclass(frozen=True)
class HealDecision:
    action: HealAction
    reason: str
    due: float = 0.0  # "wait": when the heal may run


def backoff_delay(policy: DesiredHeal, heals_in_window: int) -> float:
    """The wait after the previous heal before the next one; 0 before the first."""
    if heals_in_window <= 0:
        return 0.0
    return float(min(policy.backoff * (2 ** (heals_in_window - 1)), MAX_BACKOFF))


def decide(policy: DesiredHeal, record: HealRecord, now: float) -> HealDecision:
    """What to do about a service whose container is unhealthy at ``now``."""
    if not policy.enabled:
        return HealDecision("off", "healing is off for this service (heal.enabled = false)")
    if record.flapping:
        return HealDecision("flapping", "flapping: envd stopped healing it")
    recent = record.recent(policy, now)
    if len(recent) >= policy.max:
        return HealDecision(
            "flap",
            f"unhealthy again after {len(recent)} heals within {_span(policy.window)}"
            f" (heal.max = {policy.max}): flapping, envd stops healing it",
        )
    if recent:
        due = recent[-1] + backoff_delay(policy, len(recent))
        if now < due:
            return HealDecision("wait", f"backing off {due - now:.1f}s before heal", due)
    n = len(recent) + 1
    return HealDecision("heal", f"unhealthy: restarting it (heal {n} of {policy.max} allowed)")


def _with(containers: tuple[str, ...], container_id: str) -> tuple[str, ...]:
    return tuple(sorted({*containers, container_id}))


def healed(record: HealRecord, policy: DesiredHeal, now: float, container_id: str) -> HealRecord:
    return replace(
        record,
        heals=(*record.recent(policy, now), now),
        total=record.total + 1,
        containers=_with(record.containers, container_id),
    )


def flapped(record: HealRecord, now: float, container_id: str) -> HealRecord:
    return replace(
        record,
        flapping=True,
        flapping_since=now,
        containers=_with(record.containers, container_id),
    )


def current(record: HealRecord, live: frozenset[str]) -> HealRecord:
    """``record`` while the service's containers are ``live``: when none of those it
    counted is left (a recreate, `down` + `up`), it starts afresh, keeping the total."""
    if record.containers and not live.intersection(record.containers):
        return HealRecord(total=record.total)
    return record


def reset(record: HealRecord) -> HealRecord:
    """Forget the window and the flapping mark (`envd up --rerun`); keep the total."""
    return HealRecord(total=record.total)


def _span(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


# --------------------------------------------------------------------------- dependents


@dataclass(frozen=True)
class ServiceRun:
    """A service's containers as the supervisor last saw them."""

    first_start: float | None  # the earliest start among its containers (None: none started)
    last_start: float | None  # the latest start among them
    satisfied: Mapping[str, bool]  # condition word -> whether they meet it now


def dependents_to_restart(
    desired: DesiredProject, runs: Mapping[str, ServiceRun]
) -> list[tuple[str, list[str]]]:
    """(service, the dependencies that restarted since it started) to restart now.

    A service waits while any such dependency does not meet its condition
    yet; one restart covers every dependency that restarted.
    """
    out: list[tuple[str, list[str]]] = []
    for name in sorted(desired.services):
        mine = runs.get(name)
        if mine is None or mine.first_start is None:
            continue
        newer: list[str] = []
        ready = True
        for dep, cond in sorted(desired.services[name].depends_on.items()):
            theirs = runs.get(dep)
            if not cond.restart or theirs is None or theirs.last_start is None:
                continue
            if theirs.last_start <= mine.first_start:
                continue
            newer.append(dep)
            ready = ready and theirs.satisfied.get(cond.condition, False)
        if newer and ready:
            out.append((name, newer))
    return out


def restart_watched(desired: DesiredProject) -> frozenset[str]:
    """Services whose start times the dependents rule reads."""
    names: set[str] = set()
    for name, svc in desired.services.items():
        for dep, cond in svc.depends_on.items():
            if cond.restart and dep in desired.services:
                names.update((name, dep))
    return frozenset(names)
