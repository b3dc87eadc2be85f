"""Engine adapter vs the Docker SDK, measured side by side in one run.

1. A cold process that imports the adapter and lists a project's containers
   (what a no-op ``envd up`` pays before planning), against the same with the
   Docker SDK, and against a bare interpreter.
2. Create + start N busybox containers from 8 threads, with ``DockerEngine``
   and with the SDK's ``APIClient`` (the same API calls), then remove them.

Usage: python bench/bench_engine.py [--containers 50] [--runs 15] [--rounds 3]
Needs a Docker engine and the busybox test image (ENVD_TEST_IMAGE).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine_work import parallel  # noqa: E402

from envd.engine.docker.client import DockerEngine  # noqa: E402
from envd.values.types import ContainerCreate  # noqa: E402

IMAGE = os.environ.get("ENVD_TEST_IMAGE", "envd-local/busybox:latest")

COLD_ENVD = (
    "from envd.engine.docker.client import DockerEngine; DockerEngine().list_containers('x')"
)
COLD_SDK = (
    "import docker; docker.APIClient(version='1.41')"
    ".containers(all=True, filters={'label': 'dev.envd.project=x'})"
)


def cold(codes: dict[str, str], runs: int) -> dict[str, float]:
    """Median wall time (s) of a fresh interpreter running each code, interleaved."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    times: dict[str, list[float]] = {k: [] for k in codes}
    for _ in range(runs):
        for key, code in codes.items():
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            times[key].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def warm(fn: Callable[[], Any], calls: int = 200) -> float:
    """Median seconds per call of ``fn`` in a warm process."""
    fn()
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n = args.containers

    c = cold({"bare": "pass", "envd": COLD_ENVD, "sdk": COLD_SDK}, args.runs)
    bare, envd_cold, sdk_cold = c["bare"], c["envd"], c["sdk"]
    print(f"cold list_containers (median of {args.runs}, interpreter included):")
    print(f"  bare python       {bare * 1000:7.1f} ms")
    print(f"  envd DockerEngine {envd_cold * 1000:7.1f} ms  (+{(envd_cold - bare) * 1000:.1f} ms)")
    print(f"  docker SDK        {sdk_cold * 1000:7.1f} ms  (+{(sdk_cold - bare) * 1000:.1f} ms)")
    print(f"  ratio SDK/envd (over bare): {(sdk_cold - bare) / (envd_cold - bare):.1f}x")

    import docker

    eng = DockerEngine()
    eng.ping()
    if eng.inspect_image(IMAGE) is None:
        sys.exit(f"{IMAGE} is missing: run the contract suite once, or set ENVD_TEST_IMAGE")
    api = docker.APIClient(version="1.41", timeout=120)
    run = uuid.uuid4().hex[:8]

    flt = {"label": "dev.envd.project=x"}
    we = warm(lambda: eng.list_containers("x"))
    ws = warm(lambda: api.containers(all=True, filters=flt))
    print("\nwarm list_containers (median per call, same process):")
    print(f"  envd {we * 1e6:.0f} us, SDK {ws * 1e6:.0f} us, ratio SDK/envd {ws / we:.1f}x")

    def envd_one(i: int) -> None:
        project = f"bench-envd-{run}"
        cid = eng.create_container(
            ContainerCreate(
                name=f"{project}-c-{i}",
                image=IMAGE,
                labels={"dev.envd.project": project},
                command=("sleep", "3600"),
            )
        )
        eng.start_container(cid)

    def sdk_one(i: int) -> None:
        project = f"bench-sdk-{run}"
        c = api.create_container(
            IMAGE,
            command=["sleep", "3600"],
            name=f"{project}-c-{i}",
            labels={"dev.envd.project": project},
            host_config=api.create_host_config(init=True, restart_policy={"Name": ""}),
            stop_signal="SIGTERM",
        )
        api.start(c["Id"])

    def cleanup(project: str) -> float:
        ids = [c.id for c in eng.list_containers(project)]
        return parallel(lambda i: eng.remove_container(ids[i], volumes=True), len(ids))

    ups: dict[str, list[float]] = {"envd": [], "sdk": []}
    downs: list[float] = []
    try:
        # Alternate the order so neither side always meets a warmer engine.
        for r in range(args.rounds):
            order = [("envd", envd_one), ("sdk", sdk_one)]
            for label, fn in order if r % 2 == 0 else order[::-1]:
                ups[label].append(parallel(fn, n))
                downs.append(cleanup(f"bench-{label}-{run}"))
    finally:
        cleanup(f"bench-envd-{run}")
        cleanup(f"bench-sdk-{run}")

    eu, su = statistics.median(ups["envd"]), statistics.median(ups["sdk"])
    print(f"\ncreate+start {n} containers, 8 threads (median of {args.rounds} rounds):")
    print(f"  envd DockerEngine {eu:6.2f} s   ({eu / n * 1000:.1f} ms/container)")
    print(f"  docker SDK        {su:6.2f} s   ({su / n * 1000:.1f} ms/container)")
    print(f"  ratio SDK/envd: {su / eu:.2f}x")
    print(f"remove {n} (force, 8 threads, envd): median {statistics.median(downs):.2f} s")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
