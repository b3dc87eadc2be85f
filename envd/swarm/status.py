"""``status --target swarm``: per service replicas, tasks and drift; the project's
secret and config versions. Reads the engine, changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from envd.engine.swarm.base import SwarmEngine
from envd.swarm.mapping import TARGET, SwarmDesired, project_labels
from envd.swarm.plan import CONFIGS, SECRETS, changed_fields, version_rows
from envd.values import labels
from envd.values.errors import EngineError, EngineUnavailable
from envd.values.swarm_types import ObservedService, ObservedTask


def _key(svc: ObservedService) -> str:
    return svc.labels.get(labels.SERVICE, svc.name)


def _mounts(services: Iterable[tuple[str, Iterable[str]]]) -> dict[str, list[str]]:
    """Versioned name -> the services mounting it, from (service, names) pairs."""
    out: dict[str, list[str]] = {}
    for key, names in services:
        for name in names:
            out.setdefault(name, []).append(key)
    return out


def status(
    engine: SwarmEngine, project: str, desired: SwarmDesired | None = None
) -> dict[str, Any]:
    """Per service: desired vs running tasks, update state, ports, and its tasks; then
    the secret and config versions (names and states, never a value)."""
    common = project_labels(project)
    services = engine.list_services(common)
    tasks = engine.list_tasks([s.id for s in services])
    try:
        nodes = engine.node_names()
    except EngineUnavailable:
        raise
    except EngineError:
        nodes = {}
    report: dict[str, Any] = {"project": project, "target": TARGET, "services": []}
    seen: set[str] = set()
    for svc in sorted(services, key=lambda s: s.name):
        key = _key(svc)
        seen.add(key)
        want = desired.services.get(key) if desired is not None else None
        drift = ""
        if desired is not None:
            if want is None:
                drift = "not in the spec"
            elif svc.labels.get(labels.CONFIG_HASH) != want.config_hash:
                changed = changed_fields(svc.labels.get(labels.FIELD_HASHES, ""), want.field_hashes)
                drift = "changed: " + (", ".join(changed) or "config")
        mine = [t for t in tasks if t.service_id == svc.id]
        # Newest first per slot; keep the recent history swarm retains.
        mine.sort(key=lambda t: (t.slot, t.timestamp), reverse=False)
        report["services"].append(
            {
                "name": key,
                "swarm_name": svc.name,
                "id": svc.id[:12],
                "version": svc.version,
                "desired_replicas": svc.replicas,
                "running": sum(
                    1 for t in mine if t.state == "running" and t.desired_state == "running"
                ),
                "update": svc.update_state or "-",
                "update_message": svc.update_message,
                "ports": [
                    f"{p.published}->{p.target}/{p.protocol}" for p in svc.ports if p.published
                ],
                "drift": drift,
                "tasks": [
                    {
                        "id": t.id[:12],
                        "slot": t.slot,
                        "node": nodes.get(t.node_id, t.node_id[:12]),
                        "state": t.state,
                        "desired_state": t.desired_state,
                        "error": t.error,
                        "current": bool(want is not None and t.task_hash == want.task_hash),
                        "ports": task_ports(engine, t),
                        "since": t.timestamp,
                    }
                    for t in mine
                ],
            }
        )
    if desired is not None:
        for key, want in sorted(desired.services.items()):
            if key not in seen:
                report["services"].append(
                    {
                        "name": key,
                        "swarm_name": want.spec.name,
                        "id": "",
                        "version": 0,
                        "desired_replicas": want.spec.replicas,
                        "running": 0,
                        "update": "-",
                        "update_message": "",
                        "ports": [],
                        "drift": "not deployed",
                        "tasks": [],
                    }
                )
    # A deployed version lists the services the swarm runs with it; one not
    # deployed yet, the spec's services that will mount it.
    wanted = desired.services.values() if desired is not None else ()
    report["secrets"] = version_rows(
        SECRETS,
        desired.secrets if desired is not None else None,
        engine.list_secrets(common),
        running=_mounts((_key(s), s.secrets) for s in services),
        wanted_by=_mounts((w.service, (r.secret for r in w.spec.secrets)) for w in wanted),
    )
    report["configs"] = version_rows(
        CONFIGS,
        desired.configs if desired is not None else None,
        engine.list_configs(common),
        running=_mounts((_key(s), s.configs) for s in services),
        wanted_by=_mounts((w.service, (r.config for r in w.spec.configs)) for w in wanted),
    )
    return report


def task_ports(engine: SwarmEngine, task: ObservedTask) -> list[str]:
    """Host-mode ports a running task published, with their addresses when it runs here."""
    if not task.ports or task.state != "running":
        return []
    if task.container_id:
        try:
            found = engine.container_ports(task.container_id)
        except EngineUnavailable:
            raise
        except EngineError:
            found = None
        if found is not None:
            return found
    return [f"{p.published}->{p.target}/{p.protocol}" for p in task.ports if p.published]
