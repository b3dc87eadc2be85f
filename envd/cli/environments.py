"""`envd lock` and `envd diff`: the commands that look at every environment of the spec.

``lock`` pins each environment's images to digests in envd.lock (reproducible
starts, ``up --frozen``); ``diff`` compares two environments field by field.
Imported by ``envd.cli.app`` only when one of them runs or all commands are listed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from envd.cli._common import (
    Ctx,
    _json_opt,
    _project_opts,
    _rel,
    engine,
    holding,
    lock_opt,
)
from envd.values.errors import EnvdError


@click.command()
@click.option("--check", is_flag=True, help="Report drift from envd.lock; change nothing.")
@lock_opt
@_json_opt
@_project_opts()
@click.pass_obj
def lock(obj: Ctx, check: bool, lock_timeout: float | None, as_json: bool) -> None:
    """Write envd.lock: every environment's images pinned to digests."""
    from dataclasses import replace

    from envd.cli.progress import make_progress
    from envd.inputs import lock as lockfile
    from envd.inputs.prepare import prepare
    from envd.run.lockgen import environments_of, make_lock

    if check:
        problems: list[str] = []
        for env in environments_of(obj.target()):
            try:
                prepare(
                    replace(obj.target(), environment=env), frozen=True, read_secret_values=False
                )
            except EnvdError as exc:
                problems.append(str(exc))
        if as_json:
            click.echo(json.dumps({"in_sync": not problems, "problems": problems}))
        else:
            for p in problems:
                click.echo(p)
            if not problems:
                click.echo(f"{lockfile.LOCK_FILE} matches the spec.")
        if problems:
            sys.exit(2)
        return
    progress = make_progress(as_json)
    new = make_lock(
        engine(),
        obj.target(),
        progress,
        hold=lambda project: holding(project, "envd lock", lock_timeout),
    )
    progress.close()
    from envd.spec.paths import resolve_paths

    loaded_dir = resolve_paths(obj.project_dir, obj.file)[1]
    path = lockfile.write(loaded_dir, new)
    if as_json:
        click.echo(json.dumps({"written": str(path), "environments": sorted(new.environments)}))
    else:
        n = sum(len(e.services) for e in new.environments.values())
        click.echo(
            f"wrote {_rel(path)}: {len(new.environments)} environment(s), {n} pinned service image(s)"
        )


@click.command()
@click.argument("env_a")
@click.argument("env_b")
@_json_opt
@_project_opts()
@click.pass_obj
def diff(obj: Ctx, env_a: str, env_b: str, as_json: bool) -> None:
    """Show field by field what differs between two environments ("base" for none)."""
    from envd.core.envdiff import BASE_NAMES, json_value, render_value
    from envd.core.envdiff import diff as diff_envs
    from envd.spec.load import load

    def one(name: str) -> Any:
        env = None if name in BASE_NAMES else name
        return load(obj.project_dir, obj.file, env, profiles=obj.profiles)

    rows = diff_envs(one(env_a), one(env_b))
    if as_json:
        click.echo(
            json.dumps(
                [{"path": p, env_a: json_value(a), env_b: json_value(b)} for p, a, b in rows],
                indent=2,
            )
        )
        return
    if not rows:
        click.echo(f"{env_a} and {env_b} are identical.")
        return
    width = max(len(env_a), len(env_b))
    for path, a, b in rows:
        click.echo(path)
        click.echo(f"  {env_a.ljust(width)}  {render_value(a)}")
        click.echo(f"  {env_b.ljust(width)}  {render_value(b)}")


COMMANDS = (lock, diff)
