"""The command line: the click group, the shared options and the core commands.

The CLI modules are the only ones that print for people. This one holds the
group, ``Ctx``, the project options accepted before or after a command, the
error to exit-code mapping (``run_cli``) and the life-cycle commands on this
engine; the commands that take a project beyond it live in their own modules,
imported only when run or listed (see ``LAZY_COMMANDS``).

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
from envd.values.errors import (
    EngineError,
    EngineUnavailable,
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
        from envd.inputs.prepare import Target

        return Target(self.project_dir, self.file, self.environment, self.profiles)

    def load(self, environment: str | None = None) -> Any:
        """The validated spec for these options (``environment`` overrides ``--env``)."""
        from envd.spec.load import load

        env = self.environment if environment is None else environment
        return load(self.project_dir, self.file, env, profiles=self.profiles)


def engine() -> Any:
    from envd.engine.docker.client import DockerEngine

    eng = DockerEngine()
    eng.ping()
    return eng


def err(message: str) -> None:
    click.echo(f"envd: {message}", err=True)


# Commands defined in other modules, with their help text. Importing them costs
# start-up time, so a module is imported only when one of its commands runs;
# `envd --help` lists them from the text here (a unit test keeps it in sync).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "deploy": (
        "envd.cli.swarm",  # also `status`/`down --target swarm`
        "Deploy the spec to a Docker Swarm: services, overlay network, secrets.",
    ),
    "diff": (
        "envd.cli.environments",
        'Show field by field what differs between two environments ("base" for none).',
    ),
    "export": (
        "envd.cli.convert",
        "Convert the spec to another format; what it cannot express is reported on stderr.",
    ),
    "import": (
        "envd.cli.convert",
        "Convert a Compose file to envd.toml; what envd cannot express is reported on stderr.",
    ),
    "lock": (
        "envd.cli.environments",
        "Write envd.inputs.lock: every environment's images pinned to digests.",
    ),
}


class _Group(click.Group):
    """A group whose LAZY_COMMANDS register themselves when first looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            import importlib

            # An unknown name loads every module: click suggests close names
            # ("Did you mean 'deploy'?") from the commands it knows.
            wanted = LAZY_COMMANDS.get(cmd_name)
            modules = [wanted[0]] if wanted else sorted({m for m, _ in LAZY_COMMANDS.values()})
            for module in modules:
                importlib.import_module(module)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's listing, with a command not imported yet standing in as its help text.
        loaded = self.commands
        stand_ins = {
            name: click.Command(name, help=text) for name, (_, text) in LAZY_COMMANDS.items()
        }
        self.commands = {**stand_ins, **loaded}
        try:
            super().format_commands(ctx, formatter)
        finally:
            self.commands = loaded


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    from envd.inputs.prepare import prepare_desired
    from envd.run.converge import plan_project

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
@click.option(
    "--frozen", is_flag=True, help="Refuse to start unless envd.inputs.lock matches the spec."
)
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
    `envd down`, reading the spec with the environment of the last `up`
    (variables, `env` secrets). With --once: converge and wait in this
    process, no daemon (CI).
    """
    from pathlib import Path

    from envd.cli.progress import make_progress
    from envd.inputs.prepare import prepare_desired
    from envd.run.converge import converge

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
    from envd.cli.progress import make_progress
    from envd.daemon import process
    from envd.values.events import Event

    client = process.running(project_dir, desired.environment)
    started = client is None
    if client is None:
        client = process.start(obj.target(), project_dir, desired.environment)
    # The daemon reads the spec with this shell's environment from now on
    # (variables, `env` secrets), as `up --once` would; the socket is 0600.
    generation, seq, environ_applied = client.reload(
        wait_timeout=timeout, restart_exited=True, environ=os.environ
    )
    if not environ_applied:
        click.echo(
            "envd: warning: the running daemon (an older envd) ignored this shell's"
            " environment and keeps its own; run `envd down` then `envd up` to use it",
            err=True,
        )
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
        from envd.values.errors import EngineUnavailable

        raise EngineUnavailable(message)
    failures = _failures_from_status(status)
    if not failures:
        from envd.values.errors import ServiceFailure

        failures = [ServiceFailure("-", message)]
    exc = EnvironmentFailed(failures)
    _report_failures(eng, exc, as_json)
    raise exc


def _failures_from_status(status: dict[str, Any]) -> list[Any]:
    from envd.values.errors import ServiceFailure

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
    "-v",
    "--volumes",
    is_flag=True,
    help="Also remove the named volumes the spec declares and the anonymous volumes.",
)
@click.option("--timeout", "-t", type=int, default=None, help="Override the stop grace period (s).")
@_target_opt
@_json_opt
@_project_opts()
@click.pass_obj
def down(obj: Ctx, volumes: bool, timeout: int | None, as_json: bool, target: str) -> None:
    """Stop and remove the project's containers and networks."""
    if target == "swarm":
        from envd.cli import swarm as cli_swarm

        cli_swarm.run_down(obj, volumes, as_json)
        return
    from envd.cli.progress import make_progress
    from envd.daemon import process
    from envd.inputs.prepare import prepare
    from envd.run.apply import remove_all
    from envd.values import labels

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

    from envd.values.events import Event

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
            except EngineUnavailable:
                raise
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
        from envd.cli import swarm as cli_swarm

        cli_swarm.run_status(obj, as_json)
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
        from envd.core.status import project_status
        from envd.inputs.prepare import prepare
        from envd.run.converge import plan_project

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
    from envd.inputs.prepare import prepare

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
    from envd.inputs.prepare import prepare

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
    from envd.inputs.prepare import prepare
    from envd.run.oneoff import run_one_off

    _, desired = prepare(obj.target())
    if service not in desired.services:
        raise UsageError(f"no service named {service!r} in the spec")
    sys.exit(run_one_off(engine(), desired, service, list(command) or None, rm))


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
