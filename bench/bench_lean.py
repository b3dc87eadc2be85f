"""The lean entry's two commands, before and after, beside Compose v2 (issue 15).

    python bench/bench_lean.py --services 50 --repeat 12 [--before /path/to/old/envd]
    python bench/bench_lean.py --status 50,200 --repeat 12 [--before ...]

``--services``: a no-op ``up --once`` of the growth bench's project shape,
three ways in alternation each round — envd's lean entry, envd's full path
(``ENVD_LEAN=off``), the ``--before`` envd if given (another checkout's
console script) — and Compose v2's no-op ``up -d`` of the same shape.
``--status``: ``status --json`` against a warm daemon at each size, the lean
client and the full one (and ``--before``). Prints medians and spread
(min–max); every object it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compose_tools import (
    COMPOSE_LABEL,
    COMPOSE_V2_DEFAULT,
    ENVD_LABEL,
    Project,
    envd_command,
    run,
)

IMAGE = "envd-local/busybox:latest"


def _env(lean: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVD_", "COMPOSE_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not lean:
        env["ENVD_LEAN"] = "off"
    return env


def _line(name: str, times: list[float], cpu: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    cpu_ms = sorted(c * 1000 for c in cpu)
    return (
        f"  {name:<22} wall median {statistics.median(ms):7.1f} ms"
        f" (min {ms[0]:.1f}, max {ms[-1]:.1f}); CPU median {statistics.median(cpu_ms):6.1f} ms"
        f" (min {cpu_ms[0]:.1f}, max {cpu_ms[-1]:.1f}); n={len(ms)}"
    )


def bench_up(n: int, repeat: int, before: str | None, v2: str, prefix: str) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"{prefix}-bench-"))
    envd_dir = root / "envd"
    v2_dir = root / "v2"
    envd_dir.mkdir()
    v2_dir.mkdir()
    name = f"{prefix}-up-{n}"
    envd = Project("envd", name, envd_dir, n, IMAGE, envd_command(), _env(True), ENVD_LABEL)
    compose = Project(
        "v2",
        f"{prefix}-v2-{n}",
        v2_dir,
        n,
        IMAGE,
        [v2, "-p", f"{prefix}-v2-{n}", "--ansi", "never"],
        _env(True),
        COMPOSE_LABEL,
    )
    projects = [envd, compose]
    if before:
        # Its own project: two envds in one directory would each miss the
        # other's desired cache (the key covers the code).
        old_dir = root / "before"
        old_dir.mkdir()
        old = Project(
            "envd", f"{prefix}-old-{n}", old_dir, n, IMAGE, [before], _env(True), ENVD_LABEL
        )
        projects.append(old)
    try:
        for p in projects:
            p.write()
            r = p.run("up")
            assert r.code == 0, r.output[-2000:]
        up = [*envd_command(), "up", "--once"]
        for _ in range(2):  # the second no-op leaves the witness
            run(up, envd_dir, _env(False))
            if before:
                run([before, "up", "--once"], old_dir, _env(True))
        tools: dict[str, tuple[list[str], dict[str, str]]] = {
            "envd lean": (up, _env(True)),
            "envd full (LEAN=off)": (up, _env(False)),
            "compose v2 up -d": (compose.argv("up"), compose.env),
        }
        if before:
            tools["envd before"] = ([before, "up", "--once"], _env(True))
        times: dict[str, list[float]] = {k: [] for k in tools}
        cpu: dict[str, list[float]] = {k: [] for k in tools}
        for _ in range(repeat):
            for label, (argv, env) in tools.items():
                cwd = {"compose v2 up -d": v2_dir, "envd before": root / "before"}.get(
                    label, envd_dir
                )
                r = run(argv, cwd, env)
                assert r.code == 0, f"{label}: {r.output[-2000:]}"
                times[label].append(r.seconds)
                cpu[label].append(r.cpu_s)
        print(f"no-op up at {n} services ({repeat} alternating rounds):")
        for label, t in times.items():
            print(_line(label, t, cpu[label]))
        lean = statistics.median(times["envd lean"])
        print(f"  lean / v2: {lean / statistics.median(times['compose v2 up -d']):.2f}")
    finally:
        for p in projects:
            p.down_untimed()


def bench_status(sizes: list[int], repeat: int, before: str | None, prefix: str) -> None:
    for n in sizes:
        root = Path(tempfile.mkdtemp(prefix=f"{prefix}-status-"))
        name = f"{prefix}-status-{n}"
        envd = Project("envd", name, root, n, IMAGE, envd_command(), _env(True), ENVD_LABEL)
        try:
            envd.write()
            r = run([*envd_command(), "up", "--timeout", "3600"], root, _env(True), 3600)
            assert r.code == 0, r.output[-2000:]
            status = [*envd_command(), "status", "--json"]
            tools = {"lean client": (status, _env(True)), "full client": (status, _env(False))}
            if before:
                tools["before"] = ([before, "status", "--json"], _env(True))
            times: dict[str, list[float]] = {k: [] for k in tools}
            cpu: dict[str, list[float]] = {k: [] for k in tools}
            for _ in range(2):
                run(status, root, _env(True))
            for _ in range(repeat):
                for label, (argv, env) in tools.items():
                    r = run(argv, root, env)
                    assert r.code == 0, f"{label}: {r.output[-2000:]}"
                    times[label].append(r.seconds)
                    cpu[label].append(r.cpu_s)
            print(f"status --json, warm daemon, {n} services ({repeat} alternating rounds):")
            for label, t in times.items():
                print(_line(label, t, cpu[label]))
        finally:
            envd.down_untimed()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--services", type=int, default=0)
    ap.add_argument("--status", default="")
    ap.add_argument("--repeat", type=int, default=12)
    ap.add_argument("--before", default=None, help="another envd console script to compare")
    ap.add_argument("--compose-v2", default=COMPOSE_V2_DEFAULT)
    # Projects are named after it: two people benchmarking one engine must not share names.
    ap.add_argument("--prefix", default="lean-bench", help="project name prefix")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")
    if args.services:
        bench_up(args.services, args.repeat, args.before, args.compose_v2, args.prefix)
    if args.status:
        bench_status(
            [int(s) for s in args.status.split(",")], args.repeat, args.before, args.prefix
        )


if __name__ == "__main__":
    main()
