"""``envd deploy --target swarm``: build or find images, desire, plan and apply
the swarm objects, then wait for every service to run its current spec and
remove what is left over (old services, unused secret and config versions, networks).

The swarm calls go through the ``SwarmEngine`` interface of
``envd.engine.swarm.base``; nothing here builds an API payload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from envd.core.build import build_reason, build_request
from envd.core.desired import DesiredProject
from envd.engine.swarm.base import SwarmEngine
from envd.run.retry import retry
from envd.spec.load import LoadedSpec
from envd.swarm.desired import desire_swarm
from envd.swarm.mapping import SwarmDesired
from envd.swarm.ops import (
    VersionedObjects,
    observe_swarm,
    remove_network,
    versioned_objects,
    wait_converged,
)
from envd.swarm.plan import ObservedVersioned, SwarmPlan, Versioned, plan_swarm
from envd.values.errors import (
    Conflict,
    UsageError,
)
from envd.values.events import Clock, Emit, Event, SystemClock, discard


def ensure_images(
    engine: SwarmEngine, desired: DesiredProject, emit: Emit = discard
) -> dict[str, str | None]:
    """Build what must be built here; return every image reference's id on this node."""
    ids: dict[str, str | None] = {}
    for name in sorted(desired.services):
        svc = desired.services[name]
        ref = svc.image_ref
        if ref in ids:
            continue
        image = engine.inspect_image(ref)
        if build_reason(svc, image):
            assert svc.build is not None
            resource = f"image {ref}"
            emit(Event("build", resource, "", "working", name))
            image = engine.build_image(
                build_request(desired.project, svc, ref),
                partial(_build_line, emit, resource, name),
            )
            emit(Event("build", resource, "", "done", name))
        if image is None and svc.pull == "never":
            raise UsageError(
                f"service {name!r}: image {ref!r} is not on this node and pull = 'never'"
            )
        ids[ref] = image.id if image is not None else None
    return ids


def _build_line(emit: Emit, resource: str, service: str, line: str) -> None:
    emit(Event("build", resource, line, "working", service))


@dataclass
class DeployResult:
    plan: SwarmPlan
    services: dict[str, str] = field(default_factory=dict)  # service → "running" / "completed"
    warnings: list[str] = field(default_factory=list)


def _create_versions(
    objects: VersionedObjects,
    plan: SwarmPlan,
    wanted: Mapping[str, Versioned],
    observed: Sequence[ObservedVersioned],
    common: Mapping[str, str],
    emit: Emit,
) -> dict[str, str]:
    """Create the planned versions of one kind; every version's id by name."""
    ids = {o.name: o.id for o in observed}
    for action in plan.of(objects.kind.create):
        obj = wanted[action.name]
        emit(Event(action.kind, action.resource, action.reason, "working"))
        try:
            ids[obj.name] = objects.create(obj.name, obj.labels, obj.value)
        except Conflict:
            # Same name → same value (the name holds its digest): adopt it.
            for o in objects.listing({objects.kind.label: obj.key, **common}):
                if o.name == obj.name:
                    ids[obj.name] = o.id
            if obj.name not in ids:
                raise
        emit(Event(action.kind, action.resource, "", "done"))
    return ids


def deploy(
    engine: SwarmEngine,
    desired: SwarmDesired,
    emit: Emit = discard,
    wait: bool = True,
    timeout: float = 300.0,
    clock: Clock | None = None,
) -> DeployResult:
    """Converge the swarm onto ``desired``; raise ``EnvironmentFailed`` if it does not settle."""
    clock = clock or SystemClock()
    observed = observe_swarm(engine, desired.project)
    plan = plan_swarm(desired, observed)
    result = DeployResult(plan)

    # Networks: a local (bridge) network of the same name is someone else's.
    for action in plan.of("create-network"):
        existing = engine.find_network(action.name)
        if existing is not None:
            raise UsageError(
                f"network {action.name} exists already as a {existing.scope}"
                f" {existing.driver} network not made by this deploy (from `envd up`?);"
                " remove it (`envd down`) or deploy another environment (--env)"
            )
    for key, net in desired.networks.items():
        if net.external:
            found = engine.find_network(net.name)
            if found is None or found.scope != "swarm":
                raise UsageError(
                    f"networks.{key}: external network {net.name} must exist as a swarm-scoped"
                    " (overlay) network"
                )
    for action in plan.of("create-network"):
        net = next(n for n in desired.networks.values() if n.name == action.name)
        emit(Event("create-network", action.resource, "", "working"))
        try:
            engine.create_overlay_network(net.name, net.labels, net.internal, net.driver)
        except Conflict:
            pass  # created meanwhile: converged is converged
        emit(Event("create-network", action.resource, "", "done"))

    secrets, configs = versioned_objects(engine)
    common = desired.common_labels()
    secret_ids = _create_versions(secrets, plan, desired.secrets, observed.secrets, common, emit)
    config_ids = _create_versions(configs, plan, desired.configs, observed.configs, common, emit)

    by_name = {s.name: s for s in observed.services}
    service_ids = {s.name: s.id for s in observed.services}
    for action in plan.of("create-service", "update-service"):
        svc = desired.services[action.service]
        emit(Event(action.kind, action.resource, action.reason, "working", action.service))
        if action.kind == "create-service":
            service_ids[svc.spec.name] = engine.create_service(svc.spec, secret_ids, config_ids)
        else:
            current = by_name[svc.spec.name]
            engine.update_service(current.id, current.version, svc.spec, secret_ids, config_ids)
        emit(Event(action.kind, action.resource, "", "done", action.service))

    for action in plan.of("remove-service"):
        emit(Event("remove", action.resource, action.reason, "working", action.service))
        engine.remove_service(action.name)
        emit(Event("remove", action.resource, "", "done", action.service))

    # Each touched service's last update start before this deploy: only a newer
    # update is this deploy's (the engine may still report the previous one).
    baselines = {
        a.service: (by_name[a.name].update_started if a.name in by_name else "")
        for a in plan.of("create-service", "update-service")
    }
    if wait:
        result.services = wait_converged(
            engine, desired, service_ids, baselines, emit, timeout, clock
        )

    # Only once the consumers run the new version may an old secret (or config) go.
    deadline = clock.monotonic() + 30.0
    removers = {o.kind.remove: o.remove for o in (secrets, configs)}
    for action in plan.of(secrets.kind.remove, configs.kind.remove):
        emit(Event(action.kind, action.resource, action.reason, "working"))
        if retry(partial(removers[action.kind], action.name), clock, deadline) is None:
            emit(Event(action.kind, action.resource, "", "done"))
        else:
            result.warnings.append(f"{action.resource} is still in use; the next deploy retries")
            emit(Event(action.kind, action.resource, "still in use", "error"))
    for action in plan.of("remove-network"):
        emit(Event("remove-network", action.resource, "", "working"))
        if retry(partial(remove_network, engine, action.name), clock, deadline) is None:
            emit(Event("remove-network", action.resource, "", "done"))
        else:
            result.warnings.append(f"{action.resource} is still in use; the next deploy retries")
    return result


def resolve_endpoint_mode(engine: SwarmEngine, requested: str) -> str:
    """``auto``: virtual IPs, unless this engine's kernel has no IPVS (then DNS round robin)."""
    if requested != "auto":
        return requested
    return "dnsrr" if engine.ipvs_missing() else "vip"


def prepare_swarm(
    engine: SwarmEngine,
    loaded: LoadedSpec,
    desired: DesiredProject,
    emit: Emit = discard,
    endpoint_mode: str = "auto",
    build: bool = True,
) -> SwarmDesired:
    """Build what must be built (unless ``build`` is false), look up image ids on this
    node, and desire the swarm objects."""
    builds: list[str] = []
    if build:
        ids = ensure_images(engine, desired, emit)
    else:
        ids = {}
        for name, svc in sorted(desired.services.items()):
            if svc.image_ref not in ids:
                image = engine.inspect_image(svc.image_ref)
                ids[svc.image_ref] = image.id if image is not None else None
                reason = build_reason(svc, image)
                if reason:
                    builds.append(f"image {svc.image_ref} ({name}): {reason}")
    mode = resolve_endpoint_mode(engine, endpoint_mode)
    wanted = replace(desire_swarm(desired, loaded, ids, mode), builds=tuple(builds))
    if mode == "dnsrr" and endpoint_mode == "auto":
        note = (
            "this engine's kernel has no IPVS, so swarm virtual IPs and the routing mesh do not"
            " work: services are reached by DNS round robin and ports are published in host mode"
            " on the node running each task (--endpoint-mode vip overrides)"
        )
        wanted = replace(wanted, notes=(note, *wanted.notes))
    return wanted
