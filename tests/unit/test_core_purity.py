"""The pure core does no IO: desire, make_plan and project_status read neither files nor
the environment (the hash key and host paths are resolved before them, in inputs and spec)."""

from __future__ import annotations

import builtins
import io
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from envd.core.desired import DesiredProject, container_for, desire
from envd.core.observed import Observed
from envd.core.plan import make_plan
from envd.core.status import project_status
from envd.spec.load import LoadedSpec, load
from envd.values.keys import Keys
from envd.values.types import ObservedContainer, ObservedImage, ObservedNetwork, ObservedVolume

KEYS = Keys(b"unit-test-hash-key")
IMAGE_ID = "sha256:" + "b" * 64

# Every input that used to make the core touch the outside: a secret (the
# hash key), a bind mount with `~` and a relative path, a build context.
SPEC = """\
[project]
name = "pure"

[services.db]
image = "postgres:16"
volumes = ["data:/var/lib/postgresql/data", "~/dumps:/dumps:ro"]
secrets = ["pw"]

[services.app]
build = "./app"
volumes = ["./src:/src"]
depends_on = { db = "started" }
env = { HOME = "" }

[volumes.data]

[secrets.pw]
env = "PW"
"""


class _NoEnviron(Mapping[str, str]):
    """An os.environ stand-in that fails the test on any read."""

    def _fail(self, *_: object) -> NoReturn:
        raise AssertionError("the pure core read the process environment")

    __getitem__ = _fail
    __iter__ = _fail  # type: ignore[assignment]
    __len__ = _fail  # type: ignore[assignment]
    __contains__ = _fail  # type: ignore[assignment]
    get = _fail  # type: ignore[assignment]


@contextmanager
def no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within the block, opening a file, stat-ing a path or reading os.environ raises."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError(f"the pure core did IO: {args!r}")

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", refuse)
        m.setattr(io, "open", refuse)
        m.setattr(os, "open", refuse)
        m.setattr(os, "stat", refuse)
        m.setattr(os, "lstat", refuse)
        m.setattr(os, "getcwd", refuse)
        m.setattr(os, "environ", _NoEnviron())
        yield


@pytest.fixture
def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedSpec:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "dumps").mkdir(parents=True)
    (tmp_path / "envd.toml").write_text(SPEC)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "src").mkdir()
    return load(tmp_path, environ={"PW": "hunter2"})


def _converged(desired: DesiredProject) -> Observed:
    containers = []
    for name, svc in desired.services.items():
        want = container_for(desired, svc, 1, IMAGE_ID)
        containers.append(
            ObservedContainer(
                id=f"id-{name}",
                name=want.name,
                labels=dict(want.labels),
                status="running",
                image_id=IMAGE_ID,
            )
        )
    return Observed(
        containers=tuple(containers),
        networks=tuple(
            ObservedNetwork(f"net-{n.name}", n.name, dict(n.labels))
            for n in desired.networks.values()
        ),
        volumes=tuple(ObservedVolume(v.name, dict(v.labels)) for v in desired.volumes.values()),
        images={
            s.image_ref: ObservedImage(s.image_ref, IMAGE_ID) for s in desired.services.values()
        },
    )


def test_the_guard_catches_io(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The no-IO guard really refuses files, paths and the environment (else the tests below prove nothing)."""
    with no_io(monkeypatch):
        with pytest.raises(AssertionError):
            open(tmp_path / "x", "w")  # noqa: SIM115
        with pytest.raises(AssertionError):
            Path("~/x").expanduser()
        with pytest.raises(AssertionError):
            (tmp_path / "x").resolve(strict=True)
        with pytest.raises(AssertionError):
            os.environ.get("HOME")


def test_desire_does_no_io(monkeypatch: pytest.MonkeyPatch, loaded: LoadedSpec) -> None:
    """desire() gives the same desired state with every file and the environment out of reach."""
    expected = desire(loaded, {"pw": b"hunter2"}, {"app": "sha256:ctx"}, keys=KEYS)
    with no_io(monkeypatch):
        got = desire(loaded, {"pw": b"hunter2"}, {"app": "sha256:ctx"}, keys=KEYS)
    assert got == expected
    assert got.services["db"].secret_digests == (KEYS.digest(b"hunter2"),)
    assert got.services["app"].build is not None
    assert got.services["app"].build.context == str((loaded.project_dir / "app").resolve())
    binds = {m.target: m.source for m in got.services["db"].template.mounts if m.type == "bind"}
    assert binds == {"/dumps": str(loaded.project_dir / "home" / "dumps")}


def test_make_plan_and_status_do_no_io(monkeypatch: pytest.MonkeyPatch, loaded: LoadedSpec) -> None:
    """make_plan and project_status decide the same with every file and the environment out of reach."""
    desired = desire(loaded, {"pw": b"hunter2"}, keys=KEYS)
    empty, converged = Observed(), _converged(desired)
    expected = [make_plan(desired, o) for o in (empty, converged)]
    status = project_status(desired, converged, expected[1])
    with no_io(monkeypatch):
        got = [make_plan(desired, o) for o in (empty, converged)]
        got_status = project_status(desired, converged, got[1])
    assert got == expected
    assert got_status == status
    assert got[0].changes and not got[1].changes
