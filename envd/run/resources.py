"""Create the networks and volumes a plan asks for: one path for ``up`` and ``envd run``.

A network is created with the spec's driver, ``internal`` flag and labels, and
one that differs from the spec is replaced (the plan asks only when no
container of the project is attached); a volume with its driver and options.
Created concurrently by another envd is as good as created here.
"""

from __future__ import annotations

import contextlib

from envd.core.desired import DesiredProject
from envd.core.plan import Action, ActionKind
from envd.engine.base import Engine
from envd.values.errors import Conflict, NotFound

RESOURCE_KINDS: frozenset[ActionKind] = frozenset(
    {"create-network", "recreate-network", "create-volume"}
)


def apply_resource(engine: Engine, desired: DesiredProject, action: Action) -> None:
    """Carry out one ``create-network``, ``recreate-network`` or ``create-volume`` action."""
    if action.kind in ("create-network", "recreate-network"):
        net = next(n for n in desired.networks.values() if n.name == action.name)
        if action.kind == "recreate-network":
            with contextlib.suppress(NotFound):
                engine.remove_network(net.name)
        with contextlib.suppress(Conflict):
            engine.create_network(
                net.name,
                dict(net.labels),
                net.driver,
                net.internal,
                ipam_driver=net.ipam_driver,
                ipam=net.ipam,
                enable_ipv6=net.enable_ipv6,
            )
    elif action.kind == "create-volume":
        vol = next(v for v in desired.volumes.values() if v.name == action.name)
        with contextlib.suppress(Conflict):
            engine.create_volume(vol.name, dict(vol.labels), vol.driver, dict(vol.driver_opts))
    else:
        raise AssertionError(f"{action.kind!r} is not a network or volume action")
