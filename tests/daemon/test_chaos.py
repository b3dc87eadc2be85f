"""Crash-only daemon: SIGKILL at random points of applies, then recover, 20+ rounds.

Each round edits the spec (toggles an env var in two services, one of them the
service holding a named volume, so a recreate is under way), lets the daemon
work for a random short time (seeded; this is the chaos, not a wait), kills it
with SIGKILL, and recovers: even rounds with ``envd up --once``, odd rounds
with a fresh daemon that must adopt and finish what the dead one half did.
After each recovery: converged (``envd plan --json`` has 0 changes, every
service running with the current env), one container per (service, replica),
only canonical names, no orphans, and the sentinel in the named volume intact.

Set ``ENVD_CHAOS_SEED`` to replay a failing run; ``ENVD_CHAOS_ROUNDS`` for more.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, describe, envd_env, run_envd, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ENV = {"PYTHONPATH": str(REPO)}
SEED = int(os.environ.get("ENVD_CHAOS_SEED", "20240917"))
ROUNDS = int(os.environ.get("ENVD_CHAOS_ROUNDS", "20"))
CONFIG_HASH = "dev.envd.config-hash"
SERVICES = ("api", "cache", "db", "worker")
TOGGLED = ("api", "db")

SPEC = """\
[services.db]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = {{ GEN = "{db}" }}
volumes = ["data:/data"]
stop_grace_period = "1s"

[services.api]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = {{ GEN = "{api}" }}
stop_grace_period = "1s"

[services.cache]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
stop_grace_period = "1s"

[services.worker]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
depends_on = {{ api = "started" }}
stop_grace_period = "1s"

[volumes.data]
"""


def envd(project_dir: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return run_envd(args, cwd=project_dir, env=ENV, timeout=timeout)


def pid_alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text.rsplit(")", 1)[-1].split()[0] != "Z"


class Chaos:
    """The daemons this test starts; teardown stops them even when the test fails."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = open(project_dir.parent / "daemons.out", "ab")  # noqa: SIM115

    @property
    def current(self) -> subprocess.Popen[bytes]:
        return self.procs[-1]

    def start_daemon(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "envd", "daemon"],
            cwd=self.project_dir,
            env=envd_env(ENV),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        self.procs.append(proc)
        return proc

    def wait_daemon_answers(self, proc: subprocess.Popen[bytes]) -> None:
        from envd.daemon.client import DaemonClient

        client = DaemonClient(self.project_dir / ".envd" / "daemon.sock", timeout=2.0)

        def answers() -> bool:
            assert proc.poll() is None, f"the daemon exited with {proc.returncode}"
            try:
                return bool(client._request("GET", "/v1/ping")["pid"] == proc.pid)
            except Exception:
                return False

        wait_for(answers, timeout=30, interval=0.05, message="the new daemon to answer")

    def wait_daemon_in_sync(self, proc: subprocess.Popen[bytes], where: str) -> None:
        """Poll the daemon's own status until its pass is done and nothing drifts."""
        from envd.daemon.client import DaemonClient

        client = DaemonClient(self.project_dir / ".envd" / "daemon.sock", timeout=10.0)

        def in_sync() -> bool:
            assert proc.poll() is None, f"{where}: the daemon exited with {proc.returncode}"
            st = client.status()
            d = st["daemon"]
            return bool(
                d["passes"] >= 1
                and d["completed"] == d["generation"]
                and d["last_result"] == "ok"
                and st.get("in_sync")
            )

        wait_for(in_sync, timeout=60, interval=0.1, message=f"{where}: the new daemon to converge")

    def teardown(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self.log.close()
        if (self.project_dir / "envd.toml").exists():
            try:
                envd(self.project_dir, "down", "-v", timeout=60)
            except AssertionError:
                pass


@pytest.fixture
def chaos(project_dir: Path) -> Iterator[Chaos]:
    c = Chaos(project_dir)
    try:
        yield c
    finally:
        c.teardown()


def hashes(client: Any, project: str) -> dict[str, tuple[str, str]]:
    """(state, config hash) per service, from one cheap list call."""
    flt = {"label": f"dev.envd.project={project}"}
    return {
        c["Labels"].get("dev.envd.service", ""): (c["State"], c["Labels"].get(CONFIG_HASH, ""))
        for c in client.api.containers(all=True, filters=flt)
    }


def killed_at(client: Any, project: str, old: dict[str, tuple[str, str]]) -> str:
    """Where the kill landed, judged from the engine: before, during or after the apply."""
    now = hashes(client, project)
    if all(now.get(s) == old[s] for s in TOGGLED):
        return "before apply"
    if all(
        (st := now.get(s)) is not None and st[0] == "running" and st[1] != old[s][1]
        for s in TOGGLED
    ):
        return "after apply"
    return "mid-apply"


def check_converged(
    project_dir: Path, project: str, client: Any, gens: dict[str, str], token: str, where: str
) -> None:
    """Every invariant of a converged project after a crash; fails naming the round."""
    proc = envd(project_dir, "plan", "--json", timeout=60)
    assert proc.returncode == 0, f"{where}: {describe(proc)}"
    plan = json.loads(proc.stdout)
    assert plan["changes"] == 0, f"{where}: not converged: {plan['actions']}"

    flt = {"label": f"dev.envd.project={project}"}
    cs = client.containers.list(all=True, filters=flt)
    slots: dict[tuple[str, str], list[str]] = {}
    for c in cs:
        key = (c.labels.get("dev.envd.service", ""), c.labels.get("dev.envd.replica", "1"))
        slots.setdefault(key, []).append(c.name)
    dupes = {k: v for k, v in slots.items() if len(v) > 1}
    assert not dupes, f"{where}: duplicate containers per (service, replica): {dupes}"
    names = sorted(c.name for c in cs)
    assert names == sorted(f"{project}-{s}-1" for s in SERVICES), (
        f"{where}: containers with leftover names or orphans: {names}"
    )
    for c in cs:
        assert c.status == "running", f"{where}: {c.name} is {c.status}"
        env = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])
        service = c.labels["dev.envd.service"]
        if service in gens:
            assert env.get("GEN") == gens[service], f"{where}: {c.name} runs an old config"
    vols = client.volumes.list(filters=flt)
    assert [v.name for v in vols] == [f"{project}_data"], f"{where}: volumes {vols}"
    code, out = client.containers.get(f"{project}-db-1").exec_run(["cat", "/data/sentinel"])
    assert code == 0 and out.decode() == token, f"{where}: sentinel lost: {code} {out!r}"


def test_sigkill_during_applies_never_loses_or_duplicates(
    project_dir: Any, project_name: str, chaos: Chaos, docker_client: Any
) -> None:
    """Killing the daemon with SIGKILL at random points of applies, 20+ times, always recovers cleanly."""
    rng = random.Random(SEED)
    gens = {s: "0" for s in TOGGLED}
    project_dir.write(SPEC.format(**gens))
    started = time.monotonic()

    proc = chaos.start_daemon()
    chaos.wait_daemon_answers(proc)
    wait_for(
        lambda: json.loads(envd(project_dir, "plan", "--json").stdout or "{}").get("changes") == 0,
        timeout=60,
        interval=0.2,
        message="the first daemon to converge the project",
    )
    token = f"sentinel {secrets.token_hex(8)}\n"
    db = docker_client.containers.get(f"{project_name}-db-1")
    code, out = db.exec_run(["sh", "-c", f"printf '%s' '{token}' > /data/sentinel"])
    assert code == 0, out
    check_converged(project_dir, project_name, docker_client, gens, token, "before round 1")

    delays: list[float] = []
    outcomes: dict[str, int] = {}
    phases: dict[str, float] = {}

    def timed(phase: str, t0: float) -> None:
        phases[phase] = phases.get(phase, 0.0) + time.monotonic() - t0

    for round_no in range(1, ROUNDS + 1):
        where = f"round {round_no} (seed {SEED})"
        old = hashes(docker_client, project_name)
        for s in TOGGLED:
            gens[s] = str(round_no)
        project_dir.write(SPEC.format(**gens))
        delay = rng.uniform(0.0, 0.4)
        delays.append(delay)
        time.sleep(delay)  # chaos: let the daemon get some way into the apply
        proc.kill()
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert not pid_alive(proc.pid)
        outcome = killed_at(docker_client, project_name, old)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

        t0 = time.monotonic()
        if round_no % 2 == 0:
            rec = envd(project_dir, "up", "--once", "--timeout", "60", timeout=120)
            assert rec.returncode == 0, f"{where}: {describe(rec)}"
            timed("up --once", t0)
            t0 = time.monotonic()
            check_converged(project_dir, project_name, docker_client, gens, token, where)
            timed("check", t0)
            t0 = time.monotonic()
            proc = chaos.start_daemon()
            chaos.wait_daemon_answers(proc)
            timed("daemon start", t0)
        else:
            # A new daemon alone must adopt the half-done state and finish it.
            proc = chaos.start_daemon()
            chaos.wait_daemon_answers(proc)
            chaos.wait_daemon_in_sync(proc, where)
            timed("new daemon converges", t0)
            t0 = time.monotonic()
            check_converged(project_dir, project_name, docker_client, gens, token, where)
            timed("check", t0)

    elapsed = time.monotonic() - started
    print(
        f"\nchaos: {ROUNDS} rounds in {elapsed:.1f}s, seed {SEED}; state at the kill: {outcomes}; "
        f"time per phase: { {k: round(v, 1) for k, v in phases.items()} }; "
        f"delays: {[round(d, 3) for d in delays]}"
    )
    assert chaos.current.poll() is None
