"""The commands that work on a project's containers: logs, exec, run."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from typing import Any

import click

from envd.cli._common import Ctx, _int, _project_opts, engine, holding, lock_opt
from envd.values import labels
from envd.values.errors import UsageError


@click.command()
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
            if (not services or c.service in services) and c.labels.get(labels.ONE_OFF) != "1"
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


def _service_container(eng: Any, desired: Any, service: str, index: int) -> Any:
    if service not in desired.services:
        raise UsageError(f"no service named {service!r} in the spec")
    for c in eng.list_containers(desired.project):
        if c.service == service and c.replica == index and c.labels.get(labels.ONE_OFF) != "1":
            if c.status != "running":
                raise UsageError(
                    f"service {service!r} is not running (container {c.name} is {c.status})"
                )
            return c
    raise UsageError(f"service {service!r} has no container #{index}; run `envd up` first")


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
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


@click.command(name="run", context_settings={"ignore_unknown_options": True})
@click.argument("service")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--rm/--no-rm", default=True, show_default=True, help="Remove the container afterwards."
)
@lock_opt
@_project_opts()
@click.pass_obj
def run_(
    obj: Ctx, service: str, command: tuple[str, ...], rm: bool, lock_timeout: float | None
) -> None:
    """Run a one-off container of a service: envd run SERVICE -- CMD..."""
    from envd.inputs.prepare import prepare
    from envd.run.oneoff import run_one_off

    _, desired = prepare(obj.target(), acting=True)
    if service not in desired.services:
        raise UsageError(f"no service named {service!r} in the spec")
    code = run_one_off(
        engine(),
        desired,
        service,
        list(command) or None,
        rm,
        docker_cli=shutil.which("docker"),
        hold=lambda: holding(desired.project, "envd run", lock_timeout),
    )
    sys.exit(code)


COMMANDS = (logs, exec_, run_)
