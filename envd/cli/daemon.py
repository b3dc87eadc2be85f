"""The project's daemon and what stands beside it: daemon, events, schema."""

from __future__ import annotations

import json
import sys

import click

from envd.cli._common import Ctx, _json_opt, _project_opts
from envd.values.errors import UsageError


@click.command()
@_project_opts()
@click.pass_obj
def daemon(obj: Ctx) -> None:
    """Run the project's daemon in the foreground (what `up` starts in the background)."""
    from envd.daemon.main import run_daemon

    sys.exit(run_daemon(obj.target()))


@click.command()
@_json_opt
@click.option("--since", type=int, default=None, help="Replay events after this sequence number.")
@_project_opts()
@click.pass_obj
def events(obj: Ctx, as_json: bool, since: int | None) -> None:
    """Stream what the daemon sees and does."""
    from envd.daemon import process

    loaded = obj.load()
    client = process.running(loaded.project_dir, loaded.environment)
    if client is None:
        raise UsageError(f"no daemon runs for project {loaded.project!r}; start one with `envd up`")
    try:
        for ev in client.events(since=since):
            if as_json:
                click.echo(json.dumps(ev))
            else:
                import datetime

                when = datetime.datetime.fromtimestamp(float(ev.get("time", 0))).strftime(
                    "%H:%M:%S.%f"
                )[:-3]
                rid = f" [{ev['reconcile_id']}]" if ev.get("reconcile_id") else ""
                click.echo(
                    f"{when} {ev.get('kind', ''):<12} {ev.get('resource', '')}: {ev.get('message', '')}{rid}"
                )
    except KeyboardInterrupt:
        pass


@click.command()
def schema() -> None:
    """Print the JSON Schema of envd.toml."""
    from envd.spec.schema import render

    click.echo(render(), nl=False)


COMMANDS = (daemon, events, schema)
