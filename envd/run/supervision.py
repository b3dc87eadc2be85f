"""What `envd status` adds for the supervisor: each service's state word, a
one-shot's exit code and time, heal counts and flap marks, and the last log
lines of a service that failed or flaps (secret values masked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envd.core.desired import DesiredProject
from envd.core.status import service_state
from envd.engine.base import Engine
from envd.values.errors import EnvdError

LOG_LINES = 10


def add_supervision(
    engine: Engine,
    desired: DesiredProject,
    report: dict[str, Any],
    heal: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Annotate ``report["services"]`` in place (one inspect per exited container)."""
    heal = heal or {}
    for entry in report.get("services", []):
        name = entry["name"]
        info = heal.get(name)
        flapping = bool(info and info.get("flapping"))
        entry["oneshot"] = desired.oneshot(name)
        entry["state"] = service_state(entry, flapping)
        if info is not None:
            entry["heal"] = dict(info)
        exited = [c for c in entry["containers"] if c["status"] == "exited"]
        if exited and entry["state"] in ("completed", "failed"):
            worst = max(exited, key=lambda c: (c["exit_code"] != 0, c["replica"]))
            entry["exit_code"] = worst["exit_code"]
            try:
                finished = engine.container_state(worst["id"]).finished_at
            except EnvdError:
                finished = None
            entry["finished_at"] = finished
            if entry["state"] == "completed":
                entry["completed_at"] = finished
        if entry["state"] in ("failed", "flapping") and entry["containers"]:
            target = next(
                (c for c in entry["containers"] if c["status"] == "exited" and c["exit_code"]),
                entry["containers"][0],
            )
            entry["last_logs"] = _logs(engine, desired, target["id"])


def _logs(engine: Engine, desired: DesiredProject, container_id: str) -> list[str]:
    try:
        lines = engine.container_logs(container_id, tail=LOG_LINES)
    except EnvdError:
        return []
    return redact(desired, lines)


def redact(desired: DesiredProject, lines: list[str]) -> list[str]:
    """``lines`` with every secret value of the project masked (a service may print one)."""
    values = {
        s.value.decode("utf-8", "replace").strip()
        for svc in desired.services.values()
        for s in svc.template.secrets
    }
    values = {v for v in values if len(v) >= 4}
    out = []
    for line in lines:
        for v in values:
            line = line.replace(v, "***")
        out.append(line)
    return out
