"""``envd status`` as text, from its report, with the standard library alone.

One renderer for both entries: the click command (``envd.cli.project``)
and the lean one (``envd.cli._lean_status``) print the lines made here, so
their output cannot drift apart.
"""

from __future__ import annotations

import datetime

from envd.core.status_text import state_text

# typing (and collections.abc) cost milliseconds to import; the lean entry renders this.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any


def engine_line(desc: Mapping[str, str]) -> str:
    """One line naming the engine envd talks to, for ``status``."""
    context = desc.get("context") or ""
    via = f", context {context}" if context and context != "default" else ""
    return (
        f"engine: {desc.get('name', '?')} {desc.get('version', '?')} at"
        f" {desc.get('endpoint', '?')}{via} (API {desc.get('api_version', '?')})"
    )


def table_lines(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip() for r in rows]


def when(ts: object) -> str:
    if not isinstance(ts, int | float):
        return ""
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def state_cell(entry: Mapping[str, Any]) -> str:
    return state_text(entry, when(entry.get("finished_at")))


def detail_lines(report: Mapping[str, Any]) -> list[str]:
    """Below the table: why a service failed or flaps, with its last log lines."""
    out: list[str] = []
    for s in report.get("services", []):
        lines = s.get("last_logs")
        if s.get("state") == "flapping":
            since = when((s.get("heal") or {}).get("flapping_since"))
            out.append(
                f"{s['name']}: flapping since {since}: envd stopped healing it;"
                f" fix it, then `envd up --rerun {s['name']}`"
            )
        elif s.get("state") == "failed" and s.get("oneshot"):
            out.append(
                f"{s['name']}: one-shot failed (exit {s.get('exit_code')}); it runs again when"
                f" its inputs change or with `envd up --rerun {s['name']}`"
            )
        elif not lines:
            continue
        if lines:
            out.append(f"--- last {len(lines)} log lines of {s['name']} ---")
            out.extend(f"  {s['name']} | {line}" for line in lines)
    return out


def render(report: Mapping[str, Any]) -> list[str]:
    """Every line ``envd status`` prints for ``report``."""
    out: list[str] = []
    info = report.get("daemon")
    if info:
        last = info.get("last_reconcile")
        at = datetime.datetime.fromtimestamp(last).strftime("%H:%M:%S") if last else "never"
        out.append(f"daemon pid {info['pid']}: last reconcile at {at} ({info['last_result']})")
        if info.get("last_error"):
            out.append(f"last error: {info['last_error']}")
    else:
        out.append("no daemon runs for this project (`envd up` starts one)")
    if report.get("engine"):
        out.append(engine_line(report["engine"]))
    rows = [("SERVICE", "STATE", "DESIRED", "ACTUAL", "HEALTH", "CONTAINERS", "DRIFT")]
    for s in report["services"]:
        rows.append(
            (
                s["name"],
                state_cell(s),
                str(s["desired_replicas"]),
                s["actual"],
                s["health"] or "-",
                ",".join(c["id"] for c in s["containers"]) or "-",
                "; ".join(s["drift"]) or "-",
            )
        )
    for o in report["orphans"]:
        rows.append(
            (
                o["service"] or "?",
                "orphan",
                "0",
                o["status"],
                "-",
                o["id"],
                "orphan: not in the spec",
            )
        )
    out.extend(table_lines(rows))
    out.extend(f"project drift: {d}" for d in report.get("drift", ()))
    out.extend(detail_lines(report))
    unchecked = sorted({n for s in report["services"] for n in s.get("secrets_not_checked", ())})
    if unchecked:
        out.append(f"secrets not checked (their values come from commands): {', '.join(unchecked)}")
    return out
