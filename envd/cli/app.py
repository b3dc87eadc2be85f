"""The command line's entry: the click group, its global options, and where each command lives.

The CLI modules are the only ones that print for people. This one holds the
group, the options accepted before a command and the error to exit-code
mapping (``run_cli``). The commands live in one module per family: the
project's life cycle (``envd.cli.project``) is attached at start; every other
module is imported only when one of its commands runs or all are listed (see
``LAZY_COMMANDS``). Command modules import ``envd.cli._common``, never this
module nor each other.

Every command maps errors to the contract's exit codes: 0 success, 1 the
environment failed, 2 bad usage or spec (nothing changed), 3 engine
unreachable. Errors are one sentence on stderr; ``--debug`` adds a traceback.
"""

from __future__ import annotations

import sys

import click

from envd import __version__
from envd.cli import project
from envd.cli._common import Ctx, err, print_error
from envd.values.errors import EnvdError

# Commands attached on first use, with their module and help text. Importing a
# module costs start-up time, so it is imported only when one of its commands
# runs; `envd --help` lists them from the text here (a unit test keeps it in
# sync). Each module names its commands in ``COMMANDS``.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "allow": (
        "envd.cli.allow",
        "Approve the host commands, host paths and engine access a spec uses, for this user.",
    ),
    "daemon": (
        "envd.cli.daemon",
        "Run the project's daemon in the foreground (what `up` starts in the background).",
    ),
    "deploy": (
        "envd.cli.swarm",
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
        "Convert Compose files to envd.toml; what envd cannot express is reported on stderr.",
    ),
    "events": ("envd.cli.daemon", "Stream what the daemon sees and does."),
    "exec": (
        "envd.cli.containers",
        "Run a command in a running service container: envd exec SERVICE -- CMD...",
    ),
    "lock": (
        "envd.cli.environments",
        "Write envd.lock: every environment's images pinned to digests.",
    ),
    "logs": ("envd.cli.containers", "Show container logs, prefixed by service."),
    "restart": (
        "envd.cli.services",
        "Restart services' containers (stop with their grace period, start).",
    ),
    "run": (
        "envd.cli.containers",
        "Run a one-off container of a service: envd run SERVICE -- CMD...",
    ),
    "schema": ("envd.cli.daemon", "Print the JSON Schema of envd.toml."),
    "start": ("envd.cli.services", "Start services stopped with `envd stop`."),
    "stop": (
        "envd.cli.services",
        "Stop services; the daemon keeps them stopped until `envd start` or `envd up`.",
    ),
    "ui": (
        "envd.cli.services",
        "Print the dashboard's URL (and open it in a browser when one is available).",
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
                for command in importlib.import_module(module).COMMANDS:
                    self.add_command(command)
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


for _command in project.COMMANDS:
    main.add_command(_command)


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
            _print_traceback()
        return print_error(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so in one line, offer the traceback
        if debug:
            _print_traceback()
        err(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        return 1


def _print_traceback() -> None:
    # Imported here: traceback (with linecache and tokenize) is for --debug only.
    import traceback

    traceback.print_exc()
