"""envd vs Docker Compose v2, Compose v1 and the bare engine, side by side in one run.

For each project size N (``--services 10,50``) the script writes an
``envd.toml`` and an equivalent ``docker-compose.yml`` (same image, command,
``init``, ``stop_grace_period``, one project network, no healthchecks) into
temporary directories under distinct project names, then times four steps for
every tool, the tools taking turns step by step; the order rotates each cycle
(round 1: envd, v2, v1, engine; round 2: v2, v1, engine, envd; ...), and the
cycle repeats R times:

* ``cold``   — ``envd up --once`` / ``docker-compose up -d`` from nothing
* ``noop``   — the same command again, nothing changed
* ``change`` — one service's environment variable edited in every spec, up again
  (that service serves HTTP on a published port; a probe every 5 ms gives its
  downtime, old container's last answer → new one's first: ``downtime.py``)
* ``down``   — ``envd down`` / ``docker-compose down``

The tools: envd; Docker Compose v2 (the Go binary at a fixed path, default
``/opt/envd-bench/compose-v2/docker-compose`` or ``$ENVD_COMPOSE_V2``, put there
by ``scripts/install-compose-v2.sh``, which this script runs when it is
missing); Docker Compose v1 (``/usr/bin/docker-compose``, a "not installed"
column when absent); and "engine": the same containers driven through envd's
engine adapter with no planning (``bench/engine_work.py``): the engine's own
work, a floor no tool can beat.

It prints the medians, the envd/v2, envd/v1 and envd/engine ratios and
PASS/MISS of envd/v2 against the targets (judged at ``--target-services``,
default 50), plus the peak RSS of each envd step (from ``os.wait4``). Every
step of every tool is checked afterwards against the engine (how many
containers run, which were recreated) so a tool that silently did nothing
cannot win. Every project is torn down at the end, even when a step fails or
the run is interrupted (Ctrl-C or SIGTERM).

    python bench/bench_compose.py --services 10,50 --repeat 3 --markdown out.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from compose_tools import (
    COMPOSE_V1_DEFAULT,
    COMPOSE_V2_DEFAULT,
    Run,
    Tool,
    compose_version,
    docker,
    ensure_compose_v2,
    envd_command,
    make_projects,
    networks,
    tear_down,
)
from downtime import Probe

STEPS = ("cold", "noop", "change", "down")
STEP_TITLES = {
    "cold": "cold up",
    "noop": "no-op up",
    "change": "one service changed",
    "down": "down",
}
# envd/Compose v2 ratio targets (issue 2, item 9), judged at --target-services.
TARGETS = {"cold": 0.80, "noop": 0.30, "change": 0.35, "down": 0.80}
RSS_TARGET_MB = 80.0
DEFAULT_IMAGE = "envd-local/busybox:latest"
TOOL_TITLES = {"envd": "envd", "v2": "compose v2", "v1": "compose v1", "engine": "engine"}


# --------------------------------------------------------------------------- checks


class BenchError(Exception):
    pass


def check(
    project: Tool,
    step: str,
    result: Run,
    before: dict[str, tuple[str, str]],
    changed: str,
    warnings: list[str],
) -> dict[str, tuple[str, str]]:
    after = project.state()
    leaked = step == "down" and not after and "active endpoints" in result.output
    if result.code != 0 and not leaked:
        raise BenchError(f"{project.tool} {step} exited {result.code}:\n{result.output[-2000:]}")
    if step == "down":
        if after:
            raise BenchError(f"{project.tool} down left {len(after)} container(s)")
        left = networks(project.label, project.name)
        if left:
            # Docker 20.10 can leak a network's endpoint count when many
            # containers go at once (moby/moby#42119): the network then says
            # "has active endpoints" with none attached, until dockerd
            # restarts. Not the tool's doing, but worth knowing how it said so.
            said = " / ".join(
                line.strip() for line in result.output.splitlines() if "network" in line.lower()
            )[-300:]
            warnings.append(
                f"{project.tool} down (exit {result.code}) left network(s) "
                f"{', '.join(left)}; it said: {said or '(nothing)'}"
            )
            print(f"  warning: {warnings[-1]}", file=sys.stderr)
        return after
    running = [n for n, (_, st) in after.items() if st == "running"]
    if len(running) != project.services or len(after) != project.services:
        raise BenchError(
            f"{project.tool} {step}: {len(running)}/{project.services} running, "
            f"{len(after)} container(s)"
        )
    if step in ("noop", "change"):
        old = {cid for cid, _ in before.values()}
        new = {cid for cid, _ in after.values()}
        recreated = len(new - old)
        expect = 0 if step == "noop" else 1
        if recreated != expect:
            raise BenchError(
                f"{project.tool} {step}: {recreated} container(s) recreated, expected {expect}"
            )
        fresh = [n for n, (cid, _) in after.items() if cid not in old]
        if step == "change" and not all(
            n.endswith((f"-{changed}-1", f"_{changed}_1")) for n in fresh
        ):
            raise BenchError(f"{project.tool} change recreated {fresh}, not {changed}")
    return after


# --------------------------------------------------------------------------- the run


@dataclass
class Result:
    services: int
    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    rss: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    cpu: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    downtime: dict[str, list[float]] = field(default_factory=dict)  # tool -> seconds
    warnings: list[str] = field(default_factory=list)

    def add(self, tool: str, step: str, r: Run) -> None:
        self.times.setdefault((tool, step), []).append(r.seconds)
        self.rss.setdefault((tool, step), []).append(r.rss_mb)
        self.cpu.setdefault((tool, step), []).append(r.cpu_s)

    def median(self, tool: str, step: str) -> float:
        return statistics.median(self.times[(tool, step)])

    def best(self, tool: str, step: str) -> float:
        return min(self.times[(tool, step)])

    def median_cpu(self, tool: str, step: str) -> float:
        return statistics.median(self.cpu[(tool, step)])

    def peak_rss(self, tool: str, step: str) -> float:
        return max(self.rss[(tool, step)])


def bench_size(
    n: int,
    repeat: int,
    image: str,
    root: Path,
    envd_cmd: list[str],
    v2: str,
    v1: str | None,
    steps: tuple[str, ...] = STEPS,
    prefix: str = "bench",
) -> Result:
    tools = make_projects(n, image, root, envd_cmd, v2, v1, prefix)
    result = Result(n)
    changed = tools[0].service_names[0]
    try:
        for p in tools:
            p.write()
        tear_down(tools)  # nothing should exist; be sure
        for rep in range(repeat):
            state: dict[str, dict[str, tuple[str, str]]] = {p.tool: {} for p in tools}
            # The order rotates each cycle: a tool that goes later finds the
            # others' containers running, and each tool takes each place in turn.
            k = rep % len(tools)
            order = tools[k:] + tools[:k]
            for p in tools:
                p.generation = {}
                p.write()
            # Every other step needs the project up, and the next round needs it
            # gone: cold and down run in every round, timed only when asked.
            for step in [s for s in STEPS if s in steps or s in ("cold", "down")]:
                if step == "change":
                    for p in tools:
                        p.generation[changed] = rep + 1
                        p.write()
                for p in order:
                    probe = Probe(p.probe_port) if step == "change" else None
                    if probe is not None:
                        probe.start()
                    r = p.run(step, changed)
                    if probe is not None:
                        result.downtime.setdefault(p.tool, []).append(probe.finish())
                    state[p.tool] = check(p, step, r, state[p.tool], changed, result.warnings)
                    if step in steps:
                        result.add(p.tool, step, r)
                    print(
                        f"  N={n} rep {rep + 1}/{repeat} {TOOL_TITLES[p.tool]:<10} {step:<6} "
                        f"{r.seconds:7.3f} s  rss {_mb(r.rss_mb)} MB  cpu {r.cpu_s:5.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        tear_down(tools)
    return result


# --------------------------------------------------------------------------- report


def _mb(value: float) -> str:
    # The engine's work runs in this process: it has no RSS of its own.
    return "     -" if math.isnan(value) else f"{value:6.1f}"


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "inf"


def rows(results: list[Result], target_n: int, steps: tuple[str, ...] = STEPS) -> list[list[str]]:
    out = []
    for res in results:
        has_v1 = any(tool == "v1" for tool, _ in res.times)
        for step in steps:
            e, v2, g = res.median("envd", step), res.median("v2", step), res.median("engine", step)
            v1 = res.median("v1", step) if has_v1 else 0.0
            ratio = e / v2 if v2 else float("inf")
            judged = res.services == target_n
            out.append(
                [
                    str(res.services),
                    STEP_TITLES[step],
                    f"{e:.3f}",
                    f"{v2:.3f}",
                    f"{v1:.3f}" if has_v1 else "not installed",
                    f"{g:.3f}",
                    f"{ratio:.2f}",
                    f"≤ {TARGETS[step]:.2f}" if judged else "",
                    verdict(ratio, TARGETS[step]) if judged else "",
                    _ratio(e, v1) if has_v1 else "-",
                    _ratio(e, g),
                    _ratio(res.best("envd", step), res.best("v2", step)),
                    f"{res.median_cpu('envd', step):.2f}",
                    f"{res.median_cpu('v2', step):.2f}",
                    f"{res.median_cpu('v1', step):.2f}" if has_v1 else "-",
                    f"{res.peak_rss('envd', step):.0f}",
                ]
            )
    return out


HEADER = [
    "services",
    "step",
    "envd s",
    "v2 s",
    "v1 s",
    "engine s",
    "envd/v2",
    "target",
    "verdict",
    "envd/v1",
    "envd/engine",
    "best/best v2",
    "envd CPU s",
    "v2 CPU s",
    "v1 CPU s",
    "envd peak RSS MB",
]
VERDICT = HEADER.index("verdict")


def downtime_lines(results: list[Result]) -> list[str]:
    """The changed service's downtime per tool, next to the one-change times."""
    lines = []
    for res in results:
        if not res.downtime:
            continue
        parts = []
        for tool in ("envd", "v2", "v1", "engine"):
            if tool in res.downtime:
                gap = statistics.median(res.downtime[tool])
                took = res.median(tool, "change")
                parts.append(f"{TOOL_TITLES[tool]} {gap:.3f} s (step {took:.3f} s)")
        lines.append(
            f"downtime of the changed service at {res.services} services (last answer"
            " from the old container → first from the new, probed every 5 ms; median): "
            + "; ".join(parts)
        )
    return lines


def rss_lines(results: list[Result], target_n: int) -> list[str]:
    lines = []
    for res in results:
        up = [s for s in ("cold", "noop", "change") if ("envd", s) in res.rss]
        if not up:  # --steps timed no up
            continue
        up_rss = max(res.peak_rss("envd", s) for s in up)
        judged = res.services == target_n
        mark = (
            f" (target ≤ {RSS_TARGET_MB:.0f} MB: {verdict(up_rss, RSS_TARGET_MB)})"
            if judged
            else ""
        )
        peers = [
            f"{TOOL_TITLES[t]} up: {max(res.peak_rss(t, s) for s in up):.1f} MB"
            for t in ("v2", "v1")
            if (t, up[0]) in res.times
        ]
        lines.append(
            f"peak RSS of `envd up --once` at {res.services} services: "
            f"{up_rss:.1f} MB{mark}; " + "; ".join(peers)
        )
    return lines


def environment(envd_cmd: list[str], v2: str, v1: str | None) -> list[str]:
    try:
        engine = docker("version", "--format", "{{.Server.Version}}").strip()
    except Exception:
        engine = "?"
    v2_version = compose_version(v2)
    v1_text = f"Compose v1 {compose_version(v1)} ({v1})" if v1 else "Compose v1 not installed"
    envd_v = subprocess.run([*envd_cmd, "--version"], capture_output=True, text=True).stdout.strip()
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return [
        f"date: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"machine: {os.cpu_count()} cores, {mem} RAM, {platform.system()} {platform.release()}",
        f"Docker engine: {engine}; Compose v2 {v2_version} ({v2}); {v1_text}; {envd_v}",
        f"envd command: {' '.join(envd_cmd)} ({_interpreter(envd_cmd)})",
        f"load average at start: {_loadavg()}",
    ]


def _interpreter(cmd: list[str]) -> str:
    """The Python that runs an envd command (from the console script's #! line)."""
    exe = cmd[0]
    try:
        with open(exe, "rb") as f:
            first = f.readline().decode("utf-8", "replace").strip()
        if first.startswith("#!"):
            exe = first[2:].split()[0]
    except OSError:
        pass
    code = "import sys, envd; print(sys.version.split()[0]); print(envd.__file__)"
    out = subprocess.run([exe, "-c", code], capture_output=True, text=True, cwd="/").stdout.split(
        "\n"
    )
    version, where = [*out, "?", ""][:2]
    source = Path(where).resolve().parent.parent if where else None
    commit = ""
    if source is not None:
        git = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        )
        if git.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(source), "status", "--porcelain", "envd"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            commit = git.stdout.strip() + (" + uncommitted changes" if dirty else "")
        elif (source / "COMMIT").is_file():
            commit = (source / "COMMIT").read_text().strip()[:12]
    at = f", envd from {source}" + (f" at {commit}" if commit else "") if source else ""
    return f"Python {version} at {exe}{at}"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def format_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [header, *body])


def markdown(
    header: list[str], body: list[list[str]], env: list[str], extra: list[str], repeat: int
) -> str:
    out = [f"<!-- written by bench/bench_compose.py; medians of {repeat} runs -->", ""]
    out += [f"- {line}" for line in env]
    out += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in body]
    out += [""] + [f"- {line}" for line in extra]
    return "\n".join(out) + "\n"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", default="10,50", help="comma-separated sizes (default 10,50)")
    ap.add_argument("--repeat", "-r", type=int, default=3, help="cycles per size (median)")
    ap.add_argument("--image", default=DEFAULT_IMAGE)
    ap.add_argument(
        "--target-services",
        type=int,
        default=50,
        help="size at which the targets are judged (default 50)",
    )
    ap.add_argument("--markdown", metavar="FILE", help="also write the results as markdown")
    ap.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated steps to time (default {','.join(STEPS)}); cold up runs "
        "untimed when another step needs the project up",
    )
    ap.add_argument(
        "--prefix",
        default="bench",
        help="start of every project name (default bench), so runs sharing an engine stay apart",
    )
    ap.add_argument(
        "--envd",
        metavar="CMD",
        help="envd command to run (default: .venv/bin/envd, the one beside this "
        "interpreter, envd on PATH, or python -m envd)",
    )
    ap.add_argument(
        "--compose-v2",
        metavar="PATH",
        default=os.environ.get("ENVD_COMPOSE_V2") or COMPOSE_V2_DEFAULT,
        help=f"Compose v2 binary, installed there when missing (default $ENVD_COMPOSE_V2 or "
        f"{COMPOSE_V2_DEFAULT})",
    )
    ap.add_argument(
        "--compose-v1",
        metavar="PATH",
        default=COMPOSE_V1_DEFAULT,
        help=f"Compose v1 binary; its column says 'not installed' when absent "
        f"(default {COMPOSE_V1_DEFAULT})",
    )
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.services.split(",") if s.strip()]
    steps = tuple(s for s in STEPS if s in {x.strip() for x in args.steps.split(",")})
    if not steps or not re.fullmatch(r"[a-z0-9]+", args.prefix):
        print(
            "bench_compose: --steps names none of " + ",".join(STEPS) + " or --prefix is"
            " not lower-case letters and digits",
            file=sys.stderr,
        )
        return 2
    if subprocess.run(["docker", "image", "inspect", args.image], capture_output=True).returncode:
        print(
            f"bench_compose: image {args.image} not found; "
            f"`docker tag envd-test/busybox:latest {args.image}`",
            file=sys.stderr,
        )
        return 2
    envd_cmd = shlex.split(args.envd) if args.envd else envd_command()
    v2 = args.compose_v2
    ensure_compose_v2(v2)
    v1 = args.compose_v1 if compose_version(args.compose_v1) else None
    env = environment(envd_cmd, v2, v1)
    for line in env:
        print(line, file=sys.stderr)
    results = []
    # SIGTERM unwinds like Ctrl-C, through the teardown in bench_size.
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="envd-bench-") as tmp:
        try:
            for n in sizes:
                results.append(
                    bench_size(
                        n, args.repeat, args.image, Path(tmp), envd_cmd, v2, v1, steps, args.prefix
                    )
                )
        except BenchError as exc:
            print(f"bench_compose: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench_compose: interrupted (every project was torn down)", file=sys.stderr)
            return 130
    body = rows(results, args.target_services, steps)
    extra = downtime_lines(results) + rss_lines(results, args.target_services)
    for res in results:
        for w in dict.fromkeys(res.warnings):
            times = res.warnings.count(w)
            extra.append(f"warning at {res.services} services ({times}x): {w}")
    print()
    print(
        f"medians of {args.repeat} run(s); envd/v2, envd/v1, envd/engine = ratios of the "
        f"medians (targets judge envd/v2; best/best v2: of the fastest runs); engine = the "
        f"same containers through envd's engine adapter, no planning; "
        f"load average at the end: {_loadavg()}"
    )
    print(format_table(HEADER, body))
    for line in extra:
        print(line)
    if args.markdown:
        Path(args.markdown).write_text(markdown(HEADER, body, env, extra, args.repeat))
    misses = [r for r in body if r[VERDICT] == "MISS"] + [line for line in extra if "MISS" in line]
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
