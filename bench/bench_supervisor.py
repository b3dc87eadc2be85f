"""The daemon as a supervisor on the real engine (issue 13): heal and dependent restarts.

One throw-away project: ``db`` (busybox; healthy while /tmp/ok exists, which
each start creates; healthcheck ``interval`` and ``retries`` from the options)
and ``api``, which ``depends_on = { db = { condition = "healthy", restart =
true } }``. After ``envd up``:

* ``heal``  — ``docker exec db rm /tmp/ok``; the engine marks db unhealthy,
  the daemon restarts it, it turns healthy again. Every time comes from the
  engine's own clock: *unhealthy at* is the end of the failing probe that
  made it unhealthy, *healthy at* the end of the first passing probe after
  the new ``StartedAt``. Reported: unhealthy → healthy again (the issue's
  budget: ``interval × retries + 2 s``) and unhealthy → restarted (the
  daemon's reaction). The bench's heal policy has a 1 s window so each round
  is a first heal (no back-off, no flapping).
* ``deps``  — ``docker restart -t 1 db`` by hand; reported: db healthy again
  → api restarted (its new ``StartedAt``; the issue's budget: 3 s), and the
  whole restart → api restarted.
* ``oneshot`` — ``envd up`` against the running daemon with the one-shot
  ``job`` completed: wall time, and whether ``job``'s container id and
  ``FinishedAt`` stayed the same (nothing created, started or run).

    python bench/bench_supervisor.py --rounds 10 [--interval 1s --retries 2]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from envd.engine.docker.answers import engine_time  # noqa: E402
from envd.spec.durations import parse_duration  # noqa: E402

IMAGE = "envd-local/busybox:latest"

SPEC = """\
[project]
name = "{project}"

[services.db]
image = "{image}"
command = ["sh", "-c", "touch /tmp/ok; exec sleep 3600"]
healthcheck = {{ test = ["CMD-SHELL", "test -f /tmp/ok"], interval = "{interval}", timeout = "2s", retries = {retries} }}
stop_grace_period = "1s"
heal = {{ max = 100, window = "1s", backoff = "100ms" }}

[services.api]
image = "{image}"
command = ["sleep", "3600"]
stop_grace_period = "1s"
depends_on = {{ db = {{ condition = "healthy", restart = true }}, job = "completed" }}

[services.job]
image = "{image}"
command = ["sh", "-c", "echo migrated"]
"""


def envd(cwd: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "envd", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"envd {' '.join(args)} failed:\n{proc.stderr}")


def wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


def state(client: Any, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = client.api.inspect_container(name)["State"]
    return doc


def healthy_after(st: dict[str, Any], started: float) -> float | None:
    """End time of the first passing probe that ended after ``started``."""
    for probe in (st.get("Health") or {}).get("Log") or []:
        end = engine_time(probe.get("End"))
        if probe.get("ExitCode") == 0 and end is not None and end > started:
            return end
    return None


def heal_round(client: Any, db: str) -> tuple[float, float]:
    before = engine_time(state(client, db)["StartedAt"]) or 0.0
    client.containers.get(db).exec_run(["rm", "/tmp/ok"])

    def unhealthy_at() -> float | None:
        # The probe log keeps the last five probes: read it while it holds the failure.
        st = state(client, db)
        fails = [
            engine_time(p.get("End"))
            for p in (st.get("Health") or {}).get("Log") or []
            if p.get("ExitCode") != 0
        ]
        if (st.get("Health") or {}).get("Status") == "unhealthy" and fails:
            return fails[-1]
        restarted = engine_time(st["StartedAt"]) or 0.0
        return fails[-1] if restarted > before and fails else None

    unhealthy = wait(unhealthy_at, 60, "db to turn unhealthy")
    started = wait(
        lambda: (
            (engine_time(state(client, db)["StartedAt"]) or 0.0) > before
            and engine_time(state(client, db)["StartedAt"])
        ),
        60,
        "the daemon to restart db",
    )
    healthy = wait(lambda: healthy_after(state(client, db), started), 60, "db healthy again")
    return healthy - unhealthy, started - unhealthy


def deps_round(client: Any, db: str, api: str) -> tuple[float, float]:
    api_before = engine_time(state(client, api)["StartedAt"]) or 0.0
    t0 = time.time()
    client.api.restart(db, timeout=1)
    db_started = engine_time(state(client, db)["StartedAt"]) or 0.0
    healthy = wait(lambda: healthy_after(state(client, db), db_started), 60, "db healthy again")
    api_started = wait(
        lambda: (
            (engine_time(state(client, api)["StartedAt"]) or 0.0) > api_before
            and engine_time(state(client, api)["StartedAt"])
        ),
        60,
        "the daemon to restart api",
    )
    return api_started - healthy, api_started - t0


def noop_up(root: Path, client: Any, job: str) -> tuple[float, bool]:
    before = client.api.inspect_container(job)
    t0 = time.perf_counter()
    envd(root, "up")
    wall = time.perf_counter() - t0
    after = client.api.inspect_container(job)
    same = (after["Id"], after["State"]["FinishedAt"]) == (
        before["Id"],
        before["State"]["FinishedAt"],
    )
    return wall, same


def summary(values: list[float]) -> str:
    qs = sorted(values)
    p95 = qs[min(len(qs) - 1, round(0.95 * (len(qs) - 1)))]
    return f"{statistics.median(qs):.2f} | {p95:.2f} | {max(qs):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--retries", type=int, default=2)
    args = ap.parse_args()
    import docker

    client = docker.from_env()
    project = f"bench-sup-{secrets.token_hex(3)}"
    budget = parse_duration(args.interval) * args.retries + 2.0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / project
        root.mkdir()
        (root / "envd.toml").write_text(
            SPEC.format(project=project, image=IMAGE, interval=args.interval, retries=args.retries)
        )
        try:
            envd(root, "up")
            db, api = f"{project}-db-1", f"{project}-api-1"
            heals = [heal_round(client, db) for _ in range(args.rounds)]
            wait(lambda: state(client, db)["Health"]["Status"] == "healthy", 60, "db healthy")
            deps = [deps_round(client, db, api) for _ in range(args.rounds)]
            noops = [noop_up(root, client, f"{project}-job-1") for _ in range(args.rounds)]
        finally:
            envd(root, "down")
    load = os.getloadavg()[0]
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        ("heal: unhealthy → healthy again", [h[0] for h in heals], f"≤ {budget:g}"),
        ("heal: unhealthy → restarted", [h[1] for h in heals], ""),
        ("deps: db healthy → api restarted", [d[0] for d in deps], "≤ 3"),
        ("deps: `docker restart db` → api restarted", [d[1] for d in deps], ""),
        ("no-op `envd up` with a completed one-shot (wall)", [n[0] for n in noops], ""),
    ]
    print(
        f"{when}, {args.rounds} rounds, healthcheck interval {args.interval} × retries"
        f" {args.retries}, load {load:.2f}, {platform.node()}"
    )
    print("| measure | p50 s | p95 s | max s | target s | verdict |")
    print("|---|---|---|---|---|---|")
    for label, values, target in rows:
        verdict = ""
        if target:
            verdict = "PASS" if max(values) <= float(target.split()[-1]) else "MISS"
        print(f"| {label} | {summary(values)} | {target} | {verdict} |")
    untouched = sum(1 for _, same in noops if same)
    print(
        f"\none-shot container id and FinishedAt unchanged after {untouched} of"
        f" {len(noops)} no-op `envd up`s"
    )


if __name__ == "__main__":
    main()
