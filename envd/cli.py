"""The command line: the only module that prints for people.

Every command maps errors to the contract's exit codes: 0 success, 1 the
environment failed, 2 bad usage or spec (nothing changed), 3 engine
unreachable. Errors are one sentence on stderr; ``--debug`` adds a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from envd import __version__
from envd.errors import (
    EngineError,
    EnvdError,
    EnvironmentFailed,
    NotFound,
    SpecError,
    UsageError,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Ctx:
    project_dir: str | None
    file: str | None
    environment: str | None
    profiles: frozenset[str]
    debug: bool

    def target(self) -> Any:
        from envd.converge import Target

        return Target(self.project_dir, self.file, self.environment, self.profiles)

    def load(self, environment: str | None = None) -> Any:
        """The validated spec for these options (``environment`` overrides ``--env``)."""
        from envd.spec.load import load

        env = self.environment if environment is None else environment
        return load(self.project_dir, self.file, env, profiles=self.profiles)


def engine() -> Any:
    from envd.engine.real import DockerEngine

    eng = DockerEngine()
    eng.ping()
    return eng


def err(message: str) -> None:
    click.echo(f"envd: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "project_dir", metavar="DIR", help="Project directory (default: .).")
@click.option("-f", "--file", "file", metavar="FILE", help="Spec file (default: DIR/envd.toml).")
@click.option(
    "--env",
    "environment",
    envvar="ENVD_ENV",
    metavar="NAME",
    help="Environment overlay to apply (also ENVD_ENV).",
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    envvar="ENVD_PROFILES",
    metavar="NAME",
    help="Enable services of this profile (repeatable).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, prog_name="envd")
@click.pass_context
def main(
    ctx: click.Context,
    project_dir: str | None,
    file: str | None,
    environment: str | None,
    profiles: tuple[str, ...],
    debug: bool,
) -> None:
    """envd: declarative, reproducible container environments."""
    ctx.obj = Ctx(project_dir, file, environment or None, frozenset(profiles), debug)


def _json_opt(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(f)


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _: click.Parameter, value: Any) -> Any:
        obj = ctx.find_object(Ctx)
        if obj is not None and value not in (None, ()):
            if name == "profiles":
                obj.profiles = obj.profiles | frozenset(value)
            else:
                setattr(obj, name, value)
        return value

    return callback


def _target_opt(f: F) -> F:
    return click.option(
        "--target",
        type=click.Choice(["local", "swarm"]),
        default="local",
        show_default=True,
        help="Where the project runs: this engine's containers, or a Docker Swarm deploy.",
    )(f)


def _project_opts(with_file: bool = True) -> Callable[[F], F]:
    """-C/-f/--env/--profile after the command too (`envd plan -C dir`)."""

    def decorate(f: F) -> F:
        f = click.option(
            "--profile",
            "profile_",
            multiple=True,
            expose_value=False,
            callback=_set("profiles"),
            metavar="NAME",
            help="Enable services of this profile.",
        )(f)
        f = click.option(
            "--env",
            "env_",
            expose_value=False,
            callback=_set("environment"),
            metavar="NAME",
            help="Environment overlay to apply.",
        )(f)
        if with_file:
            f = click.option(
                "-f",
                "--file",
                "file_",
                expose_value=False,
                callback=_set("file"),
                metavar="FILE",
                help="Spec file.",
            )(f)
        f = click.option(
            "-C",
            "dir_",
            expose_value=False,
            callback=_set("project_dir"),
            metavar="DIR",
            help="Project directory.",
        )(f)
        return f

    return decorate


# --------------------------------------------------------------------------- validate / schema


@main.command()
@_json_opt
@_project_opts()
@click.pass_obj
def validate(obj: Ctx, as_json: bool) -> None:
    """Parse and validate the spec (every environment overlay too)."""
    loaded = obj.load()
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
                }
            )
        )
    else:
        extra = f", {len(envs)} environment(s)" if envs else ""
        click.echo(
            f"{_rel(loaded.file)} is valid: project {loaded.project!r}, {services} service(s){extra}"
        )


@main.command()
def schema() -> None:
    """Print the JSON Schema of envd.toml."""
    from envd.spec.schema import render

    click.echo(render(), nl=False)


# --------------------------------------------------------------------------- plan


@main.command()
@_json_opt
@_project_opts()
@click.pass_obj
def plan(obj: Ctx, as_json: bool) -> None:
    """Show what `up` would change, per resource, and why (changes nothing)."""
    from envd.converge import plan_project, prepare_desired

    desired = prepare_desired(obj.target())
    the_plan, _ = plan_project(engine(), desired)
    if as_json:
        click.echo(json.dumps(the_plan.to_json(), indent=2))
        return
    marks = {
        "create": "+",
        "create-network": "+",
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
    for p in the_plan.problems:
        click.echo(f"  ! {p}")
    n = len(the_plan.changes)
    click.echo(f"{n} change(s)" if n else "Nothing to do: the project is up to date.")


# --------------------------------------------------------------------------- up / down


@main.command()
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
@_json_opt
@_project_opts()
@click.pass_obj
def up(
    obj: Ctx,
    once: bool,
    timeout: float,
    no_wait: bool,
    frozen: bool,
    force_recreate: bool,
    as_json: bool,
) -> None:
    """Converge the project, wait until every service is ready, leave a daemon.

    The daemon keeps the project converged (hot reload, drift repair) until
    `envd down`. With --once: converge and wait in this process, no daemon (CI).
    """
    from pathlib import Path

    from envd.converge import converge, prepare_desired
    from envd.progress import make_progress

    # From .envd/desired.cache when nothing it depends on changed (no pydantic).
    desired = prepare_desired(obj.target(), frozen=frozen)
    project_dir = Path(desired.project_dir)
    eng = engine()
    if not once:
        if force_recreate:
            raise UsageError(
                "--force-recreate needs --once (the daemon never recreates unchanged containers)"
            )
        _up_with_daemon(obj, project_dir, desired, eng, None if no_wait else timeout, as_json)
        return
    from envd.daemon import process

    if process.running(project_dir, desired.environment) is not None:
        # Two writers would race on the same containers.
        raise UsageError(
            f"a daemon already keeps project {desired.project!r} converged; use `envd up`"
            " (it asks the daemon), or `envd down` first"
        )
    progress = make_progress(as_json)
    force = frozenset(desired.services) if force_recreate else frozenset()
    try:
        _, result = converge(
            eng, desired, progress, wait_ready=not no_wait, timeout=timeout, force_recreate=force
        )
    except EnvironmentFailed as exc:
        progress.close()
        _report_failures(eng, exc, as_json)
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


def _up_with_daemon(
    obj: Ctx, project_dir: Any, desired: Any, eng: Any, timeout: float | None, as_json: bool
) -> None:
    from envd.daemon import process
    from envd.events import Event
    from envd.progress import make_progress

    client = process.running(project_dir, desired.environment)
    started = client is None
    if client is None:
        client = process.start(obj.target(), project_dir, desired.environment)
    generation, seq = client.reload(wait_timeout=timeout, restart_exited=True)
    progress = make_progress(as_json)
    final: dict[str, Any] | None = None
    try:
        for ev in client.events(since=seq):
            if ev.get("kind") == "pass-done" and int(ev.get("generation", 0)) >= generation:
                final = ev
                break
            if ev.get("kind") in ("reconcile", "pass-done"):
                continue
            progress(
                Event(
                    str(ev.get("kind", "")),
                    str(ev.get("resource", "")),
                    str(ev.get("message", "")),
                    ev.get("phase", "info"),
                    str(ev.get("service", "")),
                )
            )
    finally:
        progress.close()
    status = client.status()
    pid = status.get("daemon", {}).get("pid")
    result = (final or {}).get("result", "failed")
    if result == "ok":
        verb = "started" if started else "reused"
        if as_json:
            click.echo(json.dumps({"result": "ok", "project": desired.project, "daemon_pid": pid}))
        else:
            click.echo(
                f"Project {desired.project} is up; daemon (pid {pid}, {verb}) keeps it converged."
                " See `envd status`, `envd events`; stop with `envd down`.",
                err=True,
            )
        return
    message = str((final or {}).get("message", "the daemon's event stream ended"))
    if result == "invalid-spec":
        raise SpecError(message)
    if result == "engine-unavailable":
        from envd.errors import EngineUnavailable

        raise EngineUnavailable(message)
    failures = _failures_from_status(status)
    if not failures:
        from envd.errors import ServiceFailure

        failures = [ServiceFailure("-", message)]
    exc = EnvironmentFailed(failures)
    _report_failures(eng, exc, as_json)
    raise exc


def _failures_from_status(status: dict[str, Any]) -> list[Any]:
    from envd.errors import ServiceFailure

    out = []
    for s in status.get("services", []):
        bad = [
            c
            for c in s["containers"]
            if c["status"] not in ("running",)
            and not (c["status"] == "exited" and c["exit_code"] == 0)
        ]
        unhealthy = [c for c in s["containers"] if c.get("health") in ("unhealthy", "starting")]
        for c in bad or unhealthy:
            detail = c["status"] + (
                f" with code {c['exit_code']}" if c["status"] == "exited" else ""
            )
            if c.get("health"):
                detail += f", health {c['health']}"
            out.append(ServiceFailure(s["name"], f"is not ready ({detail})", c["id"]))
            break
        if not s["containers"] and s["desired_replicas"]:
            out.append(ServiceFailure(s["name"], "has no container"))
    return out


def _report_failures(eng: Any, exc: EnvironmentFailed, as_json: bool) -> None:
    for f in exc.failures:
        lines: list[str] = []
        if f.container:
            try:
                lines = eng.container_logs(f.container, tail=20)
            except EnvdError:
                lines = []
        f.log_tail = lines
        if as_json:
            continue
        err(f"service {f.service!r} {f.reason}")
        if lines:
            click.echo(f"--- last {len(lines)} log lines of {f.service} ---", err=True)
            for line in lines:
                click.echo(f"  {f.service} | {line}", err=True)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "result": "failed",
                    "failures": [
                        {"service": f.service, "reason": f.reason, "logs": f.log_tail}
                        for f in exc.failures
                    ],
                }
            )
        )


@main.command()
@click.option("--check", is_flag=True, help="Report drift from envd.lock; change nothing.")
@_json_opt
@_project_opts()
@click.pass_obj
def lock(obj: Ctx, check: bool, as_json: bool) -> None:
    """Write envd.lock: every environment's images pinned to digests."""
    from dataclasses import replace

    from envd import lock as lockfile
    from envd.converge import prepare
    from envd.lockgen import environments_of, make_lock
    from envd.progress import make_progress

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
    new = make_lock(engine(), obj.target(), progress)
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


@main.command()
@click.argument("env_a")
@click.argument("env_b")
@_json_opt
@_project_opts()
@click.pass_obj
def diff(obj: Ctx, env_a: str, env_b: str, as_json: bool) -> None:
    """Show field by field what differs between two environments ("base" for none)."""
    from envd.diffenv import BASE_NAMES, json_value, render_value
    from envd.diffenv import diff as diff_envs
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


@main.command()
@_project_opts()
@click.pass_obj
def daemon(obj: Ctx) -> None:
    """Run the project's daemon in the foreground (what `up` starts in the background)."""
    from envd.daemon.main import run_daemon

    sys.exit(run_daemon(obj.target()))


@main.command()
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


@main.command()
@click.option(
    "-v", "--volumes", is_flag=True, help="Also remove the named volumes the spec declares."
)
@click.option("--timeout", "-t", type=int, default=None, help="Override the stop grace period (s).")
@_target_opt
@_json_opt
@_project_opts()
@click.pass_obj
def down(obj: Ctx, volumes: bool, timeout: int | None, as_json: bool, target: str) -> None:
    """Stop and remove the project's containers and networks."""
    if target == "swarm":
        _swarm_down(obj, volumes, as_json)
        return
    from envd import labels
    from envd.apply import remove_all
    from envd.converge import prepare
    from envd.daemon import process
    from envd.progress import make_progress

    loaded, desired = prepare(obj.target(), read_secret_values=False)
    eng = engine()
    # The daemon goes first, or it would repair what down removes.
    process.stop(loaded.project_dir, loaded.environment)
    progress = make_progress(as_json)
    containers = eng.list_containers(desired.project)

    def grace(c: Any) -> int | None:
        if timeout is not None:
            return timeout
        svc = desired.services.get(c.service)
        # Not in the spec (any more): the grace period it was created with.
        return svc.template.stop_timeout if svc else None

    remove_all(eng, containers, grace, progress, volumes=volumes)
    import time

    from envd.events import Event

    stuck: list[str] = []
    for net in eng.list_networks(desired.project):
        progress(Event("remove-network", f"network {net.name}", "", "working"))
        # The engine releases endpoints of just-removed containers a moment
        # late (moby#42119): retry briefly before calling it a failure.
        deadline = time.monotonic() + 5.0
        while True:
            try:
                eng.remove_network(net.name)
                progress(Event("remove-network", f"network {net.name}", "", "done"))
                break
            except NotFound:
                break
            except EngineError as exc:
                if time.monotonic() >= deadline:
                    progress(Event("remove-network", f"network {net.name}", str(exc), "error"))
                    stuck.append(net.name)
                    break
                time.sleep(0.2)
    removed_volumes: list[str] = []
    if volumes:
        declared = {v.name for v in desired.volumes.values() if not v.external}
        for vol in eng.list_volumes(desired.project):
            if vol.name in declared and vol.labels.get(labels.PROJECT) == desired.project:
                progress(Event("remove", f"volume {vol.name}", "", "working"))
                eng.remove_volume(vol.name)
                removed_volumes.append(vol.name)
                progress(Event("remove", f"volume {vol.name}", "", "done"))
    progress.close()
    if stuck:
        raise EngineError(
            f"network(s) {', '.join(stuck)} could not be removed (the engine still counts"
            " endpoints on them); run `envd down` again, or restart the Docker engine"
        )
    if as_json:
        click.echo(
            json.dumps({"result": "ok", "containers": len(containers), "volumes": removed_volumes})
        )
    else:
        click.echo(f"Project {desired.project} is down.", err=True)


# --------------------------------------------------------------------------- status


@main.command()
@_target_opt
@_json_opt
@_project_opts()
@click.pass_obj
def status(obj: Ctx, as_json: bool, target: str) -> None:
    """Per service: desired vs actual, health, container ids, drift."""
    if target == "swarm":
        _swarm_status(obj, as_json)
        return
    import datetime

    from envd.daemon import process
    from envd.spec.paths import resolve_paths

    # Ask a running daemon before parsing the spec: while the spec is broken
    # the daemon still reports the last good environment and the error.
    _, project_dir = resolve_paths(obj.project_dir, obj.file)
    client = process.running(project_dir, obj.environment)
    report: dict[str, Any] = client.status() if client is not None else {}
    if "services" not in report:
        # No daemon, or one whose spec is broken: observe the engine directly.
        from envd.converge import plan_project, prepare
        from envd.status import project_status

        _, desired = prepare(obj.target())
        the_plan, observed = plan_project(engine(), desired, restart_exited=client is None)
        report.update(project_status(desired, observed, the_plan))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    info = report.get("daemon")
    if info:
        when = info.get("last_reconcile")
        at = datetime.datetime.fromtimestamp(when).strftime("%H:%M:%S") if when else "never"
        click.echo(f"daemon pid {info['pid']}: last reconcile at {at} ({info['last_result']})")
        if info.get("last_error"):
            click.echo(f"last error: {info['last_error']}")
    else:
        click.echo("no daemon runs for this project (`envd up` starts one)")
    rows = [("SERVICE", "DESIRED", "ACTUAL", "HEALTH", "CONTAINERS", "DRIFT")]
    for s in report["services"]:
        rows.append(
            (
                s["name"],
                str(s["desired_replicas"]),
                s["actual"],
                s["health"] or "-",
                ",".join(c["id"] for c in s["containers"]) or "-",
                "; ".join(s["drift"]) or "-",
            )
        )
    for o in report["orphans"]:
        rows.append(
            (o["service"] or "?", "0", o["status"], "-", o["id"], "orphan: not in the spec")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip())


# --------------------------------------------------------------------------- logs / exec / run


@main.command()
@click.argument("services", nargs=-1)
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("--tail", default="all", help="Number of lines from the end (default: all).")
@click.option("--no-prefix", is_flag=True, help="Do not prefix lines with the container name.")
@_project_opts(with_file=False)
@click.pass_obj
def logs(obj: Ctx, services: tuple[str, ...], follow: bool, tail: str, no_prefix: bool) -> None:
    """Show container logs, prefixed by service."""
    from envd.converge import prepare

    _, desired = prepare(obj.target())
    for s in services:
        if s not in desired.services:
            raise UsageError(f"no service named {s!r} in the spec")
    tail_n: int | None = None if tail == "all" else _int(tail, "--tail")
    eng = engine()
    containers = sorted(
        (
            c
            for c in eng.list_containers(desired.project)
            if (not services or c.service in services) and c.labels.get("dev.envd.one-off") != "1"
        ),
        key=lambda c: (c.service, c.replica),
    )
    width = max((len(c.name) for c in containers), default=0)
    lock = threading.Lock()

    def pump(c: Any) -> None:
        prefix = "" if no_prefix else f"{c.name.ljust(width)} | "
        for line in eng.stream_logs(c.id, tail=tail_n, follow=follow):
            with lock:
                click.echo(prefix + line)

    if not follow:
        for c in containers:
            pump(c)
        return
    threads = [threading.Thread(target=pump, args=(c,), daemon=True) for c in containers]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        pass


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{flag} takes a number or 'all', not {text!r}") from None


def _service_container(eng: Any, desired: Any, service: str, index: int) -> Any:
    if service not in desired.services:
        raise UsageError(f"no service named {service!r} in the spec")
    for c in eng.list_containers(desired.project):
        if c.service == service and c.replica == index and c.labels.get("dev.envd.one-off") != "1":
            if c.status != "running":
                raise UsageError(
                    f"service {service!r} is not running (container {c.name} is {c.status})"
                )
            return c
    raise UsageError(f"service {service!r} has no container #{index}; run `envd up` first")


@main.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("service")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--index", default=1, show_default=True, help="Replica to run in.")
@click.option("-T", "no_tty", is_flag=True, help="Do not allocate a TTY.")
@_project_opts()
@click.pass_obj
def exec_(obj: Ctx, service: str, command: tuple[str, ...], index: int, no_tty: bool) -> None:
    """Run a command in a running service container: envd exec SERVICE -- CMD..."""
    from envd.converge import prepare

    _, desired = prepare(obj.target())
    eng = engine()
    c = _service_container(eng, desired, service, index)
    docker_cli = shutil.which("docker")
    if docker_cli:
        flags = ["-i"] if sys.stdin.isatty() or not no_tty else []
        if sys.stdin.isatty() and sys.stdout.isatty() and not no_tty:
            flags.append("-t")
        os.execvp(docker_cli, ["docker", "exec", *flags, c.id, *command])
    code, output = eng.exec_run(c.id, list(command))
    sys.stdout.buffer.write(output)
    sys.exit(code)


@main.command(name="run", context_settings={"ignore_unknown_options": True})
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--rm/--no-rm", default=True, show_default=True, help="Remove the container afterwards."
)
@_project_opts()
@click.pass_obj
def run_(obj: Ctx, service: str, command: tuple[str, ...], rm: bool) -> None:
    """Run a one-off container of a service: envd run SERVICE -- CMD..."""
    from envd.converge import prepare
    from envd.oneoff import run_one_off

    _, desired = prepare(obj.target())
    if service not in desired.services:
        raise UsageError(f"no service named {service!r} in the spec")
    sys.exit(run_one_off(engine(), desired, service, list(command) or None, rm))


# --------------------------------------------------------------------------- swarm, export, import
# deploy --target swarm, status/down --target swarm, export, import (docs/swarm.md, docs/formats.md).


def swarm_engine() -> Any:
    """A ``SwarmEngine`` that answered a ping and manages an active swarm."""
    from envd.engine.swarm import SwarmEngine
    from envd.swarm import require_manager

    eng = SwarmEngine()
    eng.ping()
    require_manager(eng)
    return eng


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


@main.command()
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
    as_json: bool,
) -> None:
    """Deploy the spec to a Docker Swarm: services, overlay network, secrets."""
    import time
    from dataclasses import replace

    from envd.converge import prepare
    from envd.progress import make_progress
    from envd.swarm import deploy as swarm_deploy
    from envd.swarm import observe_swarm, plan_swarm, prepare_swarm

    started = time.monotonic()
    loaded, desired = prepare(replace(obj.target(), swarm=True), frozen=frozen)
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


def _swarm_down(obj: Ctx, volumes: bool, as_json: bool) -> None:
    from envd.progress import make_progress
    from envd.swarm import down as swarm_down

    loaded = obj.load()
    eng = swarm_engine()
    progress = make_progress(as_json)
    result = swarm_down(eng, loaded.project, progress, volumes=volumes)
    progress.close()
    if as_json:
        click.echo(json.dumps({"result": "ok", **result.__dict__}))
        return
    for w in result.warnings:
        err(f"warning: {w}")
    click.echo(
        f"Project {loaded.project} is down on the swarm: {len(result.services)} service(s),"
        f" {len(result.secrets)} secret(s), {len(result.networks)} network(s) removed.",
        err=True,
    )


def _swarm_status(obj: Ctx, as_json: bool) -> None:
    from envd.converge import prepare
    from envd.swarm import prepare_swarm
    from envd.swarm import status as swarm_status

    loaded = obj.load()
    eng = swarm_engine()
    wanted = None
    try:
        # The desired state (for drift) needs the secrets' values: their digests name them.
        loaded, desired = prepare(obj.target())
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
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)).rstrip())
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


@main.command(name="export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["compose", "swarm", "k8s"]),
    required=True,
    help="compose: a Compose file; swarm: a stack file for `docker stack deploy`;"
    " k8s: Kubernetes manifests.",
)
@click.option("-o", "--output", "output", metavar="FILE", help="Write here instead of stdout.")
@click.option(
    "--secret-values",
    is_flag=True,
    help="k8s: put the secrets' values in the Secret manifests (default: none).",
)
@_project_opts()
@click.pass_obj
def export_(obj: Ctx, fmt: str, output: str | None, secret_values: bool) -> None:
    """Convert the spec to another format; what it cannot express is reported on stderr."""
    from envd.export import export, render_yaml

    loaded = obj.load()
    values: dict[str, bytes] | None = None
    if secret_values:
        if fmt != "k8s":
            raise UsageError("--secret-values applies to --format k8s only")
        from envd.secrets import read_secrets

        names = {s.source for svc in loaded.active_services().values() for s in svc.secrets}
        values = read_secrets(names, loaded.spec.secrets, loaded.project_dir, os.environ)
    result = export(loaded, fmt, values)
    text = render_yaml(result, output)
    if output:
        # Secret values go into a file only its owner can read.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if values else 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if values:
            os.chmod(output, 0o600)
    else:
        click.echo(text, nl=False)
    for note in result.notes:
        err(f"note: {note}")
    if output:
        from pathlib import Path

        if fmt != "k8s" and Path(output).resolve().parent != loaded.project_dir.resolve():
            err(
                f"note: relative paths in {output} are relative to the project directory"
                f" {_rel(loaded.project_dir)}; Compose reads them relative to the file"
            )
        click.echo(f"wrote {output} ({fmt}; {len(result.notes)} note(s))", err=True)


@main.command(name="import")
@click.argument("compose_file", metavar="FILE")
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    help="Write the spec here (default: stdout; '-' for stdout).",
)
@click.option("--force", is_flag=True, help="Overwrite FILE given with -o if it exists.")
def import_(compose_file: str, output: str | None, force: bool) -> None:
    """Convert a Compose file to envd.toml; what envd cannot express is reported on stderr."""
    from pathlib import Path

    from envd.importer import import_compose

    path = Path(compose_file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {compose_file}: {exc.strerror}") from None
    result = import_compose(text, source=compose_file)
    if output and output != "-":
        out = Path(output)
        if out.exists() and not force:
            raise UsageError(f"{output} exists; pass --force to overwrite it")
        out.write_text(result.toml, encoding="utf-8")
    else:
        click.echo(result.toml, nl=False)
    for note in result.notes:
        err(f"note: {note}")
    if output and output != "-":
        click.echo(
            f"wrote {output}: {result.services} service(s), {len(result.notes)} note(s)",
            err=True,
        )


# --------------------------------------------------------------------------- entry


def _rel(path: Any) -> str:
    try:
        rel = os.path.relpath(path)
        return str(path) if rel.startswith("..") else rel
    except ValueError:
        return str(path)


def run_cli(argv: list[str] | None = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        main.main(args=argv, prog_name="envd", standalone_mode=False)
        return 0
    except click.exceptions.Abort:
        err("aborted")
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except EnvdError as exc:
        if debug:
            traceback.print_exc()
        if isinstance(exc, SpecError):
            for problem in exc.problems:
                click.echo(problem.render(), err=True)
        elif isinstance(exc, EnvironmentFailed):
            if not exc.failures:
                err(str(exc))
        else:
            err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so in one line, offer the traceback
        if debug:
            traceback.print_exc()
        err(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        return 1
