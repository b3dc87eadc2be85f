"""Anonymous volumes on the FakeEngine: handed over on recreate, kept by ``down``, removed by ``down -v``.

Like Compose: a recreate mounts the old container's anonymous volumes (an
image's ``VOLUME``, a spec entry without a source) into the new one at the
same paths; only ``down -v`` deletes them. envd's secret volumes are never
handed over.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from envd.core.desired import DesiredProject, desire
from envd.core.plan import aside_name
from envd.engine.fake import FakeEngine
from envd.run.converge import converge
from envd.run.teardown import remove_all
from envd.spec.load import load
from envd.values.errors import EngineError, EnvironmentFailed
from envd.values.events import Event, FakeClock
from envd.values.keys import Keys
from envd.values.types import ObservedMount

PGDATA = "/var/lib/postgresql/data"

SPEC = """\
[project]
name = "shop"

[services.db]
image = "pg"
env = { GEN = "1" }
volumes = ["/cache", "named:/named"]

[volumes.named]
"""


# Secret digests use a fixed key, never the user's key file.
KEYS = Keys(b"unit-test-hash-key")


def desired_from(root: Path, spec: str, secrets: dict[str, bytes] | None = None) -> DesiredProject:
    (root / "envd.toml").write_text(textwrap.dedent(spec))
    return desire(load(root, environ={}), secrets or {}, keys=KEYS)


def engine() -> FakeEngine:
    eng = FakeEngine()
    eng.add_image("pg", volumes=(PGDATA,))  # like postgres: VOLUME /var/lib/postgresql/data
    return eng


def the_container(eng: FakeEngine, service: str = "db") -> str:
    (c,) = [c for c in eng.list_containers("shop") if c.service == service]
    return c.id


def mounts(eng: FakeEngine, cid: str) -> dict[str, ObservedMount]:
    return {m.target: m for m in eng.container_mounts(cid)}


def converge_once(
    eng: FakeEngine, desired: DesiredProject, events: list[Event] | None = None
) -> None:
    emit = events.append if events is not None else (lambda e: None)
    converge(eng, desired, emit=emit, clock=FakeClock(), timeout=60)


def test_recreate_hands_anonymous_volumes_over(tmp_path: Path) -> None:
    """A changed env recreates the container; its image and spec anonymous volumes move to the new one."""
    eng = engine()
    converge_once(eng, desired_from(tmp_path, SPEC))
    old = the_container(eng)
    before = mounts(eng, old)
    assert before[PGDATA].anonymous and before["/cache"].anonymous
    assert len(before[PGDATA].source) == 64
    assert not before["/named"].anonymous and before["/named"].source == "shop_named"
    eng.calls.clear()

    events: list[Event] = []
    converge_once(eng, desired_from(tmp_path, SPEC.replace('"1"', '"2"')), events)
    new = the_container(eng)
    assert new != old
    after = mounts(eng, new)
    for path in (PGDATA, "/cache", "/named"):
        assert after[path].source == before[path].source, path
    assert after[PGDATA].anonymous and after["/cache"].anonymous  # still anonymous
    assert set(eng.container_spec(new).anonymous_volumes) == {
        before[PGDATA].source,
        before["/cache"].source,
    }
    # Renamed aside, stopped while the new one is created, started after; the old one
    # removed meanwhile, and nothing removes a volume.
    calls = eng.mutating_calls()
    assert calls[0] == ("rename_container", old, aside_name("shop-db-1", old))
    assert sorted(calls[1:]) == sorted(
        [
            ("stop_container", old),
            ("create_container", "shop-db-1"),
            ("start_container", new),
            ("remove_container", old),
        ]
    )
    assert calls.index(("stop_container", old)) < calls.index(("start_container", new))
    said = [e.message for e in events if e.kind == "recreate"]
    assert f"keeping anonymous volume(s) at /cache, {PGDATA}" in said


def test_handed_over_volumes_survive_many_recreates(tmp_path: Path) -> None:
    """Each recreate hands the same volume on; no anonymous volume is created or lost on the way."""
    eng = engine()
    converge_once(eng, desired_from(tmp_path, SPEC))
    first = mounts(eng, the_container(eng))[PGDATA].source
    for gen in ("2", "3", "4"):
        converge_once(eng, desired_from(tmp_path, SPEC.replace('"1"', f'"{gen}"')))
        assert mounts(eng, the_container(eng))[PGDATA].source == first
    assert len(eng.list_volumes("shop")) == 1  # the named one; anonymous ones carry no label


def test_the_spec_wins_at_a_path_it_mounts_something_else_at(tmp_path: Path) -> None:
    """A named volume now mounted where an anonymous one was takes its place; the old one is kept, not deleted."""
    eng = engine()
    converge_once(eng, desired_from(tmp_path, SPEC))
    old_pgdata = mounts(eng, the_container(eng))[PGDATA].source
    old_cache = mounts(eng, the_container(eng))["/cache"].source
    changed = SPEC.replace(
        '"/cache", ', f'{{ type = "tmpfs", target = "/cache" }}, "named:{PGDATA}", '
    )
    converge_once(eng, desired_from(tmp_path, changed))
    after = mounts(eng, the_container(eng))
    assert after[PGDATA].source == "shop_named" and not after[PGDATA].anonymous
    assert "/cache" not in after  # a tmpfs now: not a volume mount
    assert eng.container_spec(the_container(eng)).anonymous_volumes == ()
    # Not handed over, and not deleted either: orphaned, as Compose leaves them.
    assert eng.volume_exists(old_pgdata) and eng.volume_exists(old_cache)


def test_spec_entry_without_source_gets_the_old_volume_and_keeps_its_mode(tmp_path: Path) -> None:
    """``"/cache:ro"`` after ``"/cache"``: the same anonymous volume, now read-only as the spec says."""
    eng = engine()
    converge_once(eng, desired_from(tmp_path, SPEC))
    old_cache = mounts(eng, the_container(eng))["/cache"].source
    converge_once(
        eng,
        desired_from(tmp_path, SPEC.replace('"/cache"', '{ target = "/cache", read_only = true }')),
    )
    cache = mounts(eng, the_container(eng))["/cache"]
    assert (cache.source, cache.read_only, cache.anonymous) == (old_cache, True, True)


SECRET_SPEC = """\
[project]
name = "shop"

[services.ro]
image = "pg"
env = { GEN = "1" }
read_only = true
secrets = ["pw"]

[secrets.pw]
file = "pw.txt"
"""


def test_secret_volumes_are_not_handed_over(tmp_path: Path) -> None:
    """A read-only service's secret volume goes with its container; the new one gets a fresh one."""
    (tmp_path / "pw.txt").write_text("hunter2")
    eng = engine()
    converge_once(eng, desired_from(tmp_path, SECRET_SPEC, {"pw": b"hunter2"}))
    before = mounts(eng, the_container(eng, "ro"))
    assert before["/run/secrets"].secrets and before["/run/secrets"].anonymous
    converge_once(
        eng, desired_from(tmp_path, SECRET_SPEC.replace('"1"', '"2"'), {"pw": b"hunter2"})
    )
    new = the_container(eng, "ro")
    after = mounts(eng, new)
    assert after["/run/secrets"].secrets
    assert after["/run/secrets"].source != before["/run/secrets"].source
    assert not eng.volume_exists(before["/run/secrets"].source), "an old secret stayed on disk"
    assert after[PGDATA].source == before[PGDATA].source  # the data volume still moves
    assert eng.container_spec(new).anonymous_volumes == (before[PGDATA].source,)


def test_failure_between_remove_and_start_loses_no_volume(tmp_path: Path) -> None:
    """Create fails after the old container is gone: the volume stays (orphaned); a start that fails leaves a created container that the next pass recreates, handing the volume on again."""
    eng = engine()
    converge_once(eng, desired_from(tmp_path, SPEC))
    vol = mounts(eng, the_container(eng))[PGDATA].source

    eng.fail_next("create_container", EngineError("no space left on device", 500))
    with pytest.raises(EnvironmentFailed):
        converge_once(eng, desired_from(tmp_path, SPEC.replace('"1"', '"2"')))
    assert eng.list_containers("shop") == []
    assert eng.volume_exists(vol), "the anonymous volume was deleted with the old container"

    # The same state with the new container created but never started.
    eng2 = engine()
    converge_once(eng2, desired_from(tmp_path, SPEC))
    vol2 = mounts(eng2, the_container(eng2))[PGDATA].source
    eng2.fail_next("start_container", EngineError("port is already allocated", 500))
    with pytest.raises(EnvironmentFailed):
        converge_once(eng2, desired_from(tmp_path, SPEC.replace('"1"', '"2"')))
    created = the_container(eng2)
    assert eng2.container_state(created).status == "created"
    assert mounts(eng2, created)[PGDATA].source == vol2
    converge_once(eng2, desired_from(tmp_path, SPEC.replace('"1"', '"2"')))
    running = the_container(eng2)
    assert running != created
    assert mounts(eng2, running)[PGDATA].source == vol2


def test_down_keeps_anonymous_volumes_and_down_v_removes_them(tmp_path: Path) -> None:
    """``down`` (remove_all) keeps anonymous volumes, handed-over ones included; ``down -v`` removes them."""
    for volumes in (False, True):
        eng = engine()
        converge_once(eng, desired_from(tmp_path, SPEC))
        converge_once(eng, desired_from(tmp_path, SPEC.replace('"1"', '"2"')))  # hand over once
        cid = the_container(eng)
        anon = [m.source for m in eng.container_mounts(cid) if m.anonymous]
        assert len(anon) == 2
        remove_all(eng, eng.list_containers("shop"), lambda c: 1, volumes=volumes)
        assert eng.list_containers("shop") == []
        assert [eng.volume_exists(v) for v in anon] == [not volumes] * 2, f"volumes={volumes}"
        # Named volumes are down's own business (only the declared ones, with -v).
        assert eng.volume_exists("shop_named")


def test_scale_down_keeps_anonymous_volumes(tmp_path: Path) -> None:
    """A replica scaled away leaves its anonymous volumes behind, as Compose does, instead of deleting data."""
    eng = engine()
    converge_once(eng, desired_from(tmp_path, SPEC.replace("env =", "replicas = 2\nenv =")))
    (second,) = [c.id for c in eng.list_containers("shop") if c.replica == 2]
    anon = [m.source for m in eng.container_mounts(second) if m.anonymous]
    converge_once(eng, desired_from(tmp_path, SPEC))
    assert [c.replica for c in eng.list_containers("shop")] == [1]
    assert all(eng.volume_exists(v) for v in anon)


def test_a_volume_the_spec_and_image_dropped_is_left_behind(tmp_path: Path) -> None:
    """Only paths the new container would get an anonymous volume at are served (Compose):
    dropping ``"/cache"`` from the spec, or moving to an image without the ``VOLUME``,
    leaves that volume unmounted (and not deleted)."""
    eng = engine()
    eng.add_image("pg-novol")
    converge_once(eng, desired_from(tmp_path, SPEC))
    before = mounts(eng, the_container(eng))
    converge_once(eng, desired_from(tmp_path, SPEC.replace('"/cache", ', "")))
    after = mounts(eng, the_container(eng))
    assert "/cache" not in after
    assert after[PGDATA].source == before[PGDATA].source  # the image still declares it
    converge_once(
        eng, desired_from(tmp_path, SPEC.replace('"/cache", ', "").replace('"pg"', '"pg-novol"'))
    )
    assert PGDATA not in mounts(eng, the_container(eng))
    assert eng.volume_exists(before["/cache"].source) and eng.volume_exists(before[PGDATA].source)
