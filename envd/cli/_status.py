"""What `envd status` shows of the supervisor: the STATE column, heal counts,
a one-shot's result and the last log lines of a failed or flapping service.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import click

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


def when(ts: object) -> str:
    if not isinstance(ts, int | float):
        return ""
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def state_cell(entry: dict[str, Any]) -> str:
    from envd.core.status import state_text

    return state_text(entry, when(entry.get("finished_at")))


def print_details(report: dict[str, Any]) -> None:
    """Below the table: why a service failed or flaps, with its last log lines."""
    for s in report.get("services", []):
        lines = s.get("last_logs")
        if s.get("state") == "flapping":
            since = when((s.get("heal") or {}).get("flapping_since"))
            click.echo(
                f"{s['name']}: flapping since {since}: envd stopped healing it;"
                f" fix it, then `envd up --rerun {s['name']}`"
            )
        elif s.get("state") == "failed" and s.get("oneshot"):
            click.echo(
                f"{s['name']}: one-shot failed (exit {s.get('exit_code')}); it runs again when"
                f" its inputs change or with `envd up --rerun {s['name']}`"
            )
        elif not lines:
            continue
        if lines:
            click.echo(f"--- last {len(lines)} log lines of {s['name']} ---")
            for line in lines:
                click.echo(f"  {s['name']} | {line}")
