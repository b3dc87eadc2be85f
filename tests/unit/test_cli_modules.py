"""The CLI split across modules: ``envd.cli.app`` imports the others only when needed.

``envd.cli.app.LAZY_COMMANDS`` names each command attached on first use, its module
and its help text, which ``envd --help`` shows without importing the module. These
tests keep that table true, check that a core command does not load the rest, and
that no command module imports another or the app.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from envd.cli.app import LAZY_COMMANDS, main
from tests.helpers import REPO

MODULES = sorted({module for module, _ in LAZY_COMMANDS.values()})


CLI_DIR = REPO / "envd" / "cli"


@pytest.fixture(scope="module", autouse=True)
def _all_loaded() -> None:
    for name in LAZY_COMMANDS:
        assert main.get_command(click.Context(main), name) is not None


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_lazy_command_lives_in_its_module_with_the_help_listed(name: str) -> None:
    """Each table entry names the module that defines the command and its exact help text."""
    module, text = LAZY_COMMANDS[name]
    cmd = main.commands[name]
    assert isinstance(cmd, click.Command)
    assert cmd.callback is not None and cmd.callback.__module__ == module
    assert cmd.help == text


def test_every_command_outside_the_project_family_is_in_the_table() -> None:
    """Only the project's life cycle is attached eagerly; every other command is listed lazily."""
    elsewhere = {
        name
        for name, cmd in main.commands.items()
        if cmd.callback is not None and cmd.callback.__module__ != "envd.cli.project"
    }
    assert elsewhere == set(LAZY_COMMANDS)


@pytest.mark.parametrize("module", MODULES)
def test_each_module_lists_exactly_its_commands(module: str) -> None:
    """``COMMANDS`` of a lazy module is what the table says lives there, nothing more."""
    listed = {c.name for c in importlib.import_module(module).COMMANDS}
    assert listed == {n for n, (m, _) in LAZY_COMMANDS.items() if m == module}


@pytest.mark.parametrize(
    "path", sorted(p for p in CLI_DIR.glob("*.py") if p.name not in ("app.py", "__init__.py"))
)
def test_no_command_module_imports_the_app_or_another_command_module(path: Path) -> None:
    """Command modules import only the shared ``_common``/``_swarm``/``_up``/``_status``/``progress``/``_lean_*`` of the CLI, so each stands alone."""
    shared = {
        "envd.cli._common",
        "envd.cli._swarm",
        "envd.cli._up",
        "envd.cli._status",
        "envd.cli.progress",
        "envd.cli._lean_args",
        "envd.cli._lean_read",
        "envd.cli._lean_up",
        "envd.cli._lean_wire",
        "envd.cli._status_text",
    }
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "envd.cli":
                imported |= {f"envd.cli.{a.name}" for a in node.names}
            else:
                imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    cli = {m for m in imported if m.startswith("envd.cli")}
    assert cli <= shared, f"{path.name} imports {sorted(cli - shared)}"


@pytest.mark.parametrize("width", [50, 64, 80])
def test_help_lists_the_same_commands_before_and_after_the_imports(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``envd --help`` reads the table, not the modules: same text, truncation included."""
    runner = CliRunner()
    loaded = runner.invoke(main, ["--help"], terminal_width=width)
    core = {n: c for n, c in main.commands.items() if n not in LAZY_COMMANDS}
    monkeypatch.setattr(main, "commands", core)
    listed = runner.invoke(main, ["--help"], terminal_width=width)
    assert main.commands == core  # listing imported nothing
    assert loaded.exit_code == listed.exit_code == 0
    assert listed.output == loaded.output
    assert all(f"  {name} " in listed.output for name in LAZY_COMMANDS)


def test_core_commands_and_the_listing_import_no_other_cli_module() -> None:
    """`envd status --help` and `envd --help` load the app, the shared module and the project family only."""
    code = (
        "import sys\n"
        "from envd.cli.app import run_cli\n"
        "assert run_cli(['status', '--help']) == 0\n"
        "assert run_cli(['--help']) == 0\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('envd.cli.'))))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.splitlines()[-1] == "envd.cli._common envd.cli.app envd.cli.project"


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_lazy_command_runs_through_the_entry_point(name: str) -> None:
    """A fresh process resolves the command by name (its module is imported on demand)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "envd", name, "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Usage: envd {name} ")
    assert LAZY_COMMANDS[name][1] in " ".join(proc.stdout.split())  # help text, rewrapped
