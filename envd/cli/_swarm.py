"""What the swarm target shares between commands: the engine, `down` and `status`.

`envd status --target swarm` and `envd down --target swarm` (envd.cli.project)
and `envd deploy` (envd.cli.swarm) use it; imported only when one of them
targets a swarm.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from envd.cli._common import Ctx, err, holding, table
from envd.values.errors import SpecError

if TYPE_CHECKING:
    from envd.engine.swarm.base import SwarmEngine


def swarm_engine() -> SwarmEngine:
    """A ``SwarmEngine`` that answered a ping and manages an active swarm."""
    from envd.engine.swarm.real import DockerSwarmEngine
    from envd.swarm.ops import require_manager

    eng = DockerSwarmEngine()
    eng.ping()
    require_manager(eng)
    return eng


def run_down(obj: Ctx, volumes: bool, as_json: bool, lock_timeout: float | None = None) -> None:
    """`envd down --target swarm`: remove the project's services, secrets and networks."""
    from envd.cli.progress import make_progress
    from envd.swarm.ops import down as swarm_down

    # Validated as the deploy was: a spec only a swarm accepts must come down too.
    loaded = obj.load(swarm=True)
    eng = swarm_engine()
    progress = make_progress(as_json)
    with holding(loaded.project, "envd down --target swarm", lock_timeout):
        result = swarm_down(eng, loaded.project, progress, volumes=volumes)
    progress.close()
    if as_json:
        click.echo(json.dumps({"result": "ok", **result.__dict__}))
        return
    for w in result.warnings:
        err(f"warning: {w}")
    click.echo(
        f"Project {loaded.project} is down on the swarm: {len(result.services)} service(s),"
        f" {len(result.secrets)} secret(s),"
        + (f" {len(result.configs)} config(s)," if result.configs else "")
        + f" {len(result.networks)} network(s) removed.",
        err=True,
    )


def run_status(obj: Ctx, as_json: bool) -> None:
    """`envd status --target swarm`: per service replicas, tasks and drift."""
    from envd.inputs.prepare import prepare
    from envd.swarm.deploy import prepare_swarm
    from envd.swarm.status import status as swarm_status

    loaded = obj.load(swarm=True)
    eng = swarm_engine()
    wanted = None
    try:
        # The desired state (for drift) needs the secrets' values: their digests name them.
        loaded, desired = prepare(replace(obj.target(), swarm=True))
    except SpecError as exc:
        err(f"note: drift is not shown: {exc.problems[0].render()}")
    else:
        mode = os.environ.get("ENVD_SWARM_ENDPOINT_MODE", "auto")
        wanted = prepare_swarm(eng, loaded, desired, endpoint_mode=mode, build=False)
    report = swarm_status(eng, loaded.project, wanted)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = [("SERVICE", "DESIRED", "RUNNING", "UPDATE", "PORTS", "DRIFT")]
    for s in report["services"]:
        rows.append(
            (
                s["name"],
                str(s["desired_replicas"]),
                str(s["running"]),
                s["update"],
                ",".join(s["ports"]) or "-",
                s["drift"] or "-",
            )
        )
    table(rows)
    for s in report["services"]:
        if not s["tasks"]:
            continue
        click.echo(f"\n{s['swarm_name']} tasks:")
        for t in s["tasks"]:
            error = f"  {t['error']}" if t["error"] else ""
            if t["ports"]:
                error = f"  ports {','.join(t['ports'])}{error}"
            mark = "" if t["current"] else "  (previous spec)"
            click.echo(
                f"  {t['id']}  slot {t['slot']:<3} {t['node']:<16} {t['state']:<10}"
                f" desired {t['desired_state']:<9}{mark}{error}"
            )
    for kind in ("secrets", "configs"):
        if not report[kind]:
            continue
        click.echo(f"\n{kind}:")
        table(
            [("NAME", "VERSION", "STATE", "SERVICES")]
            + [
                (v["name"], v["swarm_name"], v["state"], ", ".join(v["services"]) or "-")
                for v in report[kind]
            ]
        )
