"""The project's life cycle on this engine: validate, plan, up, down, status.

The commands most runs use: ``envd.cli.app`` attaches them when it starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from envd.cli._common import (
    Ctx,
    _json_opt,
    _project_opts,
    _rel,
    _target_opt,
    engine,
    err,
    holding,
    lock_opt,
)
from envd.values.errors import (
    EngineError,
    EnvironmentFailed,
    SpecError,
    UsageError,
)

_strict_opt = click.option(
    "--strict", is_flag=True, help="Unset variables are errors (exit 2), not warnings."
)


def _warnings(
    obj: Ctx, strict: bool, select: bool = True, lines: list[str] | None = None
) -> list[dict[str, Any]]:
    """Print the spec's warnings (unset variables) to stderr; raise when strict.
    ``lines``: also appended there as printed (the lean entry's witness)."""
    from dataclasses import asdict

    from envd.spec.read import preflight, render_warning

    found = preflight(
        obj.project_dir, obj.file, obj.environment, obj.profiles, None, strict, select
    )
    for w in found:
        click.echo(render_warning(w), err=True)
        if lines is not None:
            lines.append(render_warning(w))
    return [asdict(w) for w in found]


# --------------------------------------------------------------------------- validate


@click.command()
@_json_opt
@_strict_opt
@_project_opts()
@click.pass_obj
def validate(obj: Ctx, as_json: bool, strict: bool) -> None:
    """Parse and validate the spec (every environment overlay too)."""
    loaded = obj.load()
    warnings = _warnings(obj, strict, select=False)
    problems: list[Any] = []
    envs = sorted(loaded.spec.environments) if obj.environment is None else []
    for env in envs:
        try:
            obj.load(env)
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    services = len(loaded.spec.services)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "valid": True,
                    "project": loaded.project,
                    "services": services,
                    "environments": sorted(loaded.spec.environments),
                    "warnings": warnings,
                }
            )
        )
    else:
        extra = f", {len(envs)} environment(s)" if envs else ""
        click.echo(
            f"{_rel(loaded.file)} is valid: project {loaded.project!r}, {services} service(s){extra}"
        )


# --------------------------------------------------------------------------- plan


@click.command()
@_json_opt
@_strict_opt
@_project_opts()
@click.pass_obj
def plan(obj: Ctx, as_json: bool, strict: bool) -> None:
    """Show what `up` would change, per resource, and why (changes nothing)."""
    from envd.core.status import unchecked_secrets
    from envd.inputs.consent import command_secrets, unapproved
    from envd.inputs.prepare import prepare
    from envd.run.bind_dirs import bind_users, missing_bind_dirs
    from envd.run.converge import plan_project

    warnings = _warnings(obj, strict)
    # No host command runs here: command secrets stay unread (and unchecked).
    loaded, desired = prepare(obj.target())
    unread = command_secrets(loaded)
    pending = unapproved(loaded)
    the_plan, _ = plan_project(engine(), desired)
    the_plan = unchecked_secrets(the_plan, unread)
    not_run = sorted({n for names in unread.values() for n in names})
    new_dirs = missing_bind_dirs(desired)
    if as_json:
        data = the_plan.to_json()
        data["creates_directories"] = new_dirs
        data["unapproved"] = [i.to_json() for i in pending]
        data["secrets_not_read"] = not_run
        data["warnings"] = warnings
        click.echo(json.dumps(data, indent=2))
        return
    marks = {
        "create": "+",
        "create-network": "+",
        "recreate-network": "~",
        "create-volume": "+",
        "pull": "↓",
        "build": "⚙",
        "recreate": "~",
        "start": "▶",
        "remove": "-",
        "remove-network": "-",
        "ok": "=",
        "pending": "?",
    }
    env = f" (environment {desired.environment})" if desired.environment else ""
    click.echo(f"Project {desired.project}{env}")
    width = max((len(a.resource) for a in the_plan.actions), default=10)
    for a in the_plan.actions:
        click.echo(f"  {marks.get(a.kind, ' ')} {a.kind:<14} {a.resource:<{width}}  {a.reason}")
    for path in new_dirs:
        # Compose's rule: a missing bind source becomes a directory at `up`.
        users = ", ".join(bind_users(desired, path))
        click.echo(f"  + {'create-dir':<14} {_rel(path)}  bind source of {users}; `up` creates it")
    for p in the_plan.problems:
        click.echo(f"  ! {p}")
    n = len(the_plan.changes) + len(new_dirs)
    click.echo(f"{n} change(s)" if n else "Nothing to do: the project is up to date.")
    if not_run:
        click.echo(
            f"Not run: the command source(s) of secret(s) {', '.join(not_run)}"
            " (plan runs no host command; their values are not checked)."
        )
    if pending:
        click.echo("Not approved (`envd up` refuses until you run `envd allow`):")
        for item in pending:
            click.echo(f"  ! {item.describe()}")


# --------------------------------------------------------------------------- up / down


@click.command()
@click.option("--once", is_flag=True, help="Converge and wait, then exit (no daemon).")
@click.option(
    "--timeout",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds to wait for services to become ready.",
)
@click.option("--no-wait", is_flag=True, help="Do not wait for services to become ready.")
@click.option("--frozen", is_flag=True, help="Refuse to start unless envd.lock matches the spec.")
@click.option("--force-recreate", is_flag=True, help="Recreate containers even if unchanged.")
@click.option(
    "--rerun",
    "rerun",
    multiple=True,
    metavar="SERVICE",
    help="Run SERVICE again (a one-shot, or one envd stopped healing); repeatable.",
)
@lock_opt
@_json_opt
@_strict_opt
@_project_opts()
@click.pass_obj
def up(
    obj: Ctx,
    once: bool,
    timeout: float,
    no_wait: bool,
    frozen: bool,
    force_recreate: bool,
    rerun: tuple[str, ...],
    lock_timeout: float | None,
    as_json: bool,
    strict: bool,
) -> None:
    """Converge the project, wait until every service is ready, leave a daemon.

    The daemon keeps the project converged (hot reload, drift repair) until
    `envd down`, reading the spec with the environment of the last `up`
    (variables, `env` secrets). With --once: converge and wait in this
    process, no daemon (CI).
    """
    from pathlib import Path

    from envd.cli.progress import make_progress
    from envd.inputs.prepare import prepare_for_up
    from envd.run.converge import converge
    from envd.run.project_lock import timeout_from

    # A bad ENVD_LOCK_TIMEOUT is exit 2 here, not in every pass of the daemon it would start.
    lock_wait = timeout_from(lock_timeout)
    warned: list[str] = []
    _warnings(obj, strict, lines=warned)
    # From .envd/desired.cache when nothing it depends on changed (no pydantic);
    # refuses what this user has not approved before anything runs.
    came_from: list[str] = []
    desired, commands = prepare_for_up(obj.target(), frozen=frozen, outcome=came_from)
    project_dir = Path(desired.project_dir)
    unknown = sorted(set(rerun) - set(desired.services))
    if unknown:
        raise UsageError(f"--rerun {unknown[0]}: no such service in the spec (or not active)")
    eng = engine()
    if not once:
        if force_recreate:
            raise UsageError(
                "--force-recreate needs --once (the daemon never recreates unchanged containers)"
            )
        from envd.cli._up import up_with_daemon
        from envd.run.engine_limits import refuse_ignored_limits

        refuse_ignored_limits(eng, desired)  # exit 2 before a daemon is started
        up_with_daemon(
            obj, project_dir, desired, eng, None if no_wait else timeout, as_json, commands, rerun
        )
        return
    from envd.daemon import process

    if process.running(project_dir, desired.environment) is not None:
        # Two writers would race on the same containers.
        raise UsageError(
            f"a daemon already keeps project {desired.project!r} converged; use `envd up`"
            " (it asks the daemon), or `envd down` first"
        )
    progress = make_progress(as_json)
    force = frozenset(desired.services) if force_recreate else frozenset(rerun)
    try:
        # Another envd converging this project first: wait, then re-plan from what it left.
        with holding(desired.project, "envd up --once", lock_wait):
            # A run that changes nothing leaves a witness the lean entry answers the
            # next identical run from (envd.cli._lean_up). Only a desired state the
            # cache served as stored is witnessed: after a spec edit the run almost
            # always changes something, and the witness's engine questions would
            # only delay it (the next no-op then takes this path and writes it).
            witnessing = not force and not no_wait and came_from == ["hit"]
            if witnessing:
                from envd.cli import _lean_up
            witness = _lean_up.begin_run(desired) if witnessing else None
            the_plan, result = converge(
                eng,
                desired,
                progress if witness is None else _lean_up.noting(progress, witness),
                wait_ready=not no_wait,
                timeout=timeout,
                force_recreate=force,
                events=True,
            )
            if witness is not None and not the_plan.changes and not the_plan.problems:
                _lean_up.finish_run(
                    witness, obj.project_dir, obj.file, obj.environment, obj.profiles,
                    desired, result, warned,
                )  # fmt: skip
    except EnvironmentFailed as exc:
        progress.close()
        from envd.cli._up import report_failures

        report_failures(eng, exc, as_json)
        raise
    progress.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "result": "ok",
                    "project": desired.project,
                    "services": {n: p.settled or p.state for n, p in result.items()},
                }
            )
        )
    else:
        click.echo(f"Project {desired.project} is up: {len(result)} service(s) ready.", err=True)


@click.command()
@click.option(
    "-v",
    "--volumes",
    is_flag=True,
    help="Also remove the named volumes the spec declares and the anonymous volumes.",
)
@click.option("--timeout", "-t", type=int, default=None, help="Override the stop grace period (s).")
@lock_opt
@_target_opt
@_json_opt
@_project_opts()
@click.pass_obj
def down(
    obj: Ctx,
    volumes: bool,
    timeout: int | None,
    lock_timeout: float | None,
    as_json: bool,
    target: str,
) -> None:
    """Stop and remove the project's containers and networks."""
    if target == "swarm":
        from envd.cli._swarm import run_down

        run_down(obj, volumes, as_json, lock_timeout)
        return
    from envd.cli.progress import make_progress
    from envd.daemon import process
    from envd.run.teardown import remove_all, remove_declared_volumes, remove_networks

    desired = _cached_desired(obj.target())
    if desired is None:
        from envd.inputs.prepare import prepare

        _, desired = prepare(obj.target(), read_secret_values=False)
    eng = engine()
    # The daemon goes first, or it would repair what down removes; a daemon
    # that would not stop fails down here, before anything is removed.
    process.stop(Path(desired.project_dir), desired.environment, notify=err)
    with holding(desired.project, "envd down", lock_timeout):
        progress = make_progress(as_json)
        containers = eng.list_containers(desired.project)

        def grace(c: Any) -> int | None:
            if timeout is not None:
                return timeout
            svc = desired.services.get(c.service)
            # Not in the spec (any more): the grace period it was created with.
            return svc.template.stop_timeout if svc else None

        def pre_stop(c: Any) -> tuple[Any, ...]:
            svc = desired.services.get(c.service)
            return svc.pre_stop if svc else ()

        remove_all(eng, containers, grace, progress, volumes=volumes, pre_stop=pre_stop)
        networks = remove_networks(eng, desired.project, progress)
        removed_volumes = remove_declared_volumes(eng, desired, progress) if volumes else []
        progress.close()
    if networks.stuck:
        users = "; ".join(f"{n}: {', '.join(c)}" for n, c in sorted(networks.stuck.items()))
        raise EngineError(
            f"network(s) still in use by containers outside the project ({users});"
            " disconnect or remove them, then run `envd down` again"
        )
    if networks.leaked:
        err(
            f"warning: network(s) {', '.join(networks.leaked)} left in place: no container is"
            " attached, but the Docker engine still counts endpoints on them (a Docker 20.10"
            " bug, moby#42119). They are empty and harmless, the next `envd up` reuses them,"
            " and `envd down` removes them once the engine has restarted."
        )
    if as_json:
        click.echo(
            json.dumps({"result": "ok", "containers": len(containers), "volumes": removed_volumes})
        )
    else:
        click.echo(f"Project {desired.project} is down.", err=True)


# --------------------------------------------------------------------------- status


def _cached_desired(target: Any) -> Any:
    """The desired state the last ``envd up`` cached, when its inputs still hold and
    it needs no ``command`` secret (None: load the spec). Skips pydantic: at 500
    services loading the spec costs more than asking the engine."""
    import os

    from envd.inputs import desired_cache
    from envd.inputs.approvals import state_token
    from envd.inputs.keys import load_keys
    from envd.spec.paths import resolve_paths

    try:
        spec_file, base = resolve_paths(target.project_dir, target.file)
        approval = state_token(spec_file, base, target.environment, os.environ)
        keys = load_keys()
    except Exception:  # the slow path says what is wrong
        return None
    hit = desired_cache.lookup_with_commands(
        target, os.environ, False, keys, approval, run_commands=False
    )
    return None if hit is None else hit[0]


@click.command()
@_target_opt
@_json_opt
@_project_opts()
@click.pass_obj
def status(obj: Ctx, as_json: bool, target: str) -> None:
    """Per service: desired vs actual, health, container ids, drift."""
    if target == "swarm":
        from envd.cli._swarm import run_status

        run_status(obj, as_json)
        return
    from envd.daemon import process
    from envd.spec.paths import resolve_paths

    # Ask a running daemon before parsing the spec: while the spec is broken
    # the daemon still reports the last good environment and the error.
    _, project_dir = resolve_paths(obj.project_dir, obj.file)
    client = process.running(project_dir, obj.environment)
    report: dict[str, Any] = client.status() if client is not None else {}
    if "services" not in report:
        # No daemon, or one whose spec is broken: observe the engine directly.
        from envd.core.status import project_status, unchecked_secrets
        from envd.run.converge import plan_project

        desired = _cached_desired(obj.target())
        unread: dict[str, tuple[str, ...]] = {}  # a cache hit has no command source
        if desired is None:
            from envd.inputs.consent import command_secrets
            from envd.inputs.prepare import prepare

            loaded, desired = prepare(obj.target())  # runs no host command
            unread = command_secrets(loaded)
        eng = engine()
        report["engine"] = eng.describe()
        the_plan, observed = plan_project(eng, desired, restart_exited=client is None)
        the_plan = unchecked_secrets(the_plan, unread)
        report.update(project_status(desired, observed, the_plan, unread))
        from envd.cli._status import offline_supervision

        offline_supervision(eng, desired, report, project_dir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    from envd.cli._status_text import render

    # One renderer for this command and the lean entry (envd.cli._lean_status).
    for line in render(report):
        click.echo(line)


COMMANDS = (validate, plan, up, down, status)
