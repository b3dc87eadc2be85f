"""The floor under the lean no-op ``up --once`` (issue 15), step by step.

    python bench/lean_floor.py DIR [--repeat 15]

``DIR`` is a converged envd project whose last ``up --once`` left a witness
(run ``envd up --once`` there twice first). Each step is a fresh process,
the steps alternate every round: the bare interpreter, with site (what a
console script starts with), plus the ``import re`` pip's generated script
does, plus the stdlib the lean path needs, plus envd's lean modules, and the
lean no-op itself; then, in this process, the engine's answers the lean path
asks for (the container list alone, all of them one by one and side by
side) and ``engine_state``'s own CPU. Medians (and minima) of wall and CPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from envd.cli import _lean_read  # noqa: E402
from envd.cli._lean_wire import get, get_all  # noqa: E402
from envd.values import jsontext  # noqa: E402

LEAN_MODULES = (
    "envd.__main__, envd.cli._lean_read, envd.inputs.desired_key, envd.inputs.approvals,"
    " envd.inputs.keys, envd.run.lock_file, envd.cli.progress"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("project", type=Path)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--socket", default="/var/run/docker.sock")
    args = ap.parse_args()
    py = sys.executable
    envd = str(Path(py).parent / "envd")
    drop = ("PYTHONDONTWRITEBYTECODE",)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVD_") and k not in drop}
    steps = {
        "python -S -c pass": [py, "-S", "-c", "pass"],
        "python -c pass (site)": [py, "-c", "pass"],
        "+ the console script's import re": [py, "-c", "import re, sys"],
        "+ stdlib the lean path needs": [py, "-c", "import re, sys, _json, _socket, fcntl, errno"],
        "+ envd's lean modules": [py, "-c", f"import re, sys; import {LEAN_MODULES}"],
        "lean no-op up --once": [envd, "-C", str(args.project), "up", "--once"],
    }
    wall: dict[str, list[float]] = {k: [] for k in steps}
    cpu: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.repeat):
        for label, argv in steps.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True, check=False)
            wall[label].append((time.perf_counter() - started) * 1000)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            cpu[label].append(used * 1000)
            assert done.returncode == 0, (label, done.stderr[-500:])
    raw = (args.project / ".envd" / "lean-up.witness").read_bytes()
    w = jsontext.loads(raw[32:])
    urls = _lean_read.engine_questions(w["project"], w["refs"])
    one: list[float] = []
    each: list[float] = []
    side: list[float] = []
    own: list[float] = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        get(args.socket, urls[0])
        one.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for url in urls:
            get(args.socket, url)
        each.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        get_all(args.socket, urls)
        side.append((time.perf_counter() - started) * 1000)
        started = time.process_time()
        _lean_read.engine_state(args.socket, w["project"], w["refs"])
        own.append((time.process_time() - started) * 1000)
    print(f"load {os.getloadavg()[0]:.1f}, {args.repeat} alternating rounds, {w['project']}")
    for label in steps:
        print(
            f"  {label:<36} wall {statistics.median(wall[label]):6.1f} ms"
            f" (min {min(wall[label]):5.1f})  CPU {statistics.median(cpu[label]):6.1f} ms"
            f" (min {min(cpu[label]):5.1f})"
        )
    n = len(urls)
    for label, times in (
        ("engine: the container list alone", one),
        (f"engine: the {n} answers one by one", each),
        (f"engine: the {n} answers side by side", side),
    ):
        print(f"  {label:<36} wall {statistics.median(times):6.1f} ms (min {min(times):5.1f})")
    print(f"  {'engine_state own CPU':<36} {statistics.median(own):6.1f} ms (min {min(own):5.1f})")


if __name__ == "__main__":
    main()
