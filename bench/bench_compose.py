"""envd vs Docker Compose v1, side by side in one run.

For each project size N (``--services 10,50``) the script writes an
``envd.toml`` and an equivalent ``docker-compose.yml`` (same image, command,
``init``, ``stop_grace_period``, one project network, no healthchecks) into two
temporary directories under distinct project names, then times four steps,
alternating the tools step by step (envd then Compose on odd cycles, Compose
then envd on even ones) and repeating the cycle R times:

* ``cold``   — ``envd up --once`` / ``docker-compose up -d`` from nothing
* ``noop``   — the same command again, nothing changed
* ``change`` — one service's environment variable edited in both specs, up again
* ``down``   — ``envd down`` / ``docker-compose down``

It prints the medians, the envd/Compose ratios and PASS/MISS against the
targets (judged at ``--target-services``, default 50), plus the peak RSS of
each envd step (from ``os.wait4``). Every step is checked afterwards against
the engine (how many containers run, which were recreated) so a tool that
silently did nothing cannot win. Both projects are always torn down, even when
a step fails or the run is interrupted.

    python bench/bench_compose.py --services 10,50 --repeat 3 --markdown out.md
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

STEPS = ("cold", "noop", "change", "down")
STEP_TITLES = {
    "cold": "cold up",
    "noop": "no-op up",
    "change": "one service changed",
    "down": "down",
}
# envd/Compose ratio targets (issue 2, item 9), judged at --target-services.
TARGETS = {"cold": 0.80, "noop": 0.30, "change": 0.35, "down": 0.80}
RSS_TARGET_MB = 80.0
DEFAULT_IMAGE = "envd-local/busybox:latest"
ENVD_LABEL = "dev.envd.project"
COMPOSE_LABEL = "com.docker.compose.project"
REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- tools


def envd_command() -> list[str]:
    """The envd console script, preferring ones that skip the pyenv shim."""
    candidates = [
        REPO / ".venv" / "bin" / "envd",
        Path(sys.executable).parent / "envd",
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return [str(c)]
    found = shutil.which("envd")
    if found:
        return [found]
    return [sys.executable, "-m", "envd"]


def compose_command() -> list[str]:
    for c in ("/usr/bin/docker-compose", shutil.which("docker-compose")):
        if c and os.access(c, os.X_OK):
            return [c]
    raise SystemExit("bench_compose: docker-compose (v1) not found; apt-get install docker-compose")


@dataclass
class Run:
    seconds: float
    rss_mb: float
    cpu_s: float
    code: int
    output: str


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 600.0) -> Run:
    """Run a command; wall time, peak RSS and CPU time of that process alone."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Run(
        elapsed, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime, proc.returncode, text
    )


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


def containers(label: str, project: str) -> dict[str, tuple[str, str]]:
    """name -> (id, state) of a project's containers."""
    out = docker(
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        f"label={label}={project}",
        "--format",
        "{{.Names}} {{.ID}} {{.State}}",
    )
    found = {}
    for line in out.splitlines():
        name, cid, state = line.split()
        found[name] = (cid, state)
    return found


def networks(label: str, project: str) -> list[str]:
    out = docker("network", "ls", "--filter", f"label={label}={project}", "--format", "{{.Name}}")
    return out.split()


def force_remove(label: str, project: str) -> None:
    """Last resort when a tool's own `down` failed: remove by label."""
    ids = docker("ps", "-aq", "--filter", f"label={label}={project}").split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    nets = networks(label, project)
    if nets:
        subprocess.run(["docker", "network", "rm", *nets], capture_output=True)


# --------------------------------------------------------------------------- projects


@dataclass
class Project:
    tool: str  # "envd" | "compose"
    name: str
    directory: Path
    services: int
    image: str
    base: list[str]
    env: dict[str, str]
    label: str
    generation: dict[str, int] = field(default_factory=dict)

    @property
    def service_names(self) -> list[str]:
        width = len(str(self.services))
        return [f"s{i:0{width}d}" for i in range(1, self.services + 1)]

    def write(self) -> None:
        if self.tool == "envd":
            text = self._envd_toml()
            (self.directory / "envd.toml").write_text(text)
        else:
            (self.directory / "docker-compose.yml").write_text(self._compose_yml())

    def _envd_toml(self) -> str:
        lines = ["[project]", f'name = "{self.name}"', ""]
        for s in self.service_names:
            lines += [
                f"[services.{s}]",
                f'image = "{self.image}"',
                'command = ["sleep", "86400"]',
                "init = true",
                'stop_grace_period = "2s"',
                f'env = {{ BENCH_GEN = "{self.generation.get(s, 0)}" }}',
                "",
            ]
        return "\n".join(lines)

    def _compose_yml(self) -> str:
        lines = ['version: "2.4"', "services:"]
        for s in self.service_names:
            lines += [
                f"  {s}:",
                f"    image: {self.image}",
                '    command: ["sleep", "86400"]',
                "    init: true",
                "    stop_grace_period: 2s",
                "    environment:",
                f'      BENCH_GEN: "{self.generation.get(s, 0)}"',
            ]
        return "\n".join(lines) + "\n"

    def argv(self, step: str) -> list[str]:
        if self.tool == "envd":
            return [*self.base, "down"] if step == "down" else [*self.base, "up", "--once"]
        return [*self.base, "down"] if step == "down" else [*self.base, "up", "-d"]

    def run(self, step: str) -> Run:
        return run(self.argv(step), self.directory, self.env)

    def state(self) -> dict[str, tuple[str, str]]:
        return containers(self.label, self.name)

    def down_untimed(self) -> None:
        try:
            r = self.run("down")
            if r.code != 0:
                print(
                    f"  {self.tool} down failed ({r.code}): {r.output.strip()[-300:]}",
                    file=sys.stderr,
                )
        except Exception as exc:  # the cleanup must go on
            print(f"  {self.tool} down failed: {exc}", file=sys.stderr)
        try:
            force_remove(self.label, self.name)
        except Exception as exc:
            print(f"  cleanup of {self.name} failed: {exc}", file=sys.stderr)


def make_projects(n: int, image: str, root: Path, envd_cmd: list[str]) -> tuple[Project, Project]:
    # Fixed names: should the engine leak a project network (see `check`),
    # the next run reuses it instead of leaking another address pool.
    tag = str(n)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVD_", "COMPOSE_"))}
    # An installed envd has its bytecode compiled (pip does it; Debian does it
    # for Compose). With PYTHONDONTWRITEBYTECODE an editable checkout would
    # recompile every module on every run (~60 ms) and measure the compiler.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    envd_dir = root / f"envd-{n}"
    compose_dir = root / f"compose-{n}"
    envd_dir.mkdir()
    compose_dir.mkdir()
    envd_name = f"benchenvd-{tag}"
    compose_name = f"benchcompose{tag}"
    e = Project("envd", envd_name, envd_dir, n, image, envd_cmd, env, ENVD_LABEL)
    c = Project(
        "compose",
        compose_name,
        compose_dir,
        n,
        image,
        [*compose_command(), "-p", compose_name, "--no-ansi"],
        env,
        COMPOSE_LABEL,
    )
    return e, c


# --------------------------------------------------------------------------- checks


class BenchError(Exception):
    pass


def check(
    project: Project,
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


def bench_size(n: int, repeat: int, image: str, root: Path, envd_cmd: list[str]) -> Result:
    envd, compose = make_projects(n, image, root, envd_cmd)
    tools = (envd, compose)
    result = Result(n)
    changed = envd.service_names[0]
    try:
        for p in tools:
            p.write()
            p.down_untimed()  # nothing should exist; be sure
        for rep in range(repeat):
            state: dict[str, dict[str, tuple[str, str]]] = {p.tool: {} for p in tools}
            # envd first on odd repetitions, Compose first on even ones: the
            # tool that goes second finds the other's containers running.
            order = tools if rep % 2 == 0 else tools[::-1]
            for p in tools:
                p.generation = {}
                p.write()
            for step in STEPS:
                if step == "change":
                    for p in tools:
                        p.generation[changed] = rep + 1
                        p.write()
                for p in order:
                    r = p.run(step)
                    state[p.tool] = check(p, step, r, state[p.tool], changed, result.warnings)
                    result.add(p.tool, step, r)
                    print(
                        f"  N={n} rep {rep + 1}/{repeat} {p.tool:<7} {step:<6} "
                        f"{r.seconds:7.3f} s  rss {r.rss_mb:6.1f} MB  cpu {r.cpu_s:5.2f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for p in tools:
            p.down_untimed()
    return result


# --------------------------------------------------------------------------- report


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def rows(results: list[Result], target_n: int) -> list[list[str]]:
    out = []
    for res in results:
        for step in STEPS:
            e, c = res.median("envd", step), res.median("compose", step)
            ratio = e / c if c else float("inf")
            judged = res.services == target_n
            out.append(
                [
                    str(res.services),
                    STEP_TITLES[step],
                    f"{e:.3f}",
                    f"{c:.3f}",
                    f"{ratio:.2f}",
                    f"≤ {TARGETS[step]:.2f}" if judged else "",
                    verdict(ratio, TARGETS[step]) if judged else "",
                    f"{res.best('envd', step) / res.best('compose', step):.2f}",
                    f"{res.median_cpu('envd', step):.2f}",
                    f"{res.median_cpu('compose', step):.2f}",
                    f"{res.peak_rss('envd', step):.0f}",
                ]
            )
    return out


HEADER = [
    "services",
    "step",
    "envd s",
    "compose s",
    "ratio",
    "target",
    "verdict",
    "best/best",
    "envd CPU s",
    "compose CPU s",
    "envd peak RSS MB",
]


def rss_lines(results: list[Result], target_n: int) -> list[str]:
    lines = []
    for res in results:
        up_rss = max(res.peak_rss("envd", s) for s in ("cold", "noop", "change"))
        compose_rss = max(res.peak_rss("compose", s) for s in ("cold", "noop", "change"))
        judged = res.services == target_n
        mark = (
            f" (target ≤ {RSS_TARGET_MB:.0f} MB: {verdict(up_rss, RSS_TARGET_MB)})"
            if judged
            else ""
        )
        lines.append(
            f"peak RSS of `envd up --once` at {res.services} services: "
            f"{up_rss:.1f} MB{mark}; docker-compose up: {compose_rss:.1f} MB"
        )
    return lines


def environment(envd_cmd: list[str]) -> list[str]:
    try:
        engine = docker("version", "--format", "{{.Server.Version}}").strip()
    except Exception:
        engine = "?"
    compose = subprocess.run(
        [*compose_command(), "version", "--short"], capture_output=True, text=True
    ).stdout.strip()
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
        f"Docker engine: {engine}; docker-compose {compose}; {envd_v}",
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
        "--envd",
        metavar="CMD",
        help="envd command to run (default: .venv/bin/envd, the one beside this "
        "interpreter, envd on PATH, or python -m envd)",
    )
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.services.split(",") if s.strip()]
    if subprocess.run(["docker", "image", "inspect", args.image], capture_output=True).returncode:
        print(
            f"bench_compose: image {args.image} not found; "
            f"`docker tag envd-test/busybox:latest {args.image}`",
            file=sys.stderr,
        )
        return 2
    envd_cmd = shlex.split(args.envd) if args.envd else envd_command()
    env = environment(envd_cmd)
    for line in env:
        print(line, file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="envd-bench-") as tmp:
        try:
            for n in sizes:
                results.append(bench_size(n, args.repeat, args.image, Path(tmp), envd_cmd))
        except BenchError as exc:
            print(f"bench_compose: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("bench_compose: interrupted (both projects were torn down)", file=sys.stderr)
            return 130
    body = rows(results, args.target_services)
    extra = rss_lines(results, args.target_services)
    for res in results:
        for w in dict.fromkeys(res.warnings):
            times = res.warnings.count(w)
            extra.append(f"warning at {res.services} services ({times}x): {w}")
    print()
    print(
        f"medians of {args.repeat} run(s); ratio = envd / compose (best/best: of the fastest "
        f"runs); "
        f"load average at the end: {_loadavg()}"
    )
    print(format_table(HEADER, body))
    for line in extra:
        print(line)
    if args.markdown:
        Path(args.markdown).write_text(markdown(HEADER, body, env, extra, args.repeat))
    misses = [r for r in body if r[6] == "MISS"] + [line for line in extra if "MISS" in line]
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
