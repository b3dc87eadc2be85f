"""Sync latency, envd's daemon beside Docker Compose v2's ``watch`` (issue 13, numbers).

Two throw-away projects run side by side on this engine, each one busybox
service with a sync rule ``src → /app/src``: one brought up with ``envd up``
(its daemon watches), one with Compose v2 (``up -d --wait``, then
``watch --no-up`` in the background; ``develop.watch`` with ``action: sync``).

* ``latency`` — edit on the host → the new content readable in the container,
  for ``--edits`` single-file edits per tool, taking turns edit by edit (the
  order alternates). Both tools are measured the same way, from outside: the
  time just before ``write`` to the first probe that reads the new content
  in the container's file system. The probe reads the file through the
  container's overlay mount on this host (``GraphDriver.Data.MergedDir``, what
  processes in the container see; microseconds per read, every 0.5 ms, no
  load on dockerd); where that is not readable (a remote or rootless engine)
  it falls back to the archive API (``GET /containers/ID/archive``, a few ms
  per probe, each one work for dockerd). The probe's kind and median cost are
  printed: each figure is an upper bound by about that much.
* ``stopped`` — envd: the daemon is stopped (SIGTERM; the containers keep
  running), a file is edited, ``envd up`` is run; the container is read once,
  at once, when ``up`` returns (``visible at return``), then polled if it was
  not. ``--stopped`` rounds. Compose: ``watch`` is stopped, a file is edited,
  ``watch --no-up`` is started again and the container is polled for 3 s after
  "Watch enabled" (``initial_sync`` is off by default in Compose).

Everything is torn down afterwards, even on failure or ^C.

    python bench/bench_sync.py --edits 40 --stopped 5 [--markdown FILE]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
IMAGE = "envd-local/busybox:latest"
COMPOSE_V2 = os.environ.get("ENVD_COMPOSE_V2", "/opt/envd-bench/compose-v2/docker-compose")
TARGETS = {"p50_ms": 150.0, "p95_ms": 300.0, "after_up_s": 2.0}

ENVD_SPEC = """\
[project]
name = "{name}"

[services.web]
image = "{image}"
command = ["sleep", "86400"]
stop_grace_period = "1s"
watch = [{{ path = "src", action = "sync", target = "/app/src" }}]
"""

COMPOSE = """\
services:
  web:
    image: {image}
    command: ["sleep", "86400"]
    init: true
    stop_grace_period: 1s
    develop:
      watch:
        - action: sync
          path: ./src
          target: /app/src
"""


def envd_command() -> list[str]:
    """The envd console script, preferring the venv's (it skips the pyenv shim)."""
    for c in (REPO / ".venv" / "bin" / "envd", Path(sys.executable).parent / "envd"):
        if c.is_file() and os.access(c, os.X_OK):
            return [str(c)]
    return [sys.executable, "-m", "envd"]


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["NO_COLOR"] = "1"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run(argv: list[str], cwd: Path) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(
        argv, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=180
    )
    took = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench_sync: {' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return took


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Probe:
    """Reads one file of a container: from its overlay mount on this host when
    readable (microseconds, no load on dockerd), else through the archive API."""

    def __init__(self, client: Any, container: str) -> None:
        self.api = client.api
        self.container = container
        self.costs: list[float] = []
        data = self.api.inspect_container(container).get("GraphDriver", {}).get("Data") or {}
        merged = data.get("MergedDir")
        self.merged = merged if merged and os.access(merged, os.R_OK) else None
        self.kind = "overlay read" if self.merged else "archive GET"

    def read(self, path: str) -> str | None:
        import docker

        t0 = time.monotonic()
        if self.merged is not None:
            try:
                with open(self.merged + path, encoding="utf-8", errors="replace") as f:
                    return f.read()
            except OSError:
                return None
            finally:
                self.costs.append((time.monotonic() - t0) * 1000)
        try:
            stream, _ = self.api.get_archive(self.container, path)
            data = b"".join(stream)
        except docker.errors.NotFound:
            return None
        finally:
            self.costs.append((time.monotonic() - t0) * 1000)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is None:
                return None
            f = tar.extractfile(member)
            return f.read().decode() if f is not None else None

    def wait(self, path: str, text: str, t0: float, limit: float = 10.0) -> float:
        """Seconds from ``t0`` to the first read of ``text`` at ``path``."""
        while True:
            if self.read(path) == text:
                return time.monotonic() - t0
            time.sleep(0.0005)  # a host read costs microseconds: leave the CPU to the tools
            if time.monotonic() - t0 > limit:
                raise SystemExit(f"bench_sync: {path} did not change within {limit:.0f} s")


class Side:
    """One tool's project: its directory, container and probe."""

    def __init__(self, label: str, root: Path, container: str) -> None:
        self.label = label
        self.root = root
        self.container = container
        self.latencies: list[float] = []

    def edit_and_wait(self, probe: Probe, i: int) -> None:
        rel = f"f{i % 10}.txt"
        text = f"{self.label} edit {i} {secrets.token_hex(6)}\n"
        t0 = time.monotonic()
        (self.root / "src" / rel).write_text(text)
        self.latencies.append(probe.wait(f"/app/src/{rel}", text, t0) * 1000)


class Bench:
    def __init__(self, edits: int, stopped: int) -> None:
        import docker

        self.docker = docker.from_env()
        self.edits = edits
        self.stopped = stopped
        self.tmp = Path(tempfile.mkdtemp(prefix="envd-bench-sync-"))
        tag = secrets.token_hex(3)
        self.envd_name, self.compose_name = f"bsync-e{tag}", f"bsync-c{tag}"
        self.envd_dir, self.compose_dir = self.tmp / "envd", self.tmp / "compose"
        self.watch: subprocess.Popen[str] | None = None
        self.watch_ready = threading.Event()

    # --- set-up and tear-down
    def setup(self) -> None:
        for d in (self.envd_dir, self.compose_dir):
            (d / "src").mkdir(parents=True)
            for i in range(10):
                (d / "src" / f"f{i}.txt").write_text("initial\n")
        (self.envd_dir / "envd.toml").write_text(ENVD_SPEC.format(name=self.envd_name, image=IMAGE))
        (self.compose_dir / "compose.yml").write_text(COMPOSE.format(image=IMAGE))
        run([*envd_command(), "up"], self.envd_dir)
        run([COMPOSE_V2, "-p", self.compose_name, "up", "-d", "--wait"], self.compose_dir)
        self.start_watch()

    def start_watch(self) -> None:
        self.watch_ready.clear()
        self.watch = subprocess.Popen(
            [COMPOSE_V2, "-p", self.compose_name, "watch", "--no-up"],
            cwd=self.compose_dir,
            env=tool_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out = self.watch.stdout
        assert out is not None

        def follow() -> None:
            for line in out:
                if "Watch enabled" in line:
                    self.watch_ready.set()

        threading.Thread(target=follow, daemon=True).start()
        if not self.watch_ready.wait(30):
            raise SystemExit("bench_sync: `docker-compose watch` never said 'Watch enabled'")

    def stop_watch(self) -> None:
        if self.watch is not None and self.watch.poll() is None:
            self.watch.send_signal(signal.SIGINT)
            try:
                self.watch.wait(10)
            except subprocess.TimeoutExpired:
                self.watch.kill()
                self.watch.wait()
        self.watch = None

    def teardown(self) -> None:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop_watch()
            for argv, cwd in (
                ([*envd_command(), "down"], self.envd_dir),
                ([COMPOSE_V2, "-p", self.compose_name, "down", "-t", "1"], self.compose_dir),
            ):
                if cwd.exists():
                    subprocess.run(argv, cwd=cwd, env=tool_env(), capture_output=True, timeout=120)
            shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, old)

    # --- measurements
    def latency(self) -> dict[str, Side]:
        sides = {
            "envd": Side("envd", self.envd_dir, f"{self.envd_name}-web-1"),
            "compose": Side("compose", self.compose_dir, f"{self.compose_name}-web-1"),
        }
        probes = {k: Probe(self.docker, s.container) for k, s in sides.items()}
        for k, side in sides.items():  # warm-up edit each (not measured)
            side.edit_and_wait(probes[k], 999)
            side.latencies.clear()
        for i in range(self.edits):
            order = ("envd", "compose") if i % 2 == 0 else ("compose", "envd")
            for k in order:
                sides[k].edit_and_wait(probes[k], i)
        self.probe_ms = statistics.median(probes["envd"].costs + probes["compose"].costs)
        self.probe_kind = probes["envd"].kind
        return sides

    def envd_stopped(self) -> list[tuple[float, bool, float]]:
        """(up wall s, visible when up returned, s after return until visible) per round."""
        probe = Probe(self.docker, f"{self.envd_name}-web-1")
        out = []
        for i in range(self.stopped):
            self.stop_daemon()
            text = f"while stopped {i} {secrets.token_hex(6)}\n"
            (self.envd_dir / "src" / "stopped.txt").write_text(text)
            took = run([*envd_command(), "up"], self.envd_dir)
            t_ret = time.monotonic()
            seen = probe.read("/app/src/stopped.txt") == text
            after = 0.0 if seen else probe.wait("/app/src/stopped.txt", text, t_ret)
            out.append((took, seen, after))
        return out

    def stop_daemon(self) -> None:
        pid_file = self.envd_dir / ".envd" / "daemon.pid"
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}").exists():
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
            if state == "Z" or time.monotonic() > deadline:
                break
            time.sleep(0.02)

    def compose_stopped(self) -> bool:
        """Whether a file edited while `watch` was down reaches the container within 3 s of it."""
        probe = Probe(self.docker, f"{self.compose_name}-web-1")
        self.stop_watch()
        text = f"while stopped {secrets.token_hex(6)}\n"
        (self.compose_dir / "src" / "stopped.txt").write_text(text)
        self.start_watch()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.0:
            if probe.read("/app/src/stopped.txt") == text:
                return True
        return False


def report(
    sides: dict[str, Side],
    stopped: list[tuple[float, bool, float]],
    compose_stopped: bool,
    probe_ms: float,
    probe_kind: str,
) -> str:
    e, c = sides["envd"].latencies, sides["compose"].latencies
    lines = [
        f"Host: {platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f};"
        f" Compose {COMPOSE_V2}; {len(e)} edits per tool, turns alternating;"
        f" probe ({probe_kind}) median {probe_ms:.3f} ms",
        "",
        "| edit → visible in the container | envd daemon | Compose v2 `watch` | target (envd) |",
        "|---|---|---|---|",
    ]
    for label, q, key in (("p50", 0.5, "p50_ms"), ("p95", 0.95, "p95_ms")):
        ev, cv = pct(e, q), pct(c, q)
        verdict = "PASS" if ev <= TARGETS[key] else "MISS"
        lines.append(
            f"| {label} | {ev:.0f} ms | {cv:.0f} ms | ≤ {TARGETS[key]:.0f} ms: {verdict} |"
        )
    lines.append(f"| max | {max(e):.0f} ms | {max(c):.0f} ms | |")
    seen = sum(1 for _, s, _ in stopped if s)
    worst = max(a for _, _, a in stopped)
    ups = [t for t, _, _ in stopped]
    lines += [
        "",
        "| edited while stopped | envd (`envd up` after the daemon was stopped) | Compose v2 (`watch` restarted) |",
        "|---|---|---|",
        f"| in the container when the tool is back | {seen}/{len(stopped)} at `up`'s return"
        f" (worst {worst * 1000:.0f} ms after it; target ≤ {TARGETS['after_up_s']:.0f} s:"
        f" {'PASS' if worst <= TARGETS['after_up_s'] else 'MISS'}) |"
        f" {'yes' if compose_stopped else 'no'} within 3 s of 'Watch enabled' (initial_sync off) |",
        f"| `envd up` wall time (median) | {statistics.median(ups):.2f} s | |",
    ]
    return "\n".join(lines)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM tears down like ^C


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=40)
    ap.add_argument("--stopped", type=int, default=5, help="edit-while-stopped rounds")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = ap.parse_args()
    if not Path(COMPOSE_V2).is_file():
        raise SystemExit(
            f"bench_sync: no Compose v2 at {COMPOSE_V2} (scripts/install-compose-v2.sh)"
        )
    bench = Bench(args.edits, args.stopped)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        bench.setup()
        sides = bench.latency()
        stopped = bench.envd_stopped()
        compose_stopped = bench.compose_stopped()
        text = report(sides, stopped, compose_stopped, bench.probe_ms, bench.probe_kind)
    finally:
        bench.teardown()
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
