"""What the dashboard shows, as one JSON document built from the daemon's own
state: the status report (desired vs actual per service), the dependency
graph, the reason of each service's last change, and the recent events.

Pure: it reads only the values handed to it, so it is tested without a
daemon. Nothing here holds a secret value: the status report and the events
carry none, and the graph and ports come from the desired state's names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from envd.core.desired import DesiredProject

# Events that say why a service's containers last changed.
_CHANGES = frozenset({"create", "recreate", "start", "remove", "restart", "stop", "heal"})


def graph(desired: DesiredProject | None) -> dict[str, Any]:
    """Nodes with their depth (dependencies first) and labelled edges."""
    if desired is None:
        return {"nodes": [], "edges": []}
    depth: dict[str, int] = {}
    for level, names in enumerate(desired.levels()):
        for name in names:
            depth[name] = level
    nodes = [{"id": name, "level": depth.get(name, 0)} for name in sorted(desired.services)]
    edges = [
        {"from": name, "to": dep, "condition": cond.condition}
        for name, svc in sorted(desired.services.items())
        for dep, cond in sorted(svc.depends_on.items())
        if dep in desired.services
    ]
    return {"nodes": nodes, "edges": edges}


def last_changes(events: Sequence[Mapping[str, object]]) -> dict[str, dict[str, object]]:
    """Per service, the last event that changed its containers and why."""
    out: dict[str, dict[str, object]] = {}
    for ev in events:
        service = ev.get("service")
        if not service or ev.get("kind") not in _CHANGES or ev.get("phase") != "working":
            continue
        out[str(service)] = {
            "kind": ev.get("kind"),
            "reason": ev.get("message"),
            "seq": ev.get("seq"),
        }
    return out


def page_state(
    status: Mapping[str, Any],
    desired: DesiredProject | None,
    events: Sequence[Mapping[str, object]],
    watching: bool,
) -> dict[str, Any]:
    """The dashboard's document: ``status`` (the daemon's report) plus what the page adds."""
    daemon = dict(status.get("daemon", {}))
    changes = last_changes(events)
    services = []
    for svc in status.get("services", []):
        entry = dict(svc)
        entry["last_change"] = changes.get(str(svc.get("name")))
        known = desired.services.get(str(svc.get("name"))) if desired else None
        entry["has_build"] = known is not None and known.build is not None
        services.append(entry)
    spec_error = daemon.get("last_error") if daemon.get("last_result") == "invalid-spec" else None
    return {
        "project": status.get("project") or (desired.project if desired else ""),
        "daemon": daemon,
        "watching": watching,
        "engine_error": status.get("engine_error"),
        "spec_error": spec_error,
        "services": services,
        "orphans": status.get("orphans", []),
        "graph": graph(desired),
        "events": list(events)[-200:],
    }
