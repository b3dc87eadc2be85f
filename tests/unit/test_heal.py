"""The supervisor's pure decisions (envd.core.heal): heal, back off, flap, restart dependents."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from envd.core.desired import DesiredHeal, DesiredProject, desire
from envd.core.heal import (
    MAX_BACKOFF,
    HealRecord,
    ServiceRun,
    backoff_delay,
    current,
    decide,
    dependents_to_restart,
    flapped,
    healed,
    reset,
    restart_watched,
)
from envd.spec.load import load
from envd.values.errors import SpecError
from envd.values.keys import Keys

KEYS = Keys(b"unit-test-hash-key")
POLICY = DesiredHeal(enabled=True, max=3, window=60.0, backoff=2.0)


def desired_from(root: Path, spec: str) -> DesiredProject:
    (root / "envd.toml").write_text(textwrap.dedent(spec))
    return desire(load(root, environ={}), {}, keys=KEYS)


def test_first_heal_is_immediate() -> None:
    """An unhealthy service never healed in its window is restarted at once."""
    d = decide(POLICY, HealRecord(), 100.0)
    assert d.action == "heal" and "heal 1 of 3" in d.reason


def test_backoff_doubles_between_heals() -> None:
    """Each further heal within the window waits backoff × 2^(n-1) after the previous one."""
    assert [backoff_delay(POLICY, n) for n in range(4)] == [0.0, 2.0, 4.0, 8.0]
    assert backoff_delay(DesiredHeal(backoff=100.0), 10) == MAX_BACKOFF
    record = healed(healed(HealRecord(), POLICY, 100.0, "h"), POLICY, 103.0, "h")
    wait = decide(POLICY, record, 105.0)
    assert wait.action == "wait" and wait.due == 107.0
    assert decide(POLICY, record, 107.0).action == "heal"


def test_more_heals_than_max_in_window_is_flapping() -> None:
    """A service unhealthy again after ``max`` heals within the window flaps; then nothing is done."""
    record = HealRecord()
    for t in (100.0, 110.0, 120.0):
        record = healed(record, POLICY, t, "h")
    flap = decide(POLICY, record, 130.0)
    assert flap.action == "flap" and "3 heals within 1m" in flap.reason
    record = flapped(record, 130.0, "h")
    assert decide(POLICY, record, 1000.0).action == "flapping"
    assert record.total == 3 and record.flapping_since == 130.0


def test_heals_older_than_the_window_do_not_count() -> None:
    """Heals that left the window neither delay nor count towards flapping."""
    record = HealRecord()
    for t in (100.0, 110.0, 120.0):
        record = healed(record, POLICY, t, "h")
    later = decide(POLICY, record, 200.0)
    assert later.action == "heal"
    assert healed(record, POLICY, 200.0, "h").heals == (200.0,)


def test_disabled_policy_never_heals() -> None:
    """heal.enabled = false: the decision is "off" whatever the record."""
    assert decide(DesiredHeal(enabled=False), HealRecord(), 1.0).action == "off"


def test_replaced_container_or_rerun_clears_flapping_but_keeps_the_total() -> None:
    """Once none of the healed containers is left (recreated, down + up), or on `--rerun`,
    the window and the flap mark are forgotten; the total stays."""
    record = flapped(healed(HealRecord(), POLICY, 1.0, "c1"), 2.0, "c1")
    assert current(record, frozenset({"c1", "c2"})) == record
    fresh = current(record, frozenset({"c3"}))
    assert not fresh.flapping and fresh.heals == () and fresh.total == 1
    assert fresh.containers == ()
    cleared = reset(record)
    assert not cleared.flapping and cleared.total == 1


DEPS = """\
[services.db]
image = "pg"
healthcheck = { test = ["CMD", "true"] }

[services.app]
image = "app"
depends_on = { db = { condition = "healthy", restart = true } }

[services.plain]
image = "app"
depends_on = { db = "healthy" }
"""


def _run(first: float, last: float | None = None, **ok: bool) -> ServiceRun:
    return ServiceRun(first, last if last is not None else first, ok)


def test_dependent_restarts_once_its_restarted_dependency_is_ready(tmp_path: Path) -> None:
    """A restart = true dependent that started before its dependency's latest start is
    restarted only once the dependency meets its condition; a plain dependent never is."""
    desired = desired_from(tmp_path, DEPS)
    assert restart_watched(desired) == {"app", "db"}
    runs = {"app": _run(10.0), "plain": _run(10.0), "db": _run(5.0, 20.0, healthy=False)}
    assert dependents_to_restart(desired, runs) == []
    runs["db"] = _run(20.0, healthy=True)
    assert dependents_to_restart(desired, runs) == [("app", ["db"])]
    runs["app"] = _run(21.0)
    assert dependents_to_restart(desired, runs) == []


def test_dependent_started_after_its_dependency_is_left_alone(tmp_path: Path) -> None:
    """Containers started in dependency order (a normal `up`) restart nothing."""
    desired = desired_from(tmp_path, DEPS)
    runs = {"db": _run(5.0, healthy=True), "app": _run(6.0)}
    assert dependents_to_restart(desired, runs) == []


def test_spec_heal_and_oneshot_fields(tmp_path: Path) -> None:
    """`heal` (table or boolean), `oneshot` and `depends_on.restart` reach the desired state,
    and none of them is part of the config hash."""
    base = """\
    [services.job]
    image = "app"
    {extra}

    [services.web]
    image = "app"
    depends_on = {{ job = {{ condition = "completed"{restart} }} }}
    """
    plain = desired_from(tmp_path, base.format(extra="", restart=""))
    tuned = desired_from(
        tmp_path,
        base.format(
            extra='oneshot = true\nheal = { max = 2, window = "1m", backoff = "500ms" }',
            restart=", restart = true",
        ),
    )
    assert tuned.services["job"].heal == DesiredHeal(True, 2, 60.0, 0.5)
    assert tuned.services["job"].oneshot and tuned.oneshot("job") and plain.oneshot("job")
    assert not plain.oneshot("web")
    assert tuned.services["web"].depends_on["job"].restart
    from envd.core.desired import desired_hash

    for name in ("job", "web"):
        assert desired_hash(plain.services[name], "img") == desired_hash(
            tuned.services[name], "img"
        )
    off = desired_from(tmp_path, base.format(extra="heal = false", restart=""))
    assert off.services["job"].heal.enabled is False


def test_spec_refuses_a_bad_heal_policy(tmp_path: Path) -> None:
    """heal.max below 1, an unknown heal field or a one-shot that always restarts is a spec
    error naming the field."""
    for body, word in (
        ("heal = { max = 0 }", "max"),
        ("heal = { retries = 3 }", "retries"),
        ('oneshot = true\nrestart = "always"', "runs to completion"),
    ):
        (tmp_path / "envd.toml").write_text(f'[services.a]\nimage = "x"\n{body}\n')
        with pytest.raises(SpecError) as info:
            load(tmp_path, environ={})
        assert word in str(info.value)


def test_compose_export_and_import_keep_restart_heal_and_oneshot(tmp_path: Path) -> None:
    """depends_on.restart goes to Compose's own field; heal and oneshot ride in x-envd and
    come back from `envd import` unchanged."""
    from envd.interop.compose_export import to_compose
    from envd.interop.compose_import import import_compose
    from envd.interop.render import render_yaml

    spec = """\
    [services.db]
    image = "pg"
    healthcheck = { test = ["CMD", "true"] }
    heal = { max = 2, window = "1m", backoff = "500ms" }

    [services.job]
    image = "app"
    oneshot = true

    [services.api]
    image = "app"
    depends_on = { db = { condition = "healthy", restart = true }, job = "completed" }
    """
    first = desired_from(tmp_path, spec)
    exported = to_compose(load(tmp_path, environ={}))
    compose = exported.documents[0]["services"]["api"]["depends_on"]["db"]
    assert compose == {"condition": "service_healthy", "restart": True}
    back = tmp_path / "back"
    back.mkdir()
    (back / "envd.toml").write_text(import_compose(render_yaml(exported)).toml)
    again = desire(load(back, environ={}), {}, keys=KEYS)
    assert again.services["db"].heal == first.services["db"].heal
    assert again.services["job"].oneshot
    assert again.services["api"].depends_on["db"].restart
    assert not again.services["api"].depends_on["job"].restart
