"""Two revisions of envd side by side: no-op ``up --once`` (and ``plan``) at N services.

A refactor must not slow envd down. This script checks out each revision given
with ``--rev`` into a temporary git worktree, brings up one project per
revision (same spec, distinct project names, so neither revision's
``.envd/desired.cache`` is invalidated by the other's), then times the same
command for each revision, alternating which goes first in each round, and
prints the median, the spread (min..max, interquartile range) and the ratio of
each revision to the first one.

    python bench/bench_revisions.py --rev 76fe4d7 --rev HEAD --services 50 --runs 12

Both projects are torn down at the end, even after a failure. Each envd runs
as ``python -m envd`` with the worktree first on ``PYTHONPATH`` and this
checkout's virtualenv (same interpreter, same libraries for both).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGE = "envd-local/busybox:latest"


def spec(project: str, services: int, image: str) -> str:
    lines = [f'[project]\nname = "{project}"\n']
    for i in range(services):
        lines.append(
            f'[services.s{i}]\nimage = "{image}"\ncommand = ["sleep", "86400"]\n'
            'stop_grace_period = "1s"\n'
        )
    return "\n".join(lines)


def python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def envd(tree: Path, project_dir: Path, *args: str) -> float:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(tree)
    env["PYTHONPYCACHEPREFIX"] = str(tree / ".pycache")
    start = time.perf_counter()
    proc = subprocess.run(
        [python(), "-m", "envd", "-C", str(project_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"bench_revisions: `envd {' '.join(args)}` in {tree} failed ({proc.returncode}):\n"
            f"{proc.stderr}"
        )
    return elapsed


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 4:
        return min(values), max(values)
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", action="append", required=True, help="git revision (give two or more)")
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--image", default=DEFAULT_IMAGE)
    ap.add_argument(
        "--command",
        default="up --once",
        help="the envd command to time on the converged project (default: 'up --once')",
    )
    args = ap.parse_args()
    if len(args.rev) < 2:
        ap.error("give at least two --rev")
    timed = args.command.split()

    with tempfile.TemporaryDirectory(prefix="envd-bench-rev-") as tmp:
        root = Path(tmp)
        trees: list[Path] = []
        dirs: list[Path] = []
        try:
            for i, rev in enumerate(args.rev):
                tree = root / f"tree{i}"
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev],
                    check=True,
                    capture_output=True,
                )
                trees.append(tree)
                project = root / f"p{i}"
                project.mkdir()
                (project / "envd.toml").write_text(spec(f"benchrev{i}", args.services, args.image))
                dirs.append(project)
                envd(tree, project, "up", "--once")
                envd(tree, project, *timed)  # warm the bytecode and the desired-state cache
            times: list[list[float]] = [[] for _ in trees]
            for r in range(args.runs):
                order = range(len(trees)) if r % 2 == 0 else reversed(range(len(trees)))
                for i in order:
                    times[i].append(envd(trees[i], dirs[i], *timed))
        finally:
            for tree, project in zip(trees, dirs, strict=False):
                try:
                    envd(tree, project, "down")
                except SystemExit as exc:
                    print(exc, file=sys.stderr)
            for tree in trees:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                    check=False,
                    capture_output=True,
                )

    base = statistics.median(times[0])
    print(f"`envd {args.command}` at {args.services} services, {args.runs} alternating runs")
    print("| revision | median | min..max | IQR | ratio to first |")
    print("|---|---|---|---|---|")
    for rev, ts in zip(args.rev, times, strict=True):
        med = statistics.median(ts)
        lo, hi = quartiles(ts)
        print(
            f"| {rev} | {med * 1000:.0f} ms | {min(ts) * 1000:.0f}..{max(ts) * 1000:.0f} ms"
            f" | {lo * 1000:.0f}..{hi * 1000:.0f} ms | {med / base:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
