"""What every command module shares: the context object, the options, error output.

Command modules import this one and define click commands; ``envd.cli.app``
attaches them to the group. Nothing here imports a command module, so a
command pays only for its own module and this one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from envd.values.errors import EnvdError, EnvironmentFailed, SpecError, UsageError

if TYPE_CHECKING:  # imported when a command needs them, so `--help` stays fast
    from envd.engine.docker.client import DockerEngine
    from envd.inputs.target import Target
    from envd.spec.load import LoadedSpec

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Ctx:
    project_dir: str | None
    file: str | None
    environment: str | None
    profiles: frozenset[str]
    debug: bool

    def target(self) -> Target:
        from envd.inputs.target import Target

        return Target(self.project_dir, self.file, self.environment, self.profiles)

    def load(self, environment: str | None = None, swarm: bool = False) -> LoadedSpec:
        """The validated spec for these options (``environment`` overrides ``--env``;
        ``swarm``: validated for a swarm deploy, as `deploy --target swarm` does)."""
        from envd.spec.load import load

        env = self.environment if environment is None else environment
        return load(self.project_dir, self.file, env, profiles=self.profiles, swarm=swarm)


def engine() -> DockerEngine:
    from envd.engine.docker.client import DockerEngine

    eng = DockerEngine()
    eng.ping()
    return eng


def engine_line(desc: dict[str, str]) -> str:
    """One line naming the engine envd talks to, for ``status``."""
    from envd.cli._status_text import engine_line as line

    return line(desc)


def err(message: str) -> None:
    click.echo(f"envd: {message}", err=True)


def print_error(exc: EnvdError) -> int:
    """Say what went wrong in one sentence (a spec error: one line per problem); the exit code."""
    if isinstance(exc, SpecError):
        for problem in exc.problems:
            click.echo(problem.render(), err=True)
    elif isinstance(exc, EnvironmentFailed):
        # The command reported each failed service already.
        if not exc.failures:
            err(str(exc))
    else:
        err(str(exc))
    return exc.exit_code


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


def _rel(path: str | os.PathLike[str]) -> str:
    from envd.spec.paths import display_path  # imported on use: start-up stays lean

    return display_path(path)


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{flag} takes a number or 'all', not {text!r}") from None


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows as left-aligned columns (the first row is the header)."""
    from envd.cli._status_text import table_lines

    for line in table_lines(rows):
        click.echo(line)


def lock_opt(f: F) -> F:
    return click.option(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Wait at most this long for another envd converging the project"
        " (default 60, or ENVD_LOCK_TIMEOUT).",
    )(f)


def holding(project: str, command: str, timeout: float | None) -> AbstractContextManager[None]:
    """Hold ``project``'s converge lock, saying once on stderr if another envd holds it."""
    from envd.run.project_lock import converging

    return converging(project, command, timeout=timeout, on_wait=err)
