"""Environments: overlays merged over the base spec, and ``envd diff A B`` between two of them.

Overlays merge tables key by key and replace lists and scalars whole
(``envd.spec.load.load``). ``envd diff`` prints, field by field, only what
differs: its exact output is checked through the command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envd.core.envdiff import MISSING, diff
from envd.spec.load import load
from envd.values.errors import SpecError
from tests.helpers import REPO

SPEC = """\
[project]
name = "shop"

[services.api]
image = "api:1"
command = ["serve", "--reload"]
ports = ["127.0.0.1:8000:8000"]
env = { A = "base", B = "base" }
labels = { team = "web" }
restart = "unless-stopped"
volumes = ["data:/data", "./src:/src"]
healthcheck = { test = ["CMD", "true"], interval = "2s", retries = 5 }

[services.db]
image = "pg:16"

[volumes.data]

[environments.ci]
services.api.ports = []
services.api.restart = "no"
services.api.env = { B = "ci", C = "ci" }
services.api.volumes = ["data:/data"]
services.api.healthcheck.interval = "1s"

[environments.ci.services.migrate]
image = "api:1"
command = ["migrate"]

[environments.staging.services.api]
image = "api:2"
replicas = 2
ports = ["8000"]
labels = { team = "web" }

[environments.same]
services.db.image = "pg:16"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose spec has three overlays: ci, staging and a no-op one."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "envd.toml").write_text(SPEC)
    (root / "src").mkdir()
    return root


def envd(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m envd ARGS`` in ``project``, as a user runs it."""
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "envd", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_overlay_tables_merge_key_by_key(project: Path) -> None:
    """An overlay table (env, healthcheck) merges into the base one: unset keys keep their base value."""
    api = load(project, environment="ci", environ={}).spec.services["api"]
    assert api.env == {"A": "base", "B": "ci", "C": "ci"}
    assert api.healthcheck is not None
    assert (api.healthcheck.interval, api.healthcheck.retries) == (1.0, 5)
    assert api.healthcheck.test == ["CMD", "true"]
    assert api.labels == {"team": "web"} and api.image == "api:1"


def test_overlay_lists_replace_whole(project: Path) -> None:
    """An overlay list replaces the base list whole, including with an empty one."""
    api = load(project, environment="ci", environ={}).spec.services["api"]
    assert api.ports == []
    assert [v.target for v in api.volumes] == ["/data"]
    assert api.command == ["serve", "--reload"], "a list the overlay does not name stays"


def test_overlay_scalars_replace(project: Path) -> None:
    """An overlay scalar (restart, image, replicas) replaces the base value."""
    ci = load(project, environment="ci", environ={}).spec.services["api"]
    staging = load(project, environment="staging", environ={}).spec.services["api"]
    assert ci.restart == "no"
    assert (staging.image, staging.replicas, staging.restart) == ("api:2", 2, "unless-stopped")


def test_overlay_adds_services_and_names_the_project(project: Path) -> None:
    """An overlay may add a service; the environment's project is ``<name>-<env>``; the base is untouched."""
    ci = load(project, environment="ci", environ={})
    base = load(project, environ={})
    assert set(ci.spec.services) == {"api", "db", "migrate"}
    assert set(base.spec.services) == {"api", "db"}
    assert (ci.project, ci.environment) == ("shop-ci", "ci")
    assert (base.project, base.environment) == ("shop", None)
    assert base.spec.services["api"].ports[0].published == 8000


def test_unknown_environment_is_a_spec_error(project: Path) -> None:
    """Asking for an environment the spec lacks is an error listing the known ones, with a hint."""
    with pytest.raises(SpecError) as info:
        load(project, environment="stagin", environ={})
    message = str(info.value)
    assert "unknown environment 'stagin'" in message
    assert "did you mean 'staging'?" in message
    assert "(known: ci, same, staging)" in message


# A mount's bind options (selinux, propagation), unset.
UNSET_BIND = {"selinux": None, "propagation": None}


def test_diff_rows_are_leaves_that_differ(project: Path) -> None:
    """diff() yields one row per differing field and one per table only one side has."""
    base = load(project, environ={})
    ci = load(project, environment="ci", environ={})
    rows = {path: (a, b) for path, a, b in diff(base, ci)}
    assert rows == {
        "services.api.env.B": ("base", "ci"),
        "services.api.env.C": (MISSING, "ci"),
        "services.api.healthcheck.interval": (2.0, 1.0),
        "services.api.ports": (
            [{"target": 8000, "published": 8000, "host_ip": "127.0.0.1", "protocol": "tcp"}],
            [],
        ),
        "services.api.restart": ("unless-stopped", "no"),
        "services.api.volumes": (
            [
                {
                    "type": "volume",
                    "source": "data",
                    "target": "/data",
                    "read_only": False,
                    **UNSET_BIND,
                },
                {
                    "type": "bind",
                    "source": "./src",
                    "target": "/src",
                    "read_only": False,
                    **UNSET_BIND,
                },
            ],
            [
                {
                    "type": "volume",
                    "source": "data",
                    "target": "/data",
                    "read_only": False,
                    **UNSET_BIND,
                }
            ],
        ),
        "services.migrate": (MISSING, {"image": "api:1", "command": ["migrate"]}),
    }
    assert diff(ci, ci) == []


def test_diff_cli_prints_exactly_what_differs(project: Path) -> None:
    """`envd diff base ci` prints each differing field with both values, aligned, and nothing else."""
    proc = envd(project, "diff", "base", "ci")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.splitlines() == [
        "services.api.env.B",
        '  base  "base"',
        '  ci    "ci"',
        "services.api.env.C",
        "  base  (absent)",
        '  ci    "ci"',
        "services.api.healthcheck.interval",
        "  base  2.0",
        "  ci    1.0",
        "services.api.ports",
        '  base  [{"target": 8000, "published": 8000, "host_ip": "127.0.0.1", "protocol": "tcp"}]',
        "  ci    []",
        "services.api.restart",
        '  base  "unless-stopped"',
        '  ci    "no"',
        "services.api.volumes",
        '  base  [{"type": "volume", "source": "data", "target": "/data", "read_only": false, "selinux": null, "propagation": null},'
        ' {"type": "bind", "source": "./src", "target": "/src", "read_only": false, "selinux": null, "propagation": null}]',
        '  ci    [{"type": "volume", "source": "data", "target": "/data", "read_only": false, "selinux": null, "propagation": null}]',
        "services.migrate",
        "  base  (absent)",
        '  ci    {"image": "api:1", "command": ["migrate"]}',
    ]


def test_diff_cli_between_two_overlays(project: Path) -> None:
    """`envd diff staging ci` compares two overlays; fields both leave alone (labels, db) are not printed."""
    proc = envd(project, "diff", "staging", "ci")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["services.api.env.B", '  staging  "base"', '  ci       "ci"']
    paths = [line for line in lines if not line.startswith("  ")]
    assert paths == [
        "services.api.env.B",
        "services.api.env.C",
        "services.api.healthcheck.interval",
        "services.api.image",
        "services.api.ports",
        "services.api.replicas",
        "services.api.restart",
        "services.api.volumes",
        "services.migrate",
    ]
    assert lines[lines.index("services.api.replicas") + 1 :][:2] == ["  staging  2", "  ci       1"]


def test_diff_cli_identical_environments(project: Path) -> None:
    """An overlay that changes nothing diffs as identical, in one line."""
    proc = envd(project, "diff", "base", "same")
    assert (proc.returncode, proc.stdout) == (0, "base and same are identical.\n")


def test_diff_cli_json(project: Path) -> None:
    """`envd diff --json` gives path and both values per row, null when absent."""
    proc = envd(project, "diff", "base", "ci", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows[0] == {"path": "services.api.env.B", "base": "base", "ci": "ci"}
    assert rows[1] == {"path": "services.api.env.C", "base": None, "ci": "ci"}
    assert rows[-1]["path"] == "services.migrate"


def test_diff_cli_unknown_environment_exits_2(project: Path) -> None:
    """Diffing an environment the spec lacks exits 2 with one located line and no traceback."""
    proc = envd(project, "diff", "base", "prod")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "envd.toml: unknown environment 'prod' (known: ci, same, staging)"
    ]
