"""Repeated ``envd up --once`` / ``envd down`` cycles: does ``down`` always end clean?

Docker 20.10 sometimes keeps a network's endpoint count after many containers
on it are removed at once (moby#42119); removing the network then fails with
"has active endpoints" until dockerd restarts. This script runs C cycles of
up + down of an N-service project and counts the cycles whose ``down`` (or
the next ``up``) failed, and whether anything of the project was left on the
engine after each ``down``. A network that ``down`` left in place because the
engine still counts endpoints with no container attached (envd warns and exits
0; the next ``up`` reuses it) is counted apart as "leaked by the engine", not
as a failure; any other leftover is a failure.

    python bench/bench_down_cycles.py --cycles 30 --services 50

It exits 1 when any cycle failed, so it can gate a change by hand. The
project is torn down at the end, even after a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGE = "envd-local/busybox:latest"


def envd_command() -> list[str]:
    venv = REPO / ".venv" / "bin" / "envd"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "envd"]


def run(cmd: list[str]) -> tuple[int, str, float]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    return proc.returncode, proc.stderr.strip(), time.perf_counter() - start


def leftovers(project: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind in ("ps -a", "network ls", "volume ls"):
        proc = subprocess.run(
            ["docker", *kind.split(), "-q", "--filter", f"label=dev.envd.project={project}"],
            capture_output=True,
            text=True,
            check=False,
        )
        out[kind.split()[0]] = len(proc.stdout.split())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--image", default=DEFAULT_IMAGE)
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = ap.parse_args()
    project = f"downcycles{os.getpid()}"
    envd = envd_command()
    failures: list[dict[str, object]] = []
    leaked: list[int] = []
    ups: list[float] = []
    downs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="envd-bench-down-") as tmp:
        spec = [f'[project]\nname = "{project}"\n']
        for i in range(args.services):
            spec.append(
                f'[services.s{i}]\nimage = "{args.image}"\ncommand = ["sleep", "86400"]\n'
                'stop_grace_period = "1s"\n'
            )
        (Path(tmp) / "envd.toml").write_text("\n".join(spec))
        base = [*envd, "-C", tmp]
        try:
            for cycle in range(1, args.cycles + 1):
                rc, err, took = run([*base, "up", "--once"])
                ups.append(took)
                if rc != 0:
                    failures.append({"cycle": cycle, "step": "up", "exit": rc, "stderr": err})
                    continue
                rc, err, took = run([*base, "down"])
                downs.append(took)
                left = leftovers(project)
                engine_leak = "moby#42119" in err and left == {"ps": 0, "network": 1, "volume": 0}
                if rc == 0 and engine_leak:
                    leaked.append(cycle)
                elif rc != 0 or any(left.values()):
                    failures.append(
                        {"cycle": cycle, "step": "down", "exit": rc, "stderr": err, "left": left}
                    )
                print(
                    f"cycle {cycle}/{args.cycles}: up {ups[-1]:.2f} s, down {downs[-1]:.2f} s,"
                    f" failures so far {len(failures)}, engine leaks {len(leaked)}",
                    file=sys.stderr,
                )
        finally:
            run([*base, "down"])
    result = {
        "cycles": args.cycles,
        "services": args.services,
        "failures": failures,
        "engine_leaked_network_cycles": leaked,
        "up_median_s": round(statistics.median(ups), 2) if ups else None,
        "down_median_s": round(statistics.median(downs), 2) if downs else None,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{args.cycles} cycles of up/down at {args.services} services: "
            f"{len(failures)} failed, the engine leaked the network's endpoint count in"
            f" {len(leaked)} (left in place with a warning, reused by the next up); up median {result['up_median_s']} s,"
            f" down median {result['down_median_s']} s"
        )
        for f in failures:
            print(f"  cycle {f['cycle']} {f['step']}: exit {f['exit']}: {f['stderr']}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
