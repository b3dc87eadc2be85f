"""The Docker Swarm target: `envd deploy --target swarm`, `status`/`down --target swarm`.

See docs/swarm.md. ``envd.cli.app`` imports this module only when `deploy`
runs (or every command is listed): the local life cycle never pays for it.
`status`/`down --target swarm` live in ``envd.cli._swarm``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from envd.cli._common import Ctx, F, _json_opt, _project_opts, err, holding, lock_opt
from envd.cli._swarm import swarm_engine
from envd.values.errors import EnvironmentFailed


def _endpoint_mode_opt(f: F) -> F:
    return click.option(
        "--endpoint-mode",
        type=click.Choice(["auto", "vip", "dnsrr"]),
        default="auto",
        envvar="ENVD_SWARM_ENDPOINT_MODE",
        show_default=True,
        help="vip: virtual IPs and the routing mesh; dnsrr: DNS round robin and host-mode"
        " ports (for kernels without IPVS); auto: vip unless this kernel lacks IPVS.",
    )(f)


def _notes(notes: Any, as_json: bool) -> None:
    if not as_json:
        for note in notes:
            err(f"note: {note}")


@click.command()
@click.option(
    "--target",
    type=click.Choice(["swarm"]),
    required=True,
    help="Where to deploy (swarm: the Docker Swarm this engine manages).",
)
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to wait for the services to run their new spec.",
)
@click.option("--no-wait", is_flag=True, help="Do not wait for the services to converge.")
@click.option("--dry-run", is_flag=True, help="Show what the deploy would change; change nothing.")
@_endpoint_mode_opt
@click.option("--frozen", is_flag=True, help="Refuse to deploy unless envd.lock matches the spec.")
@lock_opt
@_json_opt
@_project_opts()
@click.pass_obj
def deploy(
    obj: Ctx,
    target: str,
    timeout: float,
    no_wait: bool,
    dry_run: bool,
    frozen: bool,
    endpoint_mode: str,
    lock_timeout: float | None,
    as_json: bool,
) -> None:
    """Deploy the spec to a Docker Swarm: services, overlay network, secrets."""
    import time
    from dataclasses import replace

    from envd.cli.progress import make_progress
    from envd.inputs.prepare import prepare
    from envd.swarm.deploy import deploy as swarm_deploy
    from envd.swarm.deploy import prepare_swarm
    from envd.swarm.ops import observe_swarm
    from envd.swarm.plan import plan_swarm

    started = time.monotonic()
    loaded, desired = prepare(replace(obj.target(), swarm=True), frozen=frozen, acting=True)
    eng = swarm_engine()
    if dry_run:
        wanted = prepare_swarm(eng, loaded, desired, endpoint_mode=endpoint_mode, build=False)
        the_plan = plan_swarm(wanted, observe_swarm(eng, wanted.project))
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "project": wanted.project,
                        "target": target,
                        "builds": list(wanted.builds),
                        "actions": [a.to_json() for a in the_plan.actions],
                        "notes": list(wanted.notes),
                    },
                    indent=2,
                )
            )
            return
        _notes(wanted.notes, as_json)
        click.echo(f"Project {wanted.project} on the swarm")
        for b in wanted.builds:
            click.echo(f"  {'build':<15} {b}")
        width = max((len(a.resource) for a in the_plan.actions), default=10)
        for a in the_plan.actions:
            click.echo(f"  {a.kind:<15} {a.resource:<{width}}  {a.reason}")
        n = len(the_plan.changes) + len(wanted.builds)
        click.echo(f"{n} change(s)" if n else "Nothing to do: the deploy is up to date.")
        return
    progress = make_progress(as_json)
    try:
        with holding(loaded.project, "envd deploy", lock_timeout):
            wanted = prepare_swarm(eng, loaded, desired, progress, endpoint_mode)
            _notes(wanted.notes, as_json)
            result = swarm_deploy(eng, wanted, progress, wait=not no_wait, timeout=timeout)
    except EnvironmentFailed as exc:
        progress.close()
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "result": "failed",
                        "failures": [
                            {"service": f.service, "reason": f.reason} for f in exc.failures
                        ],
                    }
                )
            )
        else:
            for f in exc.failures:
                err(f"service {f.service!r} {f.reason}")
        raise
    progress.close()
    elapsed = time.monotonic() - started
    changes = result.plan.changes
    if as_json:
        click.echo(
            json.dumps(
                {
                    "result": "ok",
                    "project": wanted.project,
                    "target": target,
                    "changes": [a.to_json() for a in changes],
                    "services": result.services,
                    "warnings": result.warnings,
                    "notes": list(wanted.notes),
                    "seconds": round(elapsed, 3),
                }
            )
        )
        return
    for w in result.warnings:
        err(f"warning: {w}")
    what = f"{len(changes)} change(s)" if changes else "nothing changed"
    click.echo(
        f"Project {wanted.project} is deployed on the swarm: {len(wanted.services)} service(s),"
        f" {what} ({elapsed:.1f}s).",
        err=True,
    )


COMMANDS = (deploy,)
