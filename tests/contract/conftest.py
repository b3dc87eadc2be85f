"""Fixtures of the engine contract suite: one ``World`` per engine kind.

A ``World`` (``SwarmWorld`` for the swarm engines) holds an engine, the test image, a unique project label and the
few hooks that stand in for real processes when the engine is the fake (on
the real engine the container's own command does the work, so they do
nothing). Everything labelled with the project is removed on teardown, even
when the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from envd.engine.base import Engine
from envd.engine.fake import FakeEngine
from envd.engine.swarm.base import SwarmEngine
from envd.engine.swarm.fake import FakeSwarm
from envd.values import labels
from envd.values.errors import EngineError, EngineUnavailable
from envd.values.swarm_types import TASK_HASH_LABEL, SwarmServiceSpec
from envd.values.types import BuildRequest, ContainerCreate
from tests.helpers import no_engine

T = TypeVar("T")

TEST_IMAGE = os.environ.get("ENVD_TEST_IMAGE", "envd-local/busybox:latest")
BUSYBOX_BINARY = "/bin/busybox"
BUSYBOX_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
"""


@dataclass
class World:
    kind: str  # "fake" or "real"
    engine: Engine
    image: str
    project: str
    images: list[str] = field(default_factory=list)  # built during the test

    @property
    def fake(self) -> FakeEngine | None:
        return self.engine if isinstance(self.engine, FakeEngine) else None

    @property
    def podman(self) -> bool:
        """The real engine is Podman (DOCKER_HOST names its socket)."""
        from envd.engine.docker.client import DockerEngine

        return isinstance(self.engine, DockerEngine) and self.engine.engine_info().is_podman

    @property
    def runs_healthchecks(self) -> bool:
        """Whether the engine runs healthchecks: Podman 4.3 needs systemd timers for them."""
        return not (self.podman and not os.path.isdir("/run/systemd/system"))

    def labels(self, **extra: str) -> dict[str, str]:
        return {labels.PROJECT: self.project, **extra}

    def name(self, suffix: str) -> str:
        return f"{self.project}-{suffix}"

    def spec(self, suffix: str, **kw: Any) -> ContainerCreate:
        """A container of this project, by default running ``sleep`` for ever."""
        kw.setdefault("command", ("sleep", "3600"))
        kw.setdefault("stop_timeout", 1)
        kw.setdefault("image", self.image)
        return ContainerCreate(
            name=self.name(suffix),
            labels=self.labels(**{labels.SERVICE: suffix, **kw.pop("labels", {})}),
            **kw,
        )

    # --- stand-ins for processes on the fake ---------------------------------
    def process_exits(self, container_id: str, code: int) -> None:
        """The container's command exits with ``code`` (real: it does so itself)."""
        if self.fake is not None:
            self.fake.exit_container(container_id, code)

    def healthcheck_reports(self, container_id: str, health: str) -> None:
        """The healthcheck settles on ``health`` (real: the check itself decides)."""
        if self.fake is not None:
            self.fake.set_health(container_id, health)

    def prints(self, container_id: str, *lines: str) -> None:
        """The container writes ``lines`` to stdout (real: its command does)."""
        if self.fake is not None:
            self.fake.emit_log(container_id, *lines)

    def cleanup(self) -> None:
        """Remove everything labelled with this project (and images built)."""
        eng = self.engine
        # Twice: Podman refuses to remove a container another joined the network
        # namespace of (network_mode container:) while that one exists.
        for _ in range(2):
            for c in eng.list_containers(self.project):
                try:
                    eng.remove_container(c.id, volumes=True)
                except EngineError:
                    pass
        for n in eng.list_networks(self.project):
            try:
                eng.remove_network(n.name)
            except EngineError:
                pass
        for v in eng.list_volumes(self.project):
            try:
                eng.remove_volume(v.name)
            except EngineError:
                pass
        if self.kind == "real" and self.images:
            subprocess.run(
                ["docker", "image", "rm", "-f", *self.images],
                capture_output=True,
                check=False,
            )


def _real_engine() -> Engine:
    from envd.engine.docker.client import DockerEngine

    eng = DockerEngine()
    try:
        eng.ping()
    except EngineUnavailable as exc:
        no_engine(str(exc))
    return eng


def _ensure_busybox(eng: Engine | SwarmEngine) -> str:
    """The busybox test image, built from Debian's busybox-static if absent."""
    if eng.inspect_image(TEST_IMAGE) is not None:
        return TEST_IMAGE
    if not os.path.exists(BUSYBOX_BINARY):
        no_engine(f"{TEST_IMAGE} is absent and {BUSYBOX_BINARY} cannot build it")
    with tempfile.TemporaryDirectory() as ctx:
        shutil.copy(BUSYBOX_BINARY, os.path.join(ctx, "busybox"))
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(BUSYBOX_DOCKERFILE)
        eng.build_image(BuildRequest(context=ctx, tag=TEST_IMAGE))
    return TEST_IMAGE


_busybox_ready: dict[str, str] = {}


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.docker)])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    """An engine of each kind with the test image present and a fresh project."""
    kind: str = request.param
    project = f"ct-{uuid.uuid4().hex[:10]}"
    if kind == "fake":
        fake = FakeEngine(auto_healthy=False)
        fake.add_image(TEST_IMAGE)
        w = World(kind, fake, TEST_IMAGE, project)
    else:
        eng = _real_engine()
        if "real" not in _busybox_ready:
            _busybox_ready["real"] = _ensure_busybox(eng)
        w = World(kind, eng, _busybox_ready["real"], project)
    try:
        yield w
    finally:
        w.cleanup()


@pytest.fixture(params=["fake", "real"])
def unreachable_engine(request: pytest.FixtureRequest, tmp_path: Any) -> Engine:
    """An engine of each kind that cannot be reached (no Docker needed)."""
    if request.param == "fake":
        return FakeEngine(available=False)
    from envd.engine.docker.client import DockerEngine

    return DockerEngine(host=f"unix://{tmp_path}/no-such-docker.sock")


# --------------------------------------------------------------------------- swarm


@dataclass
class SwarmWorld:
    """A swarm engine of one kind, the test image and a fresh project label."""

    kind: str  # "fake" or "real"
    engine: SwarmEngine
    image: str
    project: str

    @property
    def fake(self) -> FakeSwarm | None:
        return self.engine if isinstance(self.engine, FakeSwarm) else None

    def labels(self, **extra: str) -> dict[str, str]:
        return {labels.PROJECT: self.project, **extra}

    def name(self, suffix: str) -> str:
        return f"{self.project}_{suffix}"

    def service(
        self,
        suffix: str,
        *,
        task_hash: str = "h1",
        command: tuple[str, ...] = ("sleep", "3600"),
        **kw: Any,
    ) -> SwarmServiceSpec:
        """A service of this project, by default one ``sleep`` task in DNS round robin."""
        kw.setdefault("endpoint_mode", "dnsrr")
        kw.setdefault("restart_condition", "any")
        container = ContainerCreate(
            name="",
            image=self.image,
            labels={TASK_HASH_LABEL: task_hash},
            command=command,
            stop_timeout=1,
        )
        return SwarmServiceSpec(
            name=self.name(suffix),
            labels=self.labels(**{labels.SERVICE: suffix}),
            container=container,
            **kw,
        )

    def answers(self, port: int) -> bool:
        """Whether an HTTP server answers on this node's ``port`` (fake: a running task's port)."""
        if self.fake is not None:
            return self.fake.answers(port)
        import socket

        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return sock.recv(12).startswith(b"HTTP/")
        except OSError:
            return False

    def cleanup(self) -> None:
        """Remove the project's services, then (once no task holds them) secrets, configs
        and networks."""
        import time

        eng, common = self.engine, self.labels()
        for svc in eng.list_services(common):
            eng.remove_service(svc.id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = 0
            for sec in eng.list_secrets(common):
                try:
                    eng.remove_secret(sec.id)
                except EngineError:
                    left += 1
            for cfg in eng.list_configs(common):
                try:
                    eng.remove_config(cfg.id)
                except EngineError:
                    left += 1
            for net in eng.list_swarm_networks(common):
                try:
                    eng.remove_network(net.id)
                except EngineError:
                    left += 1
            if not left:
                return
            time.sleep(0.2)  # task containers leave a network a moment after their service


def _real_swarm() -> SwarmEngine:
    from envd.engine.swarm.real import DockerSwarmEngine

    eng = DockerSwarmEngine()
    try:
        eng.ping()
    except EngineUnavailable as exc:
        no_engine(str(exc))
    info = eng.swarm_info()
    if info.state != "active":
        # Left in place afterwards, as tests/integration/test_swarm.py does.
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    elif not info.manager:
        pytest.skip("this engine is a swarm worker, not a manager")
    if "real" not in _busybox_ready:
        _busybox_ready["real"] = _ensure_busybox(eng)
    return eng


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.docker)])
def swarm_world(request: pytest.FixtureRequest) -> Iterator[SwarmWorld]:
    """A swarm manager of each kind with the test image on its node and a fresh project."""
    project = f"cs-{uuid.uuid4().hex[:10]}"
    if request.param == "fake":
        fake = FakeSwarm()
        fake.add_image(TEST_IMAGE)
        w = SwarmWorld("fake", fake, TEST_IMAGE, project)
    else:
        w = SwarmWorld("real", _real_swarm(), TEST_IMAGE, project)
    try:
        yield w
    finally:
        w.cleanup()
