"""What envd says when the engine is Podman's Docker API (scripts/ensure-podman.sh serves it)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.helpers import no_engine, run_envd

PODMAN = "unix:///run/envd-podman/podman.sock"


def _podman(tmp_path: Path) -> dict[str, str]:
    if not os.path.exists(PODMAN.removeprefix("unix://")):
        no_engine(f"Podman's socket {PODMAN} is absent; run scripts/ensure-podman.sh")
    (tmp_path / "envd.toml").write_text(
        '[services.web]\nimage = "envd-local/busybox:latest"\ncommand = ["sleep", "60"]\n'
    )
    return {"DOCKER_HOST": PODMAN}


def test_status_names_podman_and_the_api_version(tmp_path: Path) -> None:
    """`status` and `status --json` name the engine: Podman, its version, endpoint, API 1.41."""
    env = _podman(tmp_path)
    text = run_envd(["status"], cwd=tmp_path, env=env)
    assert text.returncode == 0, text.stderr
    assert re.search(
        rf"^engine: Podman [0-9.]+ at {re.escape(PODMAN)} \(API 1\.41\)$", text.stdout, re.M
    )
    doc = json.loads(run_envd(["status", "--json"], cwd=tmp_path, env=env).stdout)
    assert (doc["engine"]["name"], doc["engine"]["endpoint"], doc["engine"]["api_version"]) == (
        "Podman",
        PODMAN,
        "1.41",
    )


def test_deploy_to_swarm_on_podman_is_one_sentence_exit_2(tmp_path: Path) -> None:
    """`deploy --target swarm` against Podman says Swarm has no Podman counterpart, exit 2."""
    proc = run_envd(["deploy", "--target", "swarm"], cwd=tmp_path, env=_podman(tmp_path))
    assert proc.returncode == 2
    assert "Swarm has no Podman counterpart" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
