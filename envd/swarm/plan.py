"""``plan_swarm`` (pure): compare the desired swarm objects with one observation
and return typed actions, each with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from envd.core.hashing import changed_fields as core_changed_fields
from envd.core.networks import orphan_networks
from envd.swarm.mapping import CONFIG_LABEL, SECRET_LABEL, SwarmConfig, SwarmDesired, SwarmSecret
from envd.values import labels
from envd.values.swarm_types import (
    ObservedConfig,
    ObservedSecret,
    ObservedService,
    ObservedSwarmNetwork,
)


@dataclass(frozen=True)
class SwarmObserved:
    services: tuple[ObservedService, ...] = ()
    secrets: tuple[ObservedSecret, ...] = ()
    networks: tuple[ObservedSwarmNetwork, ...] = ()
    configs: tuple[ObservedConfig, ...] = ()


# In the order a deploy applies them ("ok": a service left as it is).
SwarmActionKind = Literal[
    "create-network",
    "create-secret",
    "create-config",
    "create-service",
    "update-service",
    "ok",
    "remove-service",
    "remove-secret",
    "remove-config",
    "remove-network",
]


@dataclass(frozen=True)
class SwarmAction:
    kind: SwarmActionKind
    resource: str
    reason: str
    name: str = ""
    service: str = ""

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class SwarmPlan:
    project: str
    actions: tuple[SwarmAction, ...]

    @property
    def changes(self) -> tuple[SwarmAction, ...]:
        return tuple(a for a in self.actions if a.kind != "ok")

    def of(self, *kinds: SwarmActionKind) -> list[SwarmAction]:
        return [a for a in self.actions if a.kind in kinds]


@dataclass(frozen=True)
class VersionedKind:
    """Secrets and configs are immutable in a swarm and versioned alike: a name
    holds its value's digest, so a new value is a new object, made before the
    services move to it, and the old one goes once nothing uses it."""

    noun: str
    label: str  # the label naming the spec's key on every version
    create: SwarmActionKind
    remove: SwarmActionKind
    changed: str  # why a new version is made


SECRETS = VersionedKind(
    "secret", SECRET_LABEL, "create-secret", "remove-secret", "its value changed"
)
CONFIGS = VersionedKind(
    "config", CONFIG_LABEL, "create-config", "remove-config", "its content changed"
)
Versioned = SwarmSecret | SwarmConfig
ObservedVersioned = ObservedSecret | ObservedConfig


@dataclass(frozen=True)
class VersionedActions:
    creates: list[SwarmAction]
    removes: list[SwarmAction]


def versioned(
    kind: VersionedKind,
    desired: Mapping[str, Versioned],
    observed: Sequence[ObservedVersioned],
) -> VersionedActions:
    """The versions of one kind to create (missing ones) and to remove (unwanted ones)."""
    have = {o.name for o in observed}
    creates = [
        SwarmAction(
            kind.create,
            f"{kind.noun} {name}",
            kind.changed
            if any(o.labels.get(kind.label) == obj.key for o in observed)
            else "does not exist",
            name,
        )
        for name, obj in sorted(desired.items())
        if name not in have
    ]
    keys = {obj.key for obj in desired.values()}
    removes = [
        SwarmAction(
            kind.remove,
            f"{kind.noun} {obs.name}",
            "replaced by a new version"
            if obs.labels.get(kind.label, "") in keys
            else "no longer used",
            obs.id,
        )
        for obs in sorted(observed, key=lambda o: o.name)
        if obs.name not in desired
    ]
    return VersionedActions(creates, removes)


def version_rows(
    kind: VersionedKind,
    desired: Mapping[str, Versioned] | None,
    observed: Sequence[ObservedVersioned],
    running: Mapping[str, Sequence[str]],
    wanted_by: Mapping[str, Sequence[str]],
) -> list[dict[str, Any]]:
    """Pure: the ``status`` rows of one kind's versions (no value, only names).

    A deployed version is "current" (the spec's), "previous version" (of a key
    the spec still has: a deploy removes it once no task uses it) or "not in
    the spec"; a version the spec wants that the swarm lacks is "not deployed".
    Without a desired state (the spec did not load) each is "deployed".
    ``running``: the services the swarm runs mounting each versioned name;
    ``wanted_by``: the spec's services that will mount it (for "not deployed").
    """
    keys = {obj.key for obj in (desired or {}).values()}
    rows: list[dict[str, Any]] = []
    for obs in sorted(observed, key=lambda o: o.name):
        key = obs.labels.get(kind.label, obs.name)
        if desired is None:
            state = "deployed"
        elif obs.name in desired:
            state = "current"
        else:
            state = "previous version" if key in keys else "not in the spec"
        rows.append(
            {
                "name": key,
                "swarm_name": obs.name,
                "id": obs.id[:12],
                "state": state,
                "services": sorted(running.get(obs.name, ())),
            }
        )
    have = {o.name for o in observed}
    for name, obj in sorted((desired or {}).items()):
        if name not in have:
            rows.append(
                {
                    "name": obj.key,
                    "swarm_name": name,
                    "id": "",
                    "state": "not deployed",
                    "services": sorted(wanted_by.get(name, ())),
                }
            )
    return rows


def changed_fields(old: str, new: str) -> list[str]:
    """``envd.core.hashing.changed_fields``, container fields named as in the spec."""
    return sorted(k.removeprefix("container.") for k in core_changed_fields(old, new))


def plan_swarm(desired: SwarmDesired, observed: SwarmObserved) -> SwarmPlan:
    """Pure: what a deploy does, in order, each action with its reason."""
    actions: list[SwarmAction] = []
    have_nets = {n.name for n in observed.networks}
    for net in sorted(desired.networks.values(), key=lambda n: n.name):
        if not net.external and net.name not in have_nets:
            actions.append(
                SwarmAction("create-network", f"network {net.name}", "does not exist", net.name)
            )
    secrets = versioned(SECRETS, desired.secrets, observed.secrets)
    configs = versioned(CONFIGS, desired.configs, observed.configs)
    actions += secrets.creates + configs.creates
    by_name = {s.name: s for s in observed.services}
    for svc_key, svc in sorted(desired.services.items()):
        resource = f"service {svc.spec.name}"
        current = by_name.get(svc.spec.name)
        if current is None:
            actions.append(
                SwarmAction("create-service", resource, "does not exist", svc.spec.name, svc_key)
            )
        elif current.labels.get(labels.CONFIG_HASH) != svc.config_hash:
            changed = changed_fields(current.labels.get(labels.FIELD_HASHES, ""), svc.field_hashes)
            reason = ("changed: " + ", ".join(changed)) if changed else "its config changed"
            actions.append(SwarmAction("update-service", resource, reason, svc.spec.name, svc_key))
        else:
            actions.append(SwarmAction("ok", resource, "up to date", svc.spec.name, svc_key))
    wanted = {s.spec.name for s in desired.services.values()}
    for obs in sorted(observed.services, key=lambda s: s.name):
        if obs.name not in wanted:
            actions.append(
                SwarmAction(
                    "remove-service",
                    f"service {obs.name}",
                    "no longer in the spec (or its profile is off)",
                    obs.id,
                    obs.labels.get(labels.SERVICE, ""),
                )
            )
    actions += secrets.removes + configs.removes
    for obs_net in orphan_networks(desired.networks.values(), observed.networks):
        actions.append(
            SwarmAction("remove-network", f"network {obs_net.name}", "no longer used", obs_net.id)
        )
    return SwarmPlan(desired.project, tuple(actions))


# --------------------------------------------------------------------------- the engine side
