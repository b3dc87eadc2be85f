"""The tools bench_compose.py compares, and the engine queries its checks use.

A ``Project`` runs envd or a Compose binary in its own directory; an
``EngineTool`` does the engine's own work for the same containers
(``engine_work.py``). Both answer ``run(step)``, ``state()`` and
``down_untimed()``, so the benchmark loop treats them alike.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from downtime import CONTAINER_PORT, HTTPD, free_port
from engine_work import EngineProject

ENVD_LABEL = "dev.envd.project"
COMPOSE_LABEL = "com.docker.compose.project"
REPO = Path(__file__).resolve().parent.parent
COMPOSE_V2_DEFAULT = "/opt/envd-bench/compose-v2/docker-compose"
COMPOSE_V1_DEFAULT = "/usr/bin/docker-compose"
INSTALL_V2 = REPO / "scripts" / "install-compose-v2.sh"
# Column keys in the run order of round 1.
TOOLS = ("envd", "v2", "v1", "engine")

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


def compose_version(path: str) -> str:
    """``docker-compose version --short`` of a binary, or "" when it does not run."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return ""
    try:
        out = subprocess.run(
            [path, "version", "--short"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def ensure_compose_v2(path: str) -> str:
    """The version of Compose v2 at ``path``; runs the installer when it is missing."""
    version = compose_version(path)
    if version.lstrip("v").startswith("2."):
        return version
    print(f"bench_compose: no Compose v2 at {path}; running {INSTALL_V2}", file=sys.stderr)
    done = subprocess.run(["bash", str(INSTALL_V2)], env={**os.environ, "ENVD_COMPOSE_V2": path})
    version = compose_version(path)
    if done.returncode or not version.lstrip("v").startswith("2."):
        raise SystemExit(
            f"bench_compose: Compose v2 is not at {path}; run "
            f"`ENVD_COMPOSE_V2={path} bash scripts/install-compose-v2.sh`"
        )
    return version


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
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    proc.kill()
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.002)
        except BaseException:
            # Interrupted: the tool must not go on creating containers behind
            # the cleanup's back.
            proc.kill()
            os.wait4(proc.pid, 0)
            raise
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
    tool: str  # "envd" | "v2" | "v1"
    name: str
    directory: Path
    services: int
    image: str
    base: list[str]
    env: dict[str, str]
    label: str
    generation: dict[str, int] = field(default_factory=dict)
    # The first service serves HTTP on this host port (downtime.py probes it).
    probe_port: int = 0

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
            served = s == self.service_names[0]
            command = json.dumps(list(HTTPD)) if served else '["sleep", "86400"]'
            lines += [
                f"[services.{s}]",
                f'image = "{self.image}"',
                f"command = {command}",
                *([f'ports = ["127.0.0.1:{self.probe_port}:{CONTAINER_PORT}"]'] if served else []),
                "init = true",
                'stop_grace_period = "2s"',
                f'env = {{ BENCH_GEN = "{self.generation.get(s, 0)}" }}',
                "",
            ]
        return "\n".join(lines)

    def _compose_yml(self) -> str:
        lines = ['version: "2.4"', "services:"]
        for s in self.service_names:
            served = s == self.service_names[0]
            command = json.dumps(list(HTTPD)) if served else '["sleep", "86400"]'
            lines += [
                f"  {s}:",
                f"    image: {self.image}",
                f"    command: {command}",
                *(
                    [f'    ports: ["127.0.0.1:{self.probe_port}:{CONTAINER_PORT}"]']
                    if served
                    else []
                ),
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

    def run(self, step: str, changed: str = "") -> Run:
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


@dataclass
class EngineTool:
    """The engine's own work for the same containers, shaped like a Project."""

    name: str
    services: int
    image: str
    service_names: list[str]
    tool: str = "engine"
    label: str = ENVD_LABEL
    generation: dict[str, int] = field(default_factory=dict)
    probe_port: int = 0
    work: EngineProject = field(init=False)

    def __post_init__(self) -> None:
        self.work = EngineProject(self.name, self.service_names, self.image)
        self.work.probe_port = self.probe_port

    def write(self) -> None:
        self.work.generation = dict(self.generation)

    def run(self, step: str, changed: str = "") -> Run:
        r = self.work.run(step, changed)
        # In-process: there is no separate peak RSS to report.
        return Run(r.seconds, float("nan"), r.cpu_s, r.code, r.output)

    def state(self) -> dict[str, tuple[str, str]]:
        return containers(self.label, self.name)

    def down_untimed(self) -> None:
        self.work.ids.clear()
        try:
            force_remove(self.label, self.name)
        except Exception as exc:
            print(f"  cleanup of {self.name} failed: {exc}", file=sys.stderr)


Tool = Project | EngineTool


def make_projects(
    n: int,
    image: str,
    root: Path,
    envd_cmd: list[str],
    v2: str,
    v1: str | None,
    prefix: str = "bench",
) -> list[Tool]:
    """The tools of one size, in the order of round 1 (v1 only when installed).

    ``prefix`` starts every project name, so runs sharing an engine stay apart.
    """
    # Fixed names: should the engine leak a project network (see `check`),
    # the next run reuses it instead of leaking another address pool.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVD_", "COMPOSE_"))}
    # An installed envd has its bytecode compiled (pip does it; Debian does it
    # for Compose). With PYTHONDONTWRITEBYTECODE an editable checkout would
    # recompile every module on every run (~60 ms) and measure the compiler.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    tools: list[Tool] = []
    for tool in TOOLS:
        directory = root / f"{tool}-{n}"
        directory.mkdir()
        if tool == "envd":
            tools.append(
                Project("envd", f"{prefix}envd-{n}", directory, n, image, envd_cmd, env, ENVD_LABEL)
            )
            tools[-1].probe_port = free_port()
        elif tool == "v2":
            name = f"{prefix}composev2-{n}"
            base = [v2, "-p", name, "--ansi", "never"]
            tools.append(Project("v2", name, directory, n, image, base, env, COMPOSE_LABEL))
            tools[-1].probe_port = free_port()
        elif tool == "v1" and v1 is not None:
            name = f"{prefix}compose{n}"
            base = [v1, "-p", name, "--no-ansi"]
            tools.append(Project("v1", name, directory, n, image, base, env, COMPOSE_LABEL))
            tools[-1].probe_port = free_port()
        elif tool == "engine":
            names = tools[0].service_names
            tools.append(EngineTool(f"{prefix}engine-{n}", n, image, names, probe_port=free_port()))
    return tools


@contextmanager
def uninterruptible() -> Iterator[None]:
    """Ctrl-C waits while the projects are torn down (the tools run then ignore it too)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def tear_down(tools: list[Tool]) -> None:
    with uninterruptible():
        for p in tools:
            p.down_untimed()
