"""Network rules shared by the container plan and the swarm plan: which
observed networks are orphans, and how an existing network drifted from the spec.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from envd.core.desired import DesiredNetwork, DesiredProject
from envd.core.observed import Observed
from envd.values.types import IpamPool, ObservedNetwork


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
    # Address management: only what the spec sets (the engine picks the rest).
    # Compared on the network itself, so a network someone re-created by hand
    # with another subnet shows too, not only a changed spec.
    if want.ipam and not _same_pools(want.ipam, have.ipam):
        drift.append("ipam")
    if want.enable_ipv6 and not have.enable_ipv6:
        drift.append("enable_ipv6")
    if any(have.labels.get(k) != v for k, v in want.labels.items()):
        drift.append("labels")
    return drift


def _same_pools(want: Iterable[IpamPool], have: Iterable[IpamPool]) -> bool:
    """Each wanted pool's subnet is there, with what the spec says of it (the engine
    fills in a gateway the spec left out: not drift)."""
    by_subnet = {p.subnet: p for p in have}
    wanted = list(want)
    if {p.subnet for p in wanted} != set(by_subnet):
        return False
    for p in wanted:
        got = by_subnet[p.subnet]
        if (p.ip_range and p.ip_range != got.ip_range) or (p.gateway and p.gateway != got.gateway):
            return False
        if p.aux_addresses and tuple(sorted(p.aux_addresses)) != tuple(sorted(got.aux_addresses)):
            return False
    return True


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
