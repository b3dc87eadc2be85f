"""A second, private Docker engine a test may stop and start at will.

Other tests (and other people) use the shared engine at /var/run/docker.sock,
so a test that needs the engine to vanish never touches it: it starts its own
``dockerd`` (with its own containerd, data root, a short unix socket path and a
network namespace of its own, so the host's networking is not touched), loads the busybox test image into it from the shared engine, and points envd
at it through ``DOCKER_HOST``. ``stop()`` sends SIGTERM and waits for the
process to exit, as a host shutting Docker down does (it stops the
containers); ``start()`` brings it back on the same data root. The fixture
removes everything it made, also when the test fails.

It runs only as root (dockerd needs it). When it cannot start, the test is
skipped, or fails under ``ENVD_REQUIRE_DOCKER=1`` as every Docker test does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BUSYBOX, no_engine, remove_by_hand

START_TIMEOUT = 60.0


class PrivateEngine:
    """One private dockerd: its socket, its DOCKER_HOST and stop/start."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "d.sock"
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def _argv(self) -> list[str]:
        # In a network namespace of its own: dockerd changes the host's
        # networking (with --bridge none it deletes docker0, which the shared
        # engine needs; its bridges claim address ranges and outlive it).
        # Without a default bridge and iptables it starts faster; envd's own
        # user-defined bridge networks need neither.
        return [
            "unshare",
            "--net",
            "dockerd",
            "--host",
            self.host,
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "x"),
            "--pidfile",
            str(self.root / "d.pid"),
            "--bridge",
            "none",
            "--iptables=false",
            "--ip-masq=false",
        ]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def docker(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``docker -H <this engine> ARGS``, output captured."""
        return subprocess.run(
            ["docker", "-H", self.host, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def remove_by_hand(self, name: str) -> None:
        """``docker rm -f NAME`` on this engine, as ``helpers.remove_by_hand`` does it."""
        import docker

        client = docker.DockerClient(base_url=self.host, timeout=30)
        try:
            remove_by_hand(client, name)
        finally:
            client.close()

    def answers(self) -> bool:
        return self.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode == 0

    def start(self) -> None:
        """Start dockerd (again, on the same data root) and wait until it answers."""
        if self.running:
            return
        self._log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            self._argv(), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.answers():
                return
            time.sleep(0.2)
        log = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"the private dockerd did not start:\n{log}")

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM dockerd (it stops its containers) and wait for it to exit."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                # Our own process group only: its containerd and shims.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def load_busybox(self) -> None:
        """Copy the busybox test image from the shared engine into this one."""
        save = subprocess.Popen(["docker", "save", BUSYBOX], stdout=subprocess.PIPE)
        try:
            load = subprocess.run(
                ["docker", "-H", self.host, "load"],
                stdin=save.stdout,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            if save.stdout is not None:
                save.stdout.close()
            save.wait(60)
        if save.returncode != 0 or load.returncode != 0:
            raise RuntimeError(f"loading {BUSYBOX} failed: {load.stderr.strip()}")

    def container_names(self, project: str) -> list[str]:
        """Every container of ``project`` on this engine, running or not."""
        out = self.docker(
            "ps", "-a", "--filter", f"label=dev.envd.project={project}", "--format", "{{.Names}}"
        )
        return sorted(out.stdout.split())

    def running_names(self, project: str) -> list[str]:
        out = self.docker(
            "ps", "--filter", f"label=dev.envd.project={project}", "--format", "{{.Names}}"
        )
        return sorted(out.stdout.split())


def _kill_leftovers(root: Path) -> None:
    """SIGKILL what the private engine left running: its containerd shims outlive
    dockerd and containerd (each still names the socket under ``root``)."""
    marker = str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _cleanup(root: Path) -> None:
    """Kill what the engine left running, unmount what it left under ``root``, remove it."""
    _kill_leftovers(root)
    mounts = []
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            point = line.split()[1]
            if point.startswith(str(root)):
                mounts.append(point)
    except OSError:
        pass
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_engine() -> Iterator[PrivateEngine]:
    """A private dockerd with the busybox image, stopped and removed afterwards."""
    if os.geteuid() != 0 or not (shutil.which("dockerd") and shutil.which("unshare")):
        no_engine("a private dockerd needs root, dockerd and unshare")
    # A short path: a unix socket path must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="envd-e2-", dir="/tmp"))
    engine = PrivateEngine(root)
    try:
        try:
            engine.start()
            engine.load_busybox()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            no_engine(f"the private dockerd is not usable: {exc}")
        yield engine
    finally:
        # Stopping the engine stops its containers; the data root goes with them.
        engine.stop()
        _cleanup(root)
