"""Network rules shared by the container plan and the swarm plan: which
observed networks are orphans, and how an existing network drifted from the spec.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from envd.core.desired import DesiredNetwork, DesiredProject
from envd.core.observed import Observed
from envd.values.types import ObservedNetwork


def network_drift(want: DesiredNetwork, have: ObservedNetwork) -> list[str]:
    """The fields of an existing network that differ from the spec ([] when none).

    A driver the engine did not report is not compared; labels the engine has
    beyond the spec's (set by someone else) are not drift.
    """
    drift: list[str] = []
    if have.driver and have.driver != want.driver:
        drift.append("driver")
    if have.internal != want.internal:
        drift.append("internal")
    if any(have.labels.get(k) != v for k, v in want.labels.items()):
        drift.append("labels")
    return drift


def network_users(desired: DesiredProject, observed: Observed, network: str) -> list[str]:
    """Services whose containers may be attached to ``network``: the engine's list does
    not name them, so a container of a service the spec attaches there counts, and
    so does one the spec does not know."""
    users: set[str] = set()
    for c in observed.containers:
        svc = desired.services.get(c.service)
        if svc is None or any(n.network == network for n in svc.template.networks):
            users.add(c.service or "-")
    return sorted(users)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def orphan_networks(wanted: Iterable[_Named], observed: Iterable[_N]) -> list[_N]:
    """The project's observed networks that no wanted network names, by name.

    Shared by the container plan and the swarm plan. External networks are
    among ``wanted``: one the project labelled is never removed.
    """
    names = {n.name for n in wanted}
    return sorted((n for n in observed if n.name not in names), key=lambda n: n.name)
