"""Taking a project down (``envd.run.teardown``) and the retry it shares with the swarm ops."""

from __future__ import annotations

import pytest

from envd.engine.fake import FakeEngine
from envd.run.retry import retry
from envd.run.teardown import NetworkRemoval, remove_networks
from envd.values import labels
from envd.values.errors import Conflict, EngineError, EngineUnavailable, NotFound
from envd.values.events import Event, FakeClock
from envd.values.types import ContainerCreate, NetworkAttachment


def test_retry_until_success_or_the_deadline() -> None:
    """A call failing with a retried error is repeated until it succeeds; past the deadline the last error is returned."""
    clock = FakeClock()
    failures = [Conflict("in use"), Conflict("in use")]

    def flaky() -> None:
        if failures:
            raise failures.pop()

    assert retry(flaky, clock, clock.monotonic() + 10) is None
    assert clock.monotonic() == 1000.5  # two waits of 0.25 s

    def stuck() -> None:
        raise Conflict("still in use")

    start = clock.monotonic()
    problem = retry(stuck, clock, start + 1.0, interval=0.2)
    assert isinstance(problem, Conflict) and clock.monotonic() >= start + 1.0


def test_retry_lets_other_errors_through() -> None:
    """Only the errors named in ``on`` are retried; any other propagates at once."""
    clock = FakeClock()

    def gone() -> None:
        raise NotFound("no such thing")

    with pytest.raises(NotFound):
        retry(gone, clock, clock.monotonic() + 5)
    assert clock.monotonic() == 1000.0


def test_retry_never_waits_out_an_unreachable_engine() -> None:
    """EngineUnavailable is an EngineError, yet even ``on=(EngineError,)`` lets it through at once (exit 3, not 5 s of retries)."""
    clock = FakeClock()

    def down() -> None:
        raise EngineUnavailable("the Docker engine is not reachable")

    with pytest.raises(EngineUnavailable):
        retry(down, clock, clock.monotonic() + 5, on=(EngineError,))
    assert clock.monotonic() == 1000.0


def test_remove_networks_reports_the_ones_still_in_use() -> None:
    """A network with a running container attached is reported stuck after the grace period; others go."""
    engine = FakeEngine()
    engine.add_image("img")
    project = {labels.PROJECT: "shop"}
    engine.create_network("shop_default", project)
    engine.create_network("shop_busy", project)
    cid = engine.create_container(
        ContainerCreate("other", "img", {}, networks=(NetworkAttachment("shop_busy"),))
    )
    engine.start_container(cid)
    events: list[Event] = []
    clock = FakeClock()
    result = remove_networks(engine, "shop", events.append, clock)
    assert result == NetworkRemoval(stuck={"shop_busy": ["other"]})
    assert [n.name for n in engine.list_networks("shop")] == ["shop_busy"]
    phases = [(e.resource, e.phase) for e in events]
    assert ("network shop_default", "done") in phases
    assert ("network shop_busy", "error") in phases
    assert clock.monotonic() >= 1005.0  # the grace period was waited out


def test_remove_networks_counts_a_network_gone_meanwhile_as_removed() -> None:
    """A network removed by someone else between list and remove is not an error."""
    engine = FakeEngine()
    engine.create_network("shop_default", {labels.PROJECT: "shop"})
    original = engine.remove_network

    def vanish(name: str) -> None:
        original(name)
        raise NotFound(f"network {name} not found", 404)

    engine.remove_network = vanish  # type: ignore[method-assign]
    assert remove_networks(engine, "shop", clock=FakeClock()) == NetworkRemoval()


def test_a_network_the_engine_leaked_endpoints_on_is_left_in_place_not_stuck() -> None:
    """No container attached but the engine still counts endpoints (moby#42119): reported as
    leaked, with an info event, so `down` can succeed; a later up reuses it."""
    engine = FakeEngine()
    engine.create_network("shop_default", {labels.PROJECT: "shop"})
    engine.leak_endpoints("shop_default")
    events: list[Event] = []
    result = remove_networks(engine, "shop", events.append, FakeClock())
    assert result == NetworkRemoval(leaked=["shop_default"])
    assert [n.name for n in engine.list_networks("shop")] == ["shop_default"]
    assert [e.phase for e in events if e.resource == "network shop_default"][-1] == "info"
