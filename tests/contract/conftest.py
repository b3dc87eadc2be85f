"""Fixtures of the engine contract suite: one ``World`` per engine kind.

A ``World`` holds an engine, the test image, a unique project label and the
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
from envd.values.errors import EngineError, EngineUnavailable
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

    def labels(self, **extra: str) -> dict[str, str]:
        return {"dev.envd.project": self.project, **extra}

    def name(self, suffix: str) -> str:
        return f"{self.project}-{suffix}"

    def spec(self, suffix: str, **kw: Any) -> ContainerCreate:
        """A container of this project, by default running ``sleep`` for ever."""
        kw.setdefault("command", ("sleep", "3600"))
        kw.setdefault("stop_timeout", 1)
        kw.setdefault("image", self.image)
        return ContainerCreate(
            name=self.name(suffix),
            labels=self.labels(**{"dev.envd.service": suffix, **kw.pop("labels", {})}),
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


def _ensure_busybox(eng: Engine) -> str:
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
