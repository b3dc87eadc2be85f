"""``plan_swarm`` (pure): compare the desired swarm objects with one observation
and return typed actions, each with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from envd.core.hashing import changed_fields as core_changed_fields
from envd.core.networks import orphan_networks
from envd.swarm.mapping import CONFIG_LABEL, SECRET_LABEL, SwarmDesired
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
    have_secrets = {s.name for s in observed.secrets}
    for name, sec in sorted(desired.secrets.items()):
        if name not in have_secrets:
            others = [s.name for s in observed.secrets if s.labels.get(SECRET_LABEL) == sec.key]
            reason = "its value changed" if others else "does not exist"
            actions.append(SwarmAction("create-secret", f"secret {name}", reason, name))
    # configs: immutable in swarm; new content is a new version
    have_configs = {c.name for c in observed.configs}
    for name, cfg in sorted(desired.configs.items()):
        if name not in have_configs:
            others = [c.name for c in observed.configs if c.labels.get(CONFIG_LABEL) == cfg.key]
            reason = "its content changed" if others else "does not exist"
            actions.append(SwarmAction("create-config", f"config {name}", reason, name))
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
    for obs_secret in sorted(observed.secrets, key=lambda s: s.name):
        if obs_secret.name not in desired.secrets:
            key = obs_secret.labels.get(SECRET_LABEL, "")
            reason = (
                "replaced by a new version"
                if any(s.key == key for s in desired.secrets.values())
                else "no longer used"
            )
            actions.append(
                SwarmAction("remove-secret", f"secret {obs_secret.name}", reason, obs_secret.id)
            )
    for obs_config in sorted(observed.configs, key=lambda c: c.name):
        if obs_config.name not in desired.configs:
            key = obs_config.labels.get(CONFIG_LABEL, "")
            reason = (
                "replaced by a new version"
                if any(c.key == key for c in desired.configs.values())
                else "no longer used"
            )
            actions.append(
                SwarmAction("remove-config", f"config {obs_config.name}", reason, obs_config.id)
            )
    for obs_net in orphan_networks(desired.networks.values(), observed.networks):
        actions.append(
            SwarmAction("remove-network", f"network {obs_net.name}", "no longer used", obs_net.id)
        )
    return SwarmPlan(desired.project, tuple(actions))


# --------------------------------------------------------------------------- the engine side
