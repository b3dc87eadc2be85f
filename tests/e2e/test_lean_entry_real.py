"""The lean entry against the real engine: the same output as the full path, or the full path.

A no-op ``up --once`` and ``status --json`` with a daemon are run both ways
(``ENVD_LEAN=off`` forces the full path; it is not part of the desired-cache
key) on the same states, and their output, exit code and ``.envd/`` compared.
Whether the lean entry answered is asked in this process, with the exact
environment the subprocess gets.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from envd.cli import _lean_status, _lean_up
from tests.helpers import BUSYBOX, describe, envd_env, remove_by_hand, run_envd

# Service b has a healthcheck: Podman without systemd never runs it (docs/compatibility.md).
pytestmark = [pytest.mark.usefixtures("busybox_image"), pytest.mark.needs_engine_healthchecks]

SPEC = f"""
[services.a]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
volumes = ["data:/data"]

[services.b]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
healthcheck = {{ test = ["CMD", "true"], interval = "1s", timeout = "2s", retries = 3 }}

[services.c]
image = "{BUSYBOX}"
command = ["true"]
oneshot = true

[volumes.data]
"""


def _full(directory: Path, *args: str) -> CompletedProcess[str]:
    return run_envd(["-C", str(directory), *args], env={"ENVD_LEAN": "off"}, timeout=120)


def _default(directory: Path, *args: str) -> CompletedProcess[str]:
    return run_envd(["-C", str(directory), *args], timeout=120)


def _lean_answers(directory: Path, capsys: pytest.CaptureFixture[str], *args: str) -> bool:
    """Whether the lean entry answers ``envd -C DIR ARGS`` here (its output discarded)."""
    env = envd_env()
    env.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    argv = ["-C", str(directory), *args]
    code = (_lean_status.try_status if "status" in args else _lean_up.try_up)(argv, env)
    capsys.readouterr()
    return code == 0


def _state(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted((directory / ".envd").iterdir())
        if p.is_file() and p.suffix != ".lock"
    }


def _untimed(text: str) -> str:
    return re.sub(r'"time": [0-9.e+-]+', '"time": T', text)


def test_a_no_op_up_once_prints_the_same_both_ways_and_changes_give_way(
    project_dir: Any, project_name: str, docker_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Identical output, exit code and .envd/ on a no-op; a killed, removed or extra
    container, an edited spec or a changed variable is answered by the full path."""
    project_dir.write(SPEC)
    first = _full(project_dir, "up", "--once", "--timeout", "60")
    assert first.returncode == 0, describe(first)
    assert not _lean_answers(project_dir, capsys, "up", "--once")  # no witness yet
    full = _full(project_dir, "up", "--once")  # a no-op: leaves the witness
    assert full.returncode == 0, describe(full)
    after_full = _state(project_dir)
    assert "lean-up.witness" in after_full
    for flags in ([], ["--json"], ["--timeout", "30"]):
        assert _lean_answers(project_dir, capsys, "up", "--once", *flags)
        reference = _full(project_dir, "up", "--once", *flags)
        lean = _default(project_dir, "up", "--once", *flags)
        assert (lean.returncode, _untimed(lean.stdout), lean.stderr) == (
            reference.returncode,
            _untimed(reference.stdout),
            reference.stderr,
        )
        assert _state(project_dir) == after_full
    assert "Project" in lean.stderr or "services" in lean.stdout

    a = docker_client.containers.get(f"{project_name}-a-1")
    a.kill()
    assert not _lean_answers(project_dir, capsys, "up", "--once")
    repaired = _default(project_dir, "up", "--once")
    assert repaired.returncode == 0 and "Starting" in repaired.stderr, describe(repaired)
    assert not _lean_answers(project_dir, capsys, "up", "--once")  # it changed something
    assert _default(project_dir, "up", "--once").returncode == 0  # a no-op again: witnessed
    assert _lean_answers(project_dir, capsys, "up", "--once")

    remove_by_hand(docker_client, f"{project_name}-b-1")
    assert not _lean_answers(project_dir, capsys, "up", "--once")
    assert _default(project_dir, "up", "--once").returncode == 0
    assert _default(project_dir, "up", "--once").returncode == 0
    assert _lean_answers(project_dir, capsys, "up", "--once")

    extra = docker_client.containers.run(
        BUSYBOX,
        ["sleep", "100000"],
        detach=True,
        labels={"dev.envd.project": project_name, "dev.envd.service": "zz"},
        name=f"{project_name}-zz-1",
    )
    try:
        assert not _lean_answers(project_dir, capsys, "up", "--once")
    finally:
        remove_by_hand(docker_client, str(extra.name))
    assert _lean_answers(project_dir, capsys, "up", "--once")

    os.environ["W6_LEAN_PROBE"] = "1"
    try:
        assert not _lean_answers(project_dir, capsys, "up", "--once")
    finally:
        del os.environ["W6_LEAN_PROBE"]
    project_dir.write(SPEC.replace('"100000"]\nstop_signal', '"100001"]\nstop_signal', 1))
    assert not _lean_answers(project_dir, capsys, "up", "--once")
    assert _default(project_dir, "down").returncode == 0


def test_status_json_with_a_daemon_prints_the_same_both_ways(
    project_dir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a daemon running, the lean ``status`` (text and --json) prints the full path's report."""
    project_dir.write(SPEC)
    up = _default(project_dir, "up", "--timeout", "60")
    assert up.returncode == 0, describe(up)
    try:
        assert _lean_answers(project_dir, capsys, "status", "--json")
        lean = _default(project_dir, "status", "--json")
        full = _full(project_dir, "status", "--json")
        assert lean.returncode == full.returncode == 0, describe(lean) + describe(full)

        def steady(text: str) -> Any:
            doc = json.loads(text)
            for k in ("passes", "last_reconcile", "generation", "completed"):
                doc["daemon"].pop(k, None)
            for svc in doc["services"]:  # "Up 3 seconds": the uptime moves on
                for c in svc["containers"]:
                    c.pop("status_text", None)
            return doc

        assert steady(lean.stdout) == steady(full.stdout)
        assert lean.stderr == full.stderr == ""
        assert _lean_answers(project_dir, capsys, "status")
        lean, full = _default(project_dir, "status"), _full(project_dir, "status")
        assert lean.returncode == full.returncode == 0, describe(lean) + describe(full)
        # The first line names the last pass's time, which a pass between the two may move.
        assert lean.stdout.splitlines()[1:] == full.stdout.splitlines()[1:]
        assert "SERVICE" in lean.stdout and lean.stderr == full.stderr == ""
    finally:
        assert _default(project_dir, "down").returncode == 0
