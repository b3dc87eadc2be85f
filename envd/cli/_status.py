"""What `envd status` shows of the supervisor without a daemon: heal counts read
from its state file (the text itself is ``envd.cli._status_text``'s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envd.core.heal import HealRecord


def offline_supervision(eng: Any, desired: Any, report: dict[str, Any], project_dir: Path) -> None:
    """Without a daemon: the same annotations, heal counts read from its state file."""
    from envd.daemon.heal_store import HealStore
    from envd.daemon.paths import StatePaths
    from envd.run.supervision import add_supervision

    paths = StatePaths.for_project(project_dir, desired.environment)
    store = HealStore(paths.heal) if paths.root.is_dir() else None
    heal: dict[str, dict[str, Any]] = {}
    shown = {e["name"]: {c["id"] for c in e["containers"]} for e in report.get("services", [])}
    for name, svc in desired.services.items():
        r = store.get(name) if store is not None else HealRecord()
        if r.containers and not any(cid[:12] in shown.get(name, ()) for cid in r.containers):
            r = HealRecord(total=r.total)  # its containers were replaced since (as the daemon does)
        heal[name] = {
            "enabled": svc.heal.enabled,
            "heals": r.total,
            "last_heal": r.heals[-1] if r.heals else None,
            "flapping": r.flapping,
            "flapping_since": r.flapping_since,
        }
    add_supervision(eng, desired, report, heal)
