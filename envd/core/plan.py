"""The plan: a pure value saying what ``apply`` must do, and why.

``make_plan(desired, observed)`` decides everything; ``apply`` only executes.
Each ``Action`` names its resource and carries the reason a user reads in
``envd plan``. Services whose image is about to be pulled or built get a
``pending`` entry: their container actions are planned again once the image
id is known (``up`` plans twice: images, then containers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from envd.core.build import build_reason
from envd.core.desired import (
    DesiredProject,
    DesiredService,
    container_for,
    desired_hash,
)
from envd.core.hashing import changed_fields
from envd.core.host_settings import joined_services
from envd.core.networks import network_drift, network_users, orphan_networks
from envd.core.observed import Observed
from envd.core.plan_join import CONTAINER_MODE, rejoin
from envd.core.plan_values import MUTATING as MUTATING
from envd.core.plan_values import ONESHOT_DONE as ONESHOT_DONE
from envd.core.plan_values import ONESHOT_FAILED as ONESHOT_FAILED
from envd.core.plan_values import Action as Action
from envd.core.plan_values import ActionKind as ActionKind
from envd.core.plan_values import Plan as Plan
from envd.core.plan_values import PlanProblem as PlanProblem
from envd.core.plan_values import aside_name as aside_name
from envd.values import labels
from envd.values.types import ObservedContainer


def make_plan(
    desired: DesiredProject,
    observed: Observed,
    *,
    pulled: frozenset[str] = frozenset(),
    force_recreate: frozenset[str] = frozenset(),
    restart_exited: bool = True,
) -> Plan:
    """Pure: compare desired with observed. ``pulled``: refs already pulled this run."""
    actions: list[Action] = []
    problems: list[PlanProblem] = []
    project = desired.project

    # --- images --------------------------------------------------------------
    image_ids: dict[str, str] = {}
    for name in sorted(desired.services):
        svc = desired.services[name]
        image = observed.images.get(svc.image_ref)
        resource = f"image {svc.image_ref}"
        if svc.build is not None and svc.pull != "always":
            why = build_reason(svc, image, pulled)
            if why or image is None:
                actions.append(Action("build", resource, why, service=name, name=svc.image_ref))
                continue
            image_ids[name] = image.id
            continue
        if svc.pull == "always" and svc.image_ref not in pulled:
            actions.append(
                Action(
                    "pull", resource, "pull policy is 'always'", service=name, name=svc.image_ref
                )
            )
            continue
        if image is None:
            if svc.pull == "never":
                problems.append(
                    PlanProblem(
                        name, f"image {svc.image_ref!r} is not present locally and pull = 'never'"
                    )
                )
                continue
            actions.append(
                Action(
                    "pull", resource, "image not present locally", service=name, name=svc.image_ref
                )
            )
            continue
        image_ids[name] = image.id
    # One pull/build per distinct image, even when several services share it.
    seen: set[tuple[str, str]] = set()
    deduped: list[Action] = []
    for a in actions:
        if (a.kind, a.name) in seen:
            continue
        seen.add((a.kind, a.name))
        deduped.append(a)
    actions = deduped

    # --- networks and volumes -------------------------------------------------
    observed_networks = {n.name: n for n in observed.networks}
    for key in sorted(desired.networks):
        net = desired.networks[key]
        have = observed_networks.get(net.name)
        if net.external:
            continue
        if have is None:
            actions.append(
                Action("create-network", f"network {net.name}", "does not exist", name=net.name)
            )
            continue
        drift = network_drift(net, have)
        if not drift:
            continue
        users = network_users(desired, observed, net.name)
        if users:
            # Removing a network cuts its containers off: like Compose without
            # --yes, say so and change nothing rather than stop them unasked.
            problems.append(
                PlanProblem(
                    users[0],
                    f"network {net.name} differs from the spec ({', '.join(drift)}) and"
                    " containers are attached to it; run `envd down`, then `envd up`"
                    " to recreate it",
                )
            )
            continue
        actions.append(
            Action(
                "recreate-network",
                f"network {net.name}",
                "changed: " + ", ".join(drift),
                name=net.name,
            )
        )
    observed_volumes = {v.name for v in observed.volumes}
    used_volumes = {
        m.source for s in desired.services.values() for m in s.template.mounts if m.type == "volume"
    }
    for key in sorted(desired.volumes):
        vol = desired.volumes[key]
        if not vol.external and vol.name not in observed_volumes and vol.name in used_volumes:
            actions.append(
                Action("create-volume", f"volume {vol.name}", "does not exist", name=vol.name)
            )

    # --- containers -------------------------------------------------------------
    by_service = observed.by_service()
    for name in sorted(by_service):
        if name not in desired.services:
            for c in sorted(by_service[name], key=lambda c: c.name):
                actions.append(
                    Action(
                        "remove",
                        f"container {c.name}",
                        f"service {name!r} is no longer in the spec"
                        if name
                        else "not owned by a service",
                        service=name,
                        replica=c.replica,
                        container_id=c.id,
                        name=c.name,
                        stop_timeout=None,  # the spec no longer says; the container does
                    )
                )
    # Services whose first container this plan creates or recreates: one that
    # joins its pid/ipc namespace (issue 12, `service:NAME`) joined the old
    # container by id, so it is recreated too, as Compose does.
    replaced: set[str] = set()
    # network_mode service:NAME (plan_join): owners that get a new namespace
    # (created, recreated or started again), and whom each container joined.
    renewed: dict[str, bool] = {}
    owner_ids: dict[str, str] = {}
    joined_ids = {
        c.id: c.network_mode[len(CONTAINER_MODE) :]
        for c in observed.containers
        if c.network_mode.startswith(CONTAINER_MODE)
    }
    for level in desired.levels():
        for name in level:
            svc = desired.services[name]
            joined = sorted(joined_services(desired.project, svc, desired.services) & replaced)
            service_actions = _service_actions(
                desired,
                svc,
                by_service.get(name, []),
                image_ids.get(name),
                force_recreate | ({name} if joined else set()),
                restart_exited,
            )
            if joined and name not in force_recreate:
                why = f"joins the namespace of {', '.join(joined)}, which is recreated"
                service_actions = [
                    replace(a, reason=why) if a.reason == "recreate forced" else a
                    for a in service_actions
                ]
            service_actions = rejoin(
                desired, svc, service_actions, image_ids.get(name), renewed, owner_ids, joined_ids
            )
            first = [a for a in service_actions if a.replica == 1 and a.service == name]
            if any(a.kind in ("create", "recreate") for a in first):
                replaced.add(name)
            # A started owner has a new network namespace too (one per start).
            renewed[name] = any(a.kind in ("create", "recreate", "start") for a in first)
            owner_ids[name] = next((a.container_id for a in first if a.container_id), "")
            actions.extend(service_actions)

    # --- orphan networks (after their containers are gone) -----------------------
    for onet in orphan_networks(desired.networks.values(), observed.networks):
        actions.append(
            Action(
                "remove-network",
                f"network {onet.name}",
                "no longer used by the spec",
                name=onet.name,
            )
        )
    return Plan(project, tuple(actions), tuple(problems))


def _service_actions(
    desired: DesiredProject,
    svc: DesiredService,
    existing: list[ObservedContainer],
    image_id: str | None,
    force_recreate: frozenset[str],
    restart_exited: bool = True,
) -> list[Action]:
    actions: list[Action] = []
    project = desired.project
    slots: dict[int, list[ObservedContainer]] = {}
    for c in existing:
        slots.setdefault(c.replica, []).append(c)
    stop_timeout = svc.template.stop_timeout

    for replica in sorted(r for r in slots if r < 1 or r > svc.replicas):
        for c in slots[replica]:
            actions.append(
                Action(
                    "remove",
                    f"container {c.name}",
                    f"scaled down to {svc.replicas} replica(s)",
                    service=svc.name,
                    replica=replica,
                    container_id=c.id,
                    name=c.name,
                    stop_timeout=stop_timeout,
                )
            )

    # Replicas share one hash; the full create request is built only when needed.
    want_hash: str | None = None
    for replica in range(1, svc.replicas + 1):
        name = svc.container_name(project, replica)
        resource = f"container {name}"
        found = slots.get(replica, [])
        primary = next((c for c in found if c.name == name), None)
        for c in found:
            if c is not primary:
                generated = c.name.startswith(f"{project}-{svc.name}-")
                # container_name set or unset; a container set aside by a recreate
                # (stopped and renamed, apply) is what an interrupted change left.
                renamed = (bool(svc.fixed_name) or not generated) and c.name != aside_name(
                    name, c.id
                )
                actions.append(
                    Action(
                        "remove",
                        f"container {c.name}",
                        f"renamed to {name} (container_name)"
                        if renamed
                        else "left over from an interrupted change",
                        service=svc.name,
                        replica=replica,
                        container_id=c.id,
                        name=c.name,
                        stop_timeout=stop_timeout,
                    )
                )
        if image_id is None:
            why = "waiting for its image"
            actions.append(
                Action(
                    "pending",
                    resource,
                    why,
                    service=svc.name,
                    replica=replica,
                    container_id=primary.id if primary else "",
                    name=name,
                    stop_timeout=stop_timeout,
                )
            )
            continue
        want_hash = desired_hash(svc, image_id) if want_hash is None else want_hash
        if primary is None:
            actions.append(
                Action(
                    "create",
                    resource,
                    "does not exist",
                    service=svc.name,
                    replica=replica,
                    container=container_for(desired, svc, replica, image_id),
                    name=name,
                    stop_timeout=stop_timeout,
                )
            )
            continue
        if primary.config_hash != want_hash or svc.name in force_recreate:
            if svc.name in force_recreate:
                reason = "recreate forced"
            else:
                fields = changed_fields(
                    primary.labels.get(labels.FIELD_HASHES, ""),
                    container_for(desired, svc, replica, image_id).labels[labels.FIELD_HASHES],
                )
                reason = ("changed: " + ", ".join(fields)) if fields else "configuration changed"
            actions.append(
                Action(
                    "recreate",
                    resource,
                    reason,
                    service=svc.name,
                    replica=replica,
                    container_id=primary.id,
                    container=container_for(desired, svc, replica, image_id),
                    name=name,
                    stop_timeout=stop_timeout,
                )
            )
            continue
        status = primary.status
        if status in ("running", "restarting", "paused"):
            actions.append(
                Action(
                    "ok",
                    resource,
                    f"up to date ({status})",
                    service=svc.name,
                    replica=replica,
                    container_id=primary.id,
                    name=name,
                )
            )
        elif status == "created":
            # Never started: a crash may have cut it off between create and
            # writing its secrets or attaching its networks. Don't trust it.
            actions.append(
                Action(
                    "recreate",
                    resource,
                    "created but never started (possibly incomplete)",
                    service=svc.name,
                    replica=replica,
                    container_id=primary.id,
                    container=container_for(desired, svc, replica, image_id),
                    name=name,
                    stop_timeout=stop_timeout,
                )
            )
        elif status == "exited" and svc.restart in ("no", "on-failure") and primary.exit_code == 0:
            # A one-shot that finished: neither its policy nor `up` runs it again.
            actions.append(
                Action(
                    "ok",
                    resource,
                    ONESHOT_DONE,
                    service=svc.name,
                    replica=replica,
                    container_id=primary.id,
                    name=name,
                )
            )
        elif status == "exited" and svc.restart == "no" and desired.oneshot(svc.name):
            # supervisor: a one-shot's failure is its result too; it runs again
            # when its inputs change or on request (`envd up --rerun`), never by drift repair.
            actions.append(
                Action(
                    "ok",
                    resource,
                    f"{ONESHOT_FAILED} {primary.exit_code}); not retried until its inputs"
                    f" change or `envd up --rerun {svc.name}`",
                    service=svc.name,
                    replica=replica,
                    container_id=primary.id,
                    name=name,
                )
            )
        elif (
            status == "exited"
            and not restart_exited
            and (svc.restart == "no" or (svc.restart == "on-failure" and primary.exit_code == 0))
        ):
            # The daemon follows the restart policy instead of fighting it;
            # an explicit `envd up` starts the container again.
            actions.append(
                Action(
                    "ok",
                    resource,
                    f"exited with code {primary.exit_code} (restart policy {svc.restart!r})",
                    service=svc.name,
                    replica=replica,
                    container_id=primary.id,
                    name=name,
                )
            )
        elif status == "dead" or status == "removing":
            actions.append(
                Action(
                    "recreate",
                    resource,
                    f"container is {status}",
                    service=svc.name,
                    replica=replica,
                    container_id=primary.id,
                    container=container_for(desired, svc, replica, image_id),
                    name=name,
                    stop_timeout=stop_timeout,
                )
            )
        else:
            code = f" with code {primary.exit_code}" if primary.exit_code is not None else ""
            actions.append(
                Action(
                    "start",
                    resource,
                    f"{status}{code}",
                    service=svc.name,
                    replica=replica,
                    container_id=primary.id,
                    name=name,
                )
            )
    return actions


def summarize(plan: Plan) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for a in plan.actions:
        counts[a.kind] = counts.get(a.kind, 0) + 1
    return counts
