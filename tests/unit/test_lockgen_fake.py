"""``envd lock``'s resolution (``envd.run.lockgen``) on the fake engine."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from envd.engine.fake import FakeEngine
from envd.inputs.lock import BASE
from envd.inputs.prepare import Target
from envd.run.lockgen import environments_of, make_lock
from envd.values.errors import EnvironmentFailed
from envd.values.events import Event

SPEC = """\
[project]
name = "shop"

[services.db]
image = "postgres:16"

[services.app]
build = "app"

[services.debug]
image = "busybox:1"
profiles = ["debug"]

[environments.ci]
services.db.image = "postgres:17"
"""


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever envd keeps per user goes to a temporary directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def project(root: Path, spec: str = SPEC) -> Target:
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "Dockerfile").write_text("FROM busybox\n")
    (root / "envd.toml").write_text(textwrap.dedent(spec))
    return Target(str(root))


def test_environments_are_the_base_then_each_overlay_sorted(tmp_path: Path) -> None:
    """The lock covers the base (None) and every environment of the spec, in a stable order."""
    assert environments_of(project(tmp_path)) == [None, "ci"]


def test_lock_pulls_builds_and_pins_every_service_of_every_environment(tmp_path: Path) -> None:
    """Missing images are pulled or built; pulled ones pin to a repo digest, built ones to their id."""
    engine = FakeEngine()
    events: list[Event] = []
    lock = make_lock(engine, project(tmp_path), events.append)
    assert sorted(lock.environments) == sorted([BASE, "ci"])
    base = lock.environments[BASE].services
    # Every profile's services are pinned, whatever this run enables.
    assert sorted(base) == ["app", "db", "debug"]
    assert base["db"].image == "postgres:16" and base["db"].resolved.startswith("postgres@sha256:")
    assert base["app"].resolved == base["app"].image_id and base["app"].context
    ci = lock.environments["ci"].services
    assert ci["db"].image == "postgres:17" and ci["db"].resolved != base["db"].resolved
    calls = engine.mutating_calls()
    assert ("pull_image", "postgres:17") in calls and ("build_image", base["app"].image) in calls
    assert any(e.kind == "pull" for e in events)


def test_lock_of_local_images_pulls_nothing(tmp_path: Path) -> None:
    """An image present with a repo digest is pinned to it without asking the engine to pull."""
    engine = FakeEngine()
    engine.add_image("postgres:16", repo_digests=("postgres@sha256:aaa",))
    engine.add_image("postgres:17", repo_digests=("postgres@sha256:bbb",))
    engine.add_image("busybox:1", repo_digests=("busybox@sha256:ccc",))
    lock = make_lock(
        engine, project(tmp_path, SPEC.replace('build = "app"', 'image = "busybox:1"'))
    )
    assert lock.environments[BASE].services["db"].resolved == "postgres@sha256:aaa"
    assert lock.environments["ci"].services["db"].resolved == "postgres@sha256:bbb"
    assert not [c for c in engine.mutating_calls() if c[0] in ("pull_image", "build_image")]


def test_lock_refuses_an_image_that_may_not_be_pulled(tmp_path: Path) -> None:
    """A missing image with pull = "never" fails the lock (exit 1) naming the service."""
    spec = SPEC.replace('image = "postgres:16"', 'image = "postgres:16"\npull = "never"')
    with pytest.raises(EnvironmentFailed) as caught:
        make_lock(FakeEngine(), project(tmp_path, spec))
    assert [f.service for f in caught.value.failures] == ["db"]


def test_the_lock_is_written_to_envd_lock_in_the_project(tmp_path: Path) -> None:
    """Contract §6 names the committed file `envd.lock`; a refactor must not rename it."""
    from envd.inputs.lock import read, write

    target = project(tmp_path)
    written = write(tmp_path, make_lock(FakeEngine(), target, lambda _: None))
    assert written == tmp_path / "envd.lock"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")) == ["envd.lock"]
    assert read(tmp_path) is not None
