"""envd and Docker Compose v2 as a project grows: 10, 50, 200 and 500 services (issue 15).

For each size N (``--services 10,50,200,500``) the script writes the same
busybox project as ``bench_compose.py`` (``compose_tools.Project``: one
network, ``init``, ``stop_grace_period``, no healthchecks) for envd and for
Compose v2 (called by its path, default ``/opt/envd-bench/compose-v2/docker-compose``),
then runs these steps, the tools taking turns step by step (the order rotates
each cycle), ``--repeat`` cycles:

* ``cold``    — ``envd up --once`` / ``docker compose up -d`` from nothing
* ``noop``    — the same again, nothing changed
* ``status``  — ``envd status --json`` with no daemon (it observes the engine
  itself) / ``docker compose ps --format json``
* ``plan``    — ``envd plan`` (envd only), and the pure ``make_plan`` timed
  in-process over an N-service project as ``bench_plan.py`` does (converged)
* ``change``  — one service's environment edited, up again
* daemon (envd only) — ``envd up`` starts the daemon on the converged
  project; ``status --json`` answered by the warm daemon (median of
  ``--status-runs``); the daemon's idle CPU and RSS over ``--idle`` seconds
  (``bench_daemon.DaemonProbe``); one daemon pass after a one-service spec
  edit: from the write to the daemon's ``pass-done`` event, with the services
  that pass's events named (only the edited one is expected)
* ``down``    — ``envd down`` (which also stops the daemon) / ``docker compose down``

After every step the engine is checked as ``bench_compose.py`` does (N
running, nothing recreated by a no-op, status or plan, exactly the edited
service by a change). Medians and spread (min–max) are printed with envd/v2
ratios, the machine, and PASS/MISS of the issue's goals at ``--goal-services``
(500). Everything is torn down at the end, even on failure, Ctrl-C or SIGTERM.

    python bench/bench_growth.py --services 10,50,200,500 --repeat 2 \
        --json out.json --markdown out.md --plot docs/growth.png
"""

from __future__ import annotations

import argparse
import json
import queue
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path

from bench_compose import BenchError, _interrupt, _loadavg, check, environment, format_table
from bench_daemon import DaemonProbe, EventFollower
from bench_plan import desired_project, make_plan, measure, observed_for
from compose_tools import (
    COMPOSE_V2_DEFAULT,
    Project,
    Run,
    ensure_compose_v2,
    envd_command,
    make_projects,
    run,
    tear_down,
)

DEFAULT_IMAGE = "envd-local/busybox:latest"
TITLES = {
    "cold": "cold up",
    "noop": "no-op up",
    "status": "status --json, no daemon (v2: ps --format json)",
    "plan": "plan",
    "make_plan": "make_plan (in-process, converged), ms",
    "make_plan_cpu": "  its CPU time, ms",
    "change": "one service changed",
    "daemon_up": "envd up (starts the daemon; converged)",
    "status_warm": "status --json, warm daemon, ms",
    "pass_edit": "daemon pass after a one-service edit (edit → pass-done)",
    "pass_noticed": "  of which edit → pass start (watcher, debounce)",
    "pass_work": "  of which the pass itself (its own seconds)",
    "down": "down",
}
TOOL_STEPS = ("cold", "noop", "status", "plan", "change")  # then the daemon, then down
UP_TIMEOUT = ["--timeout", "3600"]
MS_STEPS = ("make_plan", "make_plan_cpu", "status_warm")  # printed in ms
PLOTTED = (
    "cold",
    "noop",
    "change",
    "down",
    "status",
    "status_warm",
    "plan",
    "make_plan",
    "pass_edit",
)


@dataclass
class Sized:
    """Every figure of one size: (tool, step) -> one value per cycle."""

    services: int
    edited: str  # the service the daemon's edit changes
    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    rss_mb: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    touched: list[list[str]] = field(default_factory=list)  # services named by each edit's pass
    warnings: list[str] = field(default_factory=list)

    def add(self, tool: str, step: str, value: float, rss: float = float("nan")) -> None:
        self.values.setdefault((tool, step), []).append(value)
        if rss == rss:  # not NaN
            self.rss_mb.setdefault((tool, step), []).append(rss)

    def median(self, tool: str, step: str) -> float | None:
        xs = self.values.get((tool, step))
        return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------- steps


def argv_for(p: Project, step: str) -> list[str]:
    """The command of a tool step (the up/down ones are compose_tools')."""
    if step == "status":
        if p.tool == "envd":
            return [*p.base, "status", "--json"]
        return [*p.base, "ps", "--format", "json"]
    if step == "plan":
        return [*p.base, "plan"]
    if step == "daemon_up":
        return [*p.base, "up", *UP_TIMEOUT]
    argv = p.argv("down" if step == "down" else "up")
    # Compose's `up -d` has no deadline; envd's 300 s readiness wait is
    # shorter than a cold up of 500 services on a busy engine.
    return argv + UP_TIMEOUT if p.tool == "envd" and step != "down" else argv


def timed(p: Project, step: str) -> Run:
    return run(argv_for(p, step), p.directory, p.env)


def checked(
    p: Project, step: str, r: Run, before: dict[str, tuple[str, str]], changed: str, res: Sized
) -> dict[str, tuple[str, str]]:
    """bench_compose's engine check; a read-only step must leave things as a no-op does."""
    kind = step if step in ("cold", "change", "down") else "noop"
    try:
        return check(p, kind, r, before, changed, res.warnings)
    except BenchError as exc:
        raise BenchError(f"[{step}] {exc}") from None


def plan_ms(n: int, runs: int) -> tuple[float, float]:
    """Median wall and CPU ms of the pure make_plan over a converged n-service project
    (CPU stays meaningful when the machine is busy)."""
    desired = desired_project(n)
    converged = observed_for(desired, images=True, containers=True)
    wall, cpu = measure(lambda: make_plan(desired, converged), runs)
    return statistics.median(wall), statistics.median(cpu)


def daemon_phase(
    p: Project,
    res: Sized,
    state: dict[str, tuple[str, str]],
    edited: str,
    gen: int,
    args: Namespace,
) -> dict[str, tuple[str, str]]:
    """Start the daemon on the converged project; warm status, idle footprint, one edit's pass."""
    r = timed(p, "daemon_up")
    state = checked(p, "daemon_up", r, state, edited, res)
    res.add("envd", "daemon_up", r.seconds)
    probe = DaemonProbe(p.directory)
    probe.settle_timeout = 60.0 + p.services / 2
    probe.settle()
    warm = []
    for _ in range(args.status_runs):
        s = timed(p, "status")
        if s.code != 0 or '"daemon"' not in s.output:
            raise BenchError(f"status --json was not answered by the daemon:\n{s.output[-500:]}")
        warm.append(s.seconds)
    res.add("envd", "status_warm", statistics.median(warm))
    idle = probe.idle(args.idle)
    res.add("envd", "idle_cpu_pct", idle["cpu_pct"])
    res.add("envd", "idle_rss_mb", idle["rss_mb"])
    _log(res.services, "envd", "idle", f"cpu {idle['cpu_pct']:.3f} %  rss {idle['rss_mb']:.1f} MB")
    # One spec edit with the daemon running: edit → the pass-done of the pass it caused.
    before_gen = int(probe.client().status()["daemon"]["generation"])
    follower = EventFollower(p.directory / ".envd" / "daemon.sock", kind=None)
    try:
        p.generation[edited] = gen
        t0 = time.time()
        p.write()
        seen: list[dict[str, object]] = []
        deadline = time.monotonic() + 60 + p.services / 2
        while True:
            try:
                ev = follower.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError("no pass-done event after the spec edit") from None
            seen.append(ev)
            if ev.get("kind") == "pass-done" and int(str(ev.get("generation", 0))) > before_gen:
                break
    finally:
        follower.close()
    took = float(str(ev["time"])) - t0
    touched = sorted({str(e["service"]) for e in seen if e.get("service")})
    res.add("envd", "pass_edit", took)
    # Where the time went: noticing the edit (watcher + debounce) vs the pass itself.
    start = next((e for e in seen if e.get("kind") == "reconcile"), None)
    if start is not None:
        res.add("envd", "pass_noticed", float(str(start["time"])) - t0)
    res.add("envd", "pass_work", float(str(ev.get("seconds", "nan"))))
    res.touched.append(touched)
    if ev.get("phase") != "done":
        raise BenchError(f"the pass after the edit failed: {ev.get('message')}")
    done = Run(took, float("nan"), 0.0, 0, "")
    state = checked(p, "change", done, state, edited, res)
    _log(res.services, "envd", "pass_edit", f"{took:7.3f} s  touched {touched}")
    return state


def bench_size(n: int, args: Namespace, root: Path, envd_cmd: list[str]) -> Sized:
    tools = [
        t
        for t in make_projects(n, args.image, root, envd_cmd, args.compose_v2, None)
        if isinstance(t, Project)
    ]
    changed = tools[0].service_names[0]
    edited = tools[0].service_names[-1]  # the daemon's edit: another service
    res = Sized(n, edited)
    try:
        for p in tools:
            p.write()
        tear_down(tools)  # nothing should exist; be sure
        for rep in range(args.repeat):
            k = rep % len(tools)
            order = tools[k:] + tools[:k]
            state: dict[str, dict[str, tuple[str, str]]] = {p.tool: {} for p in tools}
            for p in tools:
                p.generation = {}
                p.write()
            for step in TOOL_STEPS:
                if step == "change":
                    for p in tools:
                        p.generation[changed] = rep + 1
                        p.write()
                for p in order:
                    if step == "plan" and p.tool != "envd":
                        continue
                    r = timed(p, step)
                    state[p.tool] = checked(p, step, r, state[p.tool], changed, res)
                    res.add(p.tool, step, r.seconds, r.rss_mb)
                    _log(n, p.tool, step, f"{r.seconds:7.3f} s  rss {r.rss_mb:6.1f} MB")
                if step == "plan":
                    ms, cpu_ms = plan_ms(n, args.plan_runs)
                    res.add("envd", "make_plan", ms / 1000)
                    res.add("envd", "make_plan_cpu", cpu_ms / 1000)
                    _log(n, "envd", "make_plan", f"{ms:7.2f} ms  cpu {cpu_ms:7.2f} ms")
            envd = next(p for p in tools if p.tool == "envd")
            state["envd"] = daemon_phase(envd, res, state["envd"], edited, rep + 1, args)
            for p in order:
                r = timed(p, "down")
                state[p.tool] = checked(p, "down", r, state[p.tool], changed, res)
                res.add(p.tool, "down", r.seconds)
                _log(n, p.tool, "down", f"{r.seconds:7.3f} s")
    finally:
        tear_down(tools)
    return res


def _log(n: int, tool: str, step: str, text: str) -> None:
    print(f"  N={n} {tool:<5} {step:<11} {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- report


def spread(xs: list[float] | None, scale: float = 1.0, digits: int = 3) -> str:
    if not xs:
        return "-"
    med = statistics.median(xs) * scale
    if len(xs) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(xs) * scale:.{digits}f}–{max(xs) * scale:.{digits}f})"


HEADER = ["services", "step", "envd s (min–max)", "compose v2 s (min–max)", "envd/v2"]


def rows(results: list[Sized]) -> list[list[str]]:
    out = []
    for res in results:
        for step, title in TITLES.items():
            e, v = res.values.get(("envd", step)), res.values.get(("v2", step))
            if not e and not v:
                continue
            ratio = "-"
            if e and v:
                ratio = f"{statistics.median(e) / statistics.median(v):.2f}"
            scale = 1000.0 if step in MS_STEPS else 1.0
            out.append([str(res.services), title, spread(e, scale), spread(v, scale), ratio])
        cpu, rss = res.values.get(("envd", "idle_cpu_pct")), res.values.get(("envd", "idle_rss_mb"))
        out.append(
            [
                str(res.services),
                "idle daemon CPU % / RSS MB",
                f"{spread(cpu)} / {spread(rss, digits=1)}",
                "-",
                "-",
            ]
        )
    return out


def goals(results: list[Sized], at: int) -> list[list[str]]:
    """The issue's goals at `at` services: [goal, target, envd, peer, verdict]."""
    res = next((r for r in results if r.services == at), None)
    if res is None:
        return [[f"(not measured at {at} services)", "", "", "", ""]]

    def med(tool: str, step: str) -> float:
        m = res.median(tool, step)
        return float("nan") if m is None else m

    def v(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    noop, warm, mp = med("envd", "noop"), med("envd", "status_warm"), med("envd", "make_plan")
    st, ps = med("envd", "status"), med("v2", "status")
    cpu, rss = med("envd", "idle_cpu_pct"), med("envd", "idle_rss_mb")
    edit = med("envd", "pass_edit")
    only_one = all(t == [res.edited] for t in res.touched) and bool(res.touched)
    return [
        ["no-op up", "≤ 0.4 s", f"{noop:.3f} s", f"v2 {med('v2', 'noop'):.3f} s", v(noop <= 0.4)],
        ["status --json, warm daemon", "≤ 150 ms", f"{warm * 1000:.0f} ms", "", v(warm <= 0.150)],
        ["make_plan (pure, converged)", "≤ 50 ms", f"{mp * 1000:.1f} ms", "", v(mp <= 0.050)],
        [
            "status --json, no daemon",
            "≤ compose ps",
            f"{st:.3f} s",
            f"v2 ps {ps:.3f} s",
            v(st <= ps),
        ],
        [
            "daemon pass after a one-service edit",
            "touches only that service",
            f"{edit:.3f} s; touched {res.touched}",
            "",
            v(only_one),
        ],
        ["idle daemon CPU", "≤ 0.5 %", f"{cpu:.3f} %", "", v(cpu <= 0.5)],
        ["idle daemon RSS", "≤ 100 MB", f"{rss:.1f} MB", "", v(rss <= 100)],
    ]


def plot(results: list[Sized], path: str) -> None:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "bench_growth: --plot needs matplotlib (`pip install -e '.[bench]'`)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(11, 6), dpi=110)
    colors = plt.get_cmap("tab10")
    sizes = [r.services for r in results]
    for i, step in enumerate(PLOTTED):
        for tool, style, mark in (("envd", "-", "o"), ("v2", "--", "s")):
            ys = [r.median(tool, step) for r in results]
            if any(y is None for y in ys):
                continue
            what = TITLES[step].split(" (")[0].removesuffix(", ms")
            if tool == "v2" and step == "status":
                what = "ps --format json"
            label = f"{'envd' if tool == 'envd' else 'compose v2'}: {what}"
            ax.plot(sizes, ys, style, marker=mark, color=colors(i), label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("services (busybox)")
    ax.set_ylabel("seconds (median, log scale)")
    ax.set_title("envd vs Docker Compose v2 as the project grows")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)


def machine() -> list[str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [f"CPU model: {model}"]


def markdown(
    env: list[str], body: list[list[str]], goal_rows: list[list[str]], args: Namespace
) -> str:
    out = [f"<!-- written by bench/bench_growth.py; medians of {args.repeat} cycle(s) -->", ""]
    out += [f"- {line}" for line in env]
    out += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(r) + " |" for r in body]
    out += ["", f"Goals at {args.goal_services} services:", ""]
    out += ["| goal | target | envd | peer | |", "|---|---|---|---|---|"]
    out += ["| " + " | ".join(r) + " |" for r in goal_rows]
    return "\n".join(out) + "\n"


def write_json(
    path: str, env: list[str], results: list[Sized], goal_rows: list[list[str]], repeat: int
) -> None:
    data = {
        "environment": env,
        "repeat": repeat,
        "sizes": {
            str(r.services): {
                "values": {f"{t}:{s}": xs for (t, s), xs in r.values.items()},
                "peak_rss_mb": {f"{t}:{s}": xs for (t, s), xs in r.rss_mb.items()},
                "edit_pass_touched": r.touched,
                "warnings": r.warnings,
            }
            for r in results
        },
        "goals": goal_rows,
    }
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", default="10,50,200,500", help="comma-separated sizes")
    ap.add_argument("--repeat", "-r", type=int, default=2, help="cycles per size (median)")
    ap.add_argument("--goal-services", type=int, default=500, help="size the goals are judged at")
    ap.add_argument("--status-runs", type=int, default=5, help="warm status runs per cycle")
    ap.add_argument("--plan-runs", type=int, default=20, help="make_plan runs per cycle")
    ap.add_argument("--idle", type=float, default=30.0, help="idle window, seconds")
    ap.add_argument("--image", default=DEFAULT_IMAGE)
    ap.add_argument("--envd", metavar="CMD", help="envd command (default as bench_compose.py)")
    ap.add_argument("--compose-v2", metavar="PATH", default=COMPOSE_V2_DEFAULT)
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    ap.add_argument("--markdown", metavar="FILE", help="write the tables as markdown")
    ap.add_argument("--plot", metavar="FILE", help="write a PNG of time against services")
    ap.add_argument(
        "--from-json",
        metavar="FILE",
        help="measure nothing: report (and plot) the figures an earlier --json wrote",
    )
    args = ap.parse_args(argv)
    if args.from_json:
        env, results = read_json(args.from_json)
        args.repeat = json.loads(Path(args.from_json).read_text()).get("repeat", args.repeat)
        return report(env, results, args)
    sizes = [int(s) for s in args.services.split(",") if s.strip()]
    if subprocess.run(["docker", "image", "inspect", args.image], capture_output=True).returncode:
        print(f"bench_growth: image {args.image} not found", file=sys.stderr)
        return 2
    envd_cmd = shlex.split(args.envd) if args.envd else envd_command()
    ensure_compose_v2(args.compose_v2)
    env = environment(envd_cmd, args.compose_v2, None) + machine()
    for line in env:
        print(line, file=sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)
    results: list[Sized] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="envd-growth-") as tmp:
        try:
            for n in sizes:
                results.append(bench_size(n, args, Path(tmp), envd_cmd))
                if args.json:  # what a long run measured survives a later failure
                    write_json(args.json, env, results, [], args.repeat)
        except BenchError as exc:
            print(f"bench_growth: {exc}", file=sys.stderr)
            failed = 1
        except KeyboardInterrupt:
            print("bench_growth: interrupted (every project was torn down)", file=sys.stderr)
            failed = 130
    env.append(f"load average at the end: {_loadavg()}")
    if failed:
        # The sizes that finished are still worth a report.
        env.append(
            f"stopped early: only {', '.join(str(r.services) for r in results) or 'no'} size(s) measured"
        )
        if results:
            report(env, results, args)
        return failed
    return report(env, results, args)


def read_json(path: str) -> tuple[list[str], list[Sized]]:
    """The environment and the figures an earlier run wrote with --json."""
    data = json.loads(Path(path).read_text())
    results = []
    for size, fig in data["sizes"].items():
        n = int(size)
        res = Sized(n, f"s{n:0{len(size)}d}", touched=fig["edit_pass_touched"])
        res.warnings = fig["warnings"]
        for key, xs in fig["values"].items():
            tool, step = key.split(":", 1)
            res.values[(tool, step)] = xs
        for key, xs in fig["peak_rss_mb"].items():
            tool, step = key.split(":", 1)
            res.rss_mb[(tool, step)] = xs
        results.append(res)
    return list(data["environment"]), sorted(results, key=lambda r: r.services)


def report(env: list[str], results: list[Sized], args: Namespace) -> int:
    """Print the tables and write the files asked for; 1 when a goal is missed."""
    body = rows(results)
    goal_rows = goals(results, args.goal_services)
    print()
    end = next((line for line in env if line.startswith("load average at the end")), "")
    print(f"medians of {args.repeat} cycle(s), (min–max) when more than one; {end}")
    print(format_table(HEADER, body))
    print()
    print(f"goals at {args.goal_services} services:")
    print(format_table(["goal", "target", "envd", "peer", ""], goal_rows))
    for res in results:
        for w in dict.fromkeys(res.warnings):
            print(f"warning at {res.services} services: {w}")
    if args.markdown:
        Path(args.markdown).write_text(markdown(env, body, goal_rows, args))
    if args.json:
        write_json(args.json, env, results, goal_rows, args.repeat)
    if args.plot:
        plot(results, args.plot)
    return 1 if any(r[-1] == "MISS" for r in goal_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
