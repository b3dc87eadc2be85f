"""The planner's rule for ``network_mode: service:NAME``: a container that joined
another's network namespace must follow that container when it is replaced.

The engine joins the namespace of a container *id*: once the owner is recreated
the joined container is left in a dead namespace (only ``lo``), and its config
hash cannot show it; the same happens when the owner is started again (each
start makes a new namespace). So its replicas are recreated when the owner is
created, recreated or started in the same plan, or when the engine reports it
joined an id that is no longer the owner's (the owner was replaced by an
earlier run). A restart outside a plan (the engine's restart policy, a heal)
is followed by the daemon: the implied dependency has ``restart = true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from envd.core.desired import DesiredProject, DesiredService, container_for

if TYPE_CHECKING:  # the plan imports this module
    from envd.core.plan import Action

CONTAINER_MODE = "container:"


def joined_service(desired: DesiredProject, svc: DesiredService) -> str | None:
    """The service whose first container ``svc`` shares the network of, if any."""
    mode = svc.template.network_mode
    if not mode.startswith(CONTAINER_MODE):
        return None
    name = mode[len(CONTAINER_MODE) :]
    for other in desired.services.values():
        if other.name != svc.name and other.container_name(desired.project, 1) == name:
            return other.name
    return None  # container:NAME outside the project: the engine's business


def rejoin(
    desired: DesiredProject,
    svc: DesiredService,
    actions: list[Action],
    image_id: str | None,
    replaced: Mapping[str, bool],
    owner_ids: Mapping[str, str],
    joined_ids: Mapping[str, str],
) -> list[Action]:
    """``actions`` with the containers that must follow a replaced owner recreated.

    ``replaced``: services whose first container this plan creates, recreates or starts;
    ``owner_ids``: the id of each service's first container now; ``joined_ids``:
    per container id of ``svc``, the id the engine says it joined.
    """
    owner = joined_service(desired, svc)
    if owner is None or image_id is None:
        return actions
    out: list[Action] = []
    for a in actions:
        if a.kind not in ("ok", "start") or not a.container_id:
            out.append(a)
            continue
        reason = ""
        if replaced.get(owner):
            reason = f"network_mode: service {owner!r} gets a new container or is started again"
        else:
            joined, now = joined_ids.get(a.container_id, ""), owner_ids.get(owner, "")
            if joined and now and joined != now:
                reason = f"network_mode: joined a container of service {owner!r} that was replaced"
        if not reason:
            out.append(a)
            continue
        out.append(
            replace(
                a,
                kind="recreate",
                reason=reason,
                container=container_for(desired, svc, a.replica, image_id),
                stop_timeout=svc.template.stop_timeout,
            )
        )
    return out
