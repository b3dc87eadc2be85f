"""Benchmark the pure planner: ``make_plan`` over a 500-service project.

Scenarios, each over the same desired project (500 services in chains of
dependencies, with ports, volumes, env, healthchecks; no engine involved):

* ``empty``: nothing exists yet (every image pulled, every container pending);
* ``images``: images present, no containers (500 creates);
* ``converged``: everything runs with matching hashes (the no-op every daemon
  pass computes; this is the number that matters);
* ``one-change``: converged, but one service's command changed (one recreate).

Each is timed with warm-up runs, then ``--runs`` runs; the median and the spread
(p10–p90) of wall time are printed, with the median CPU time of the thread
(meaningful when the machine is busy). The peer, measured in the same run, is the floor any
planner pays: computing each container's config hash (``container_for``) alone;
the ratio says how much planning costs on top of hashing. Target: the converged
median under 50 ms.

Usage: ``python3 bench/bench_plan.py [--services 500] [--runs 50] [--markdown]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


from envd.core.desired import DesiredProject, container_for, desire  # noqa: E402
from envd.core.observed import Observed  # noqa: E402
from envd.core.plan import make_plan  # noqa: E402
from envd.spec.load import load  # noqa: E402
from envd.values.keys import Keys  # noqa: E402
from envd.values.types import (  # noqa: E402
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedVolume,
)

TARGET_MS = 50.0


def spec_text(services: int) -> str:
    """A project of ``services`` services; every tenth starts a new dependency chain."""
    out = ['[project]\nname = "bench"\n']
    for i in range(services):
        dep = f'depends_on = {{ s{i - 1} = "started" }}\n' if i % 10 else ""
        out.append(
            f"[services.s{i}]\n"
            f'image = "img{i % 20}:1"\n'
            f'command = ["serve", "--id", "{i}"]\n'
            f'env = {{ ID = "{i}", MODE = "bench", URL = "http://s{i}:8080" }}\n'
            f'ports = ["127.0.0.1::{8000 + i % 1000}"]\n'
            f'volumes = ["data{i % 10}:/data"]\n'
            'healthcheck = { test = ["CMD", "true"], interval = "1s" }\n'
            f'labels = {{ team = "t{i % 7}" }}\n'
            f"{dep}"
        )
    for v in range(10):
        out.append(f"[volumes.data{v}]\n")
    return "\n".join(out)


def desired_project(services: int, command_of_s0: str = "serve") -> DesiredProject:
    with tempfile.TemporaryDirectory() as tmp:
        text = spec_text(services).replace(
            '["serve", "--id", "0"]', f'["{command_of_s0}", "--id", "0"]'
        )
        (Path(tmp) / "envd.toml").write_text(text)
        return desire(load(tmp, environ={}), {}, keys=Keys(b"bench-hash-key"))


def image_id(ref: str) -> str:
    return "sha256:" + ref.encode().hex().ljust(64, "0")[:64]


def observed_for(desired: DesiredProject, *, images: bool, containers: bool) -> Observed:
    refs = {s.image_ref for s in desired.services.values()}
    imgs: dict[str, ObservedImage | None] = {
        r: ObservedImage(r, image_id(r)) if images else None for r in sorted(refs)
    }
    running: list[ObservedContainer] = []
    if containers:
        for svc in desired.services.values():
            for replica in range(1, svc.replicas + 1):
                want = container_for(desired, svc, replica, image_id(svc.image_ref))
                running.append(
                    ObservedContainer(f"id-{want.name}", want.name, dict(want.labels), "running")
                )
    return Observed(
        containers=tuple(running),
        networks=tuple(
            ObservedNetwork(n.name, n.name, dict(n.labels)) for n in desired.networks.values()
        )
        if containers
        else (),
        volumes=tuple(ObservedVolume(v.name, dict(v.labels)) for v in desired.volumes.values())
        if containers
        else (),
        images=imgs,
    )


def measure(
    fn: Callable[[], object], runs: int, warmup: int = 3
) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms) per run; CPU time stays meaningful on a busy machine."""
    for _ in range(warmup):
        fn()
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append((time.thread_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return wall, cpu


def summary(times: list[float]) -> tuple[float, float, float]:
    deciles = statistics.quantiles(times, n=10)
    return statistics.median(times), deciles[0], deciles[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)

    desired = desired_project(args.services)
    changed = desired_project(args.services, command_of_s0="serve2")
    empty = observed_for(desired, images=False, containers=False)
    no_containers = observed_for(desired, images=True, containers=False)
    converged = observed_for(desired, images=True, containers=True)

    def hash_floor() -> None:
        for svc in desired.services.values():
            container_for(desired, svc, 1, image_id(svc.image_ref))

    scenarios: list[tuple[str, Callable[[], object]]] = [
        ("hash only (floor)", hash_floor),
        ("empty", lambda: make_plan(desired, empty)),
        ("images", lambda: make_plan(desired, no_containers)),
        ("converged", lambda: make_plan(desired, converged)),
        ("one-change", lambda: make_plan(changed, converged)),
    ]
    # Sanity: the scenarios plan what they claim to.
    assert not make_plan(desired, converged).changes
    one = list(make_plan(changed, converged).changes)
    assert [(a.kind, a.service) for a in one] == [("recreate", "s0")], one

    results = []
    for name, fn in scenarios:
        wall, cpu = measure(fn, args.runs)
        results.append((name, summary(wall), statistics.median(cpu)))
    floor = results[0][1][0]
    if args.markdown:
        print(
            f"| scenario ({args.services} services) | median ms | p10–p90 ms | CPU median ms"
            " | × hash floor |"
        )
        print("|---|---:|---:|---:|---:|")
    else:
        print(f"make_plan over {args.services} services, {args.runs} runs each")
    for name, (median, p10, p90), cpu_median in results:
        ratio = median / floor if floor else float("nan")
        if args.markdown:
            print(
                f"| {name} | {median:.2f} | {p10:.2f}–{p90:.2f} | {cpu_median:.2f} | {ratio:.2f} |"
            )
        else:
            print(
                f"  {name:<18} median {median:7.2f} ms  (p10 {p10:.2f}, p90 {p90:.2f})"
                f"  cpu {cpu_median:7.2f} ms  ×{ratio:.2f}"
            )
    by_name = {name: (wall, cpu) for name, wall, cpu in results}
    wall_median, cpu_median = by_name["converged"][0][0], by_name["converged"][1]
    verdict = "meets" if wall_median < TARGET_MS else "MISSES"
    print(
        f"converged plan: {wall_median:.2f} ms median ({cpu_median:.2f} ms CPU), {verdict} the"
        f" {TARGET_MS:.0f} ms target"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
