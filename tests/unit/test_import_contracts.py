"""The import contracts (pyproject.toml [tool.importlinter]) hold for this tree, and a planted
violation of each one makes `lint-imports` fail naming it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contract_names() -> dict[str, str]:
    contracts = tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]
    return {c["id"]: c["name"] for c in contracts}


def _lint(root: Path | None = None) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts, over the envd package under ``root``."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "COLUMNS": "400",  # contract names on one line
        **({"PYTHONPATH": str(root)} if root is not None else {}),
    }
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(CONFIG)],
        cwd=root or REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_every_contract() -> None:
    """This checkout keeps every import contract."""
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    for name in _contract_names().values():
        assert f"{name} KEPT" in result.stdout


# (contract id, module to plant into (appended to if it exists), the import, the import the
# report must name)
VIOLATIONS = [
    ("layers", "core/planted.py", "from envd.run import apply\n", "envd.run.apply"),
    (
        "layers",
        "inputs/planted.py",
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from envd.engine import base\n",
        "envd.engine.base",
    ),
    ("pure-core", "core/planted.py", "import os\n", "os"),
    ("pure-core", "core/planted.py", "from pathlib import Path\n", "pathlib"),
    ("init-standalone", "init.py", "from envd.values import labels\n", "envd.values.labels"),
    ("values-bottom", "values/planted.py", "from envd.spec import paths\n", "envd.spec.paths"),
    ("pure-swarm", "swarm/plan.py", "from envd.engine import fake\n", "envd.engine.fake"),
    (
        "interop-no-engine",
        "interop/planted.py",
        "from envd.run import observe\n",
        "envd.run.observe",
    ),
    (
        "cli-commands-independent",
        "cli/containers.py",
        "from envd.cli import project as _project\n",
        "envd.cli.project",
    ),
    ("cli-app-on-top", "cli/convert.py", "from envd.cli import app as _app\n", "envd.cli.app"),
]


@pytest.mark.parametrize(("contract", "module", "source", "names"), VIOLATIONS)
def test_a_planted_violation_breaks_its_contract(
    tmp_path: Path, contract: str, module: str, source: str, names: str
) -> None:
    """One forbidden import in a copy of envd makes lint-imports fail, naming the contract and the import."""
    shutil.copytree(REPO / "envd", tmp_path / "envd", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "envd" / module
    before = target.read_text() if target.exists() else ""
    target.write_text(before + "\n" + source)
    result = _lint(tmp_path)
    assert result.returncode != 0, result.stdout
    name = _contract_names()[contract]
    assert f"{name} BROKEN" in result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert f"-> {names} (l." in broken, broken
