"""Benchmark envd init against tini and dumb-init, side by side, in one run.

Measures, for each init:

* startup: wall time of ``INIT -- true`` (spawn to reaped), hyperfine-style: warm-up
  runs, then interleaved runs, median and spread; once as a plain child process and
  once as PID 1 of a new PID namespace (``unshare --pid --fork``, the container case);
* SIGTERM→exit latency: ``INIT -- sleep 1000`` is started, and once the child has
  exec'ed and the init sleeps in sigtimedwait, the time from ``kill(init, SIGTERM)`` to
  the init being reaped (the child dies of the forwarded SIGTERM);
* RSS: VmRSS of the init while it supervises that child.

Ratios are against tini measured in the same run.  envd init runs under the
interpreter given with ``--python`` (default ``/usr/bin/python3``, the one the Debian
test image has) as ``python -m envd.init`` from a private copy of ``envd/`` with
compiled bytecode; again without bytecode (source on a read-only mount), with ``-S``
(no site module), and through the CLI entry ``python -m envd init``.

Usage: ``python3 bench/bench_init.py [--runs 200] [--startup-runs 100] [--markdown]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Subject:
    name: str
    argv: list[str]  # the init and its options, up to (not including) the command
    env: dict[str, str]
    dashdash: bool = True  # dumb-init takes no "--"
    startup: list[float] = field(default_factory=list)
    startup_pid1: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)

    def command(self, *child: str) -> list[str]:
        return [*self.argv, *(["--"] if self.dashdash else []), *child]


def spawn(argv: Sequence[str], env: dict[str, str]) -> int:
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
        return os.posix_spawnp(argv[0], list(argv), env, file_actions=actions)
    finally:
        os.close(devnull)


def timed_run(argv: Sequence[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    pid = spawn(argv, env)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({os.waitstatus_to_exitcode(status)})")
    return elapsed


def read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def wait_until_parked(init: int, deadline: float) -> int:
    """Wait until the init's child runs ``sleep`` and the init sleeps in sigtimedwait."""
    while time.monotonic() < deadline:
        children = read(f"/proc/{init}/task/{init}/children").split()
        if children:
            child = int(children[0])
            if read(f"/proc/{child}/comm").strip() == "sleep":
                wchan = read(f"/proc/{init}/wchan")  # "" or "0" where the kernel hides it
                parked = wchan.startswith("do_sigtimedwait") or wchan in ("", "0")
                state = read(f"/proc/{init}/stat").rsplit(")", 1)[-1].split()[:1]
                if parked and state == ["S"]:
                    return child
        time.sleep(0.0005)
    raise SystemExit(f"init {init} never settled")


def vm_rss_kib(pid: int) -> int:
    for line in read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def latency_run(subject: Subject) -> None:
    pid = spawn(subject.command("sleep", "1000"), subject.env)
    wait_until_parked(pid, time.monotonic() + 10)
    time.sleep(0.002)  # let page faults and the like settle
    subject.rss_kib.append(vm_rss_kib(pid))
    began = time.perf_counter()
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    subject.latency.append(time.perf_counter() - began)
    if os.waitstatus_to_exitcode(status) != 128 + signal.SIGTERM:
        raise SystemExit(f"{subject.name}: exit {os.waitstatus_to_exitcode(status)}, not 143")


def prepare_envd(tmp: Path, python: str, with_bytecode: bool) -> dict[str, str]:
    """A private copy of envd/ with (or without) compiled bytecode for ``python``."""
    package = tmp / ("pyc" if with_bytecode else "source") / "envd"
    package.mkdir(parents=True)
    for name in ("__init__.py", "__main__.py", "init.py"):  # all the init path loads
        shutil.copy2(REPO / "envd" / name, package / name)
    if with_bytecode:  # by the target interpreter: its magic number, its cache tag
        subprocess.run([python, "-m", "compileall", "-q", str(package)], check=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("TINI_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(package.parent)
    if not with_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # as on a read-only mount
    return env


def subjects(python: str, tmp: Path) -> list[Subject]:
    plain = {key: value for key, value in os.environ.items() if not key.startswith("TINI_")}
    found = [
        Subject("tini", ["/usr/bin/tini"], plain),
        Subject("dumb-init", ["/usr/bin/dumb-init"], plain, dashdash=False),
    ]
    with_pyc = prepare_envd(tmp, python, with_bytecode=True)
    found += [
        Subject("envd init", [python, "-m", "envd.init"], with_pyc),
        Subject(
            "envd init, no .pyc", [python, "-m", "envd.init"], prepare_envd(tmp, python, False)
        ),
        Subject("envd init, python -S", [python, "-S", "-m", "envd.init"], with_pyc),
        Subject("`python -m envd init`", [python, "-m", "envd", "init"], with_pyc),
    ]
    for subject in found:
        if not os.access(subject.argv[0], os.X_OK):
            raise SystemExit(f"{subject.argv[0]} is not installed")
    return found


def measure(found: list[Subject], runs: int, startup_runs: int, python: str) -> Subject:
    baseline = Subject(f"({python} -c pass)", [python, "-c", "pass"], dict(os.environ))
    unshare = ["unshare", "--pid", "--fork", "--kill-child"]
    pid1 = (
        shutil.which("unshare") is not None and subprocess.run([*unshare, "true"]).returncode == 0
    )
    for _ in range(5):  # warm-up: page cache, dentries
        for subject in found:
            timed_run(subject.command("true"), subject.env)
    for _ in range(startup_runs):
        for subject in found:
            subject.startup.append(timed_run(subject.command("true"), subject.env))
            if pid1:
                subject.startup_pid1.append(
                    timed_run([*unshare, *subject.command("true")], subject.env)
                )
        baseline.startup.append(timed_run(baseline.argv, baseline.env))
        if pid1:
            baseline.startup_pid1.append(timed_run([*unshare, "true"], baseline.env))
    for _ in range(runs):
        for subject in found:
            latency_run(subject)
    return baseline


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.2f}" if values else "-"


def ratio(values: list[float], reference: list[float]) -> str:
    if not values or not reference:
        return "-"
    return f"{statistics.median(values) / statistics.median(reference):.1f}×"


def p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)] if values else float("nan")


def table(found: list[Subject], baseline: Subject) -> str:
    tini = found[0]
    header = (
        "| init | startup `-- true` (ms) | vs tini | startup as PID 1 (ms) | vs tini "
        "| SIGTERM→exit median (ms) | p90 (ms) | vs tini | RSS (MiB) | vs tini |"
    )
    rows = [header, "|" + "---|" * 10]
    for subject in found:
        rss = [kib / 1024 for kib in subject.rss_kib]
        rows.append(
            f"| {subject.name} | {ms(subject.startup)} | {ratio(subject.startup, tini.startup)} "
            f"| {ms(subject.startup_pid1)} | {ratio(subject.startup_pid1, tini.startup_pid1)} "
            f"| {ms(subject.latency)} | {p90(subject.latency) * 1000:.2f} "
            f"| {ratio(subject.latency, tini.latency)} "
            f"| {statistics.median(rss):.1f} | {ratio(rss, [kib / 1024 for kib in tini.rss_kib])} |"
        )
    rows.append(
        f"| {baseline.name} | {ms(baseline.startup)} | | {ms(baseline.startup_pid1)} "
        "(`unshare … true`) | | | | | | |"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="SIGTERM→exit runs per init")
    parser.add_argument("--startup-runs", type=int, default=100, help="startup runs per init")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter for envd init")
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run the bench and every init under SCHED_FIFO (root), so that other load on "
        "the machine cannot preempt the measured processes",
    )
    args = parser.parse_args(argv)
    if args.realtime:  # inherited by every process the bench spawns
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    with tempfile.TemporaryDirectory(prefix="bench-init-") as tmp:
        # ``python -m`` puts the working directory first on sys.path: leave the repo, or
        # its envd/ (without bytecode) would shadow the prepared copies.
        os.chdir(tmp)
        found = subjects(args.python, Path(tmp))
        baseline = measure(found, args.runs, args.startup_runs, args.python)
    version = subprocess.run([args.python, "-V"], capture_output=True, text=True).stdout.strip()
    print(
        f"{args.startup_runs} startup runs, {args.runs} SIGTERM runs per init; "
        f"{version}; {os.cpu_count()} CPUs; kernel {os.uname().release}"
        f"{'; SCHED_FIFO' if args.realtime else ''}\n"
    )
    print(table(found, baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
