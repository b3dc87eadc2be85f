"""The event hub the control API streams from: sequence numbers, replay, fan-out."""

from __future__ import annotations

import threading

from envd.daemon.hub import EventHub

# --------------------------------------------------------------------------- EventHub


def test_hub_publish_numbers_events() -> None:
    """Every published event gets the next sequence number, starting at 1."""
    hub = EventHub()
    assert hub.seq == 0
    assert hub.publish({"kind": "a"}) == 1
    assert hub.publish({"kind": "b"}) == 2
    assert hub.seq == 2


def test_hub_subscriber_sees_only_later_events_without_since() -> None:
    """A subscriber without ``since`` gets what is published after it subscribed, in order."""
    hub = EventHub()
    hub.publish({"kind": "before"})
    q = hub.subscribe()
    assert q.empty()
    hub.publish({"kind": "x"})
    hub.publish({"kind": "y"})
    got = [q.get_nowait(), q.get_nowait()]
    assert [e["kind"] for e in got] == ["x", "y"]
    assert [e["seq"] for e in got] == [2, 3]


def test_hub_since_replays_missed_events() -> None:
    """``since=N`` replays every kept event after N, then continues live without gaps."""
    hub = EventHub()
    for i in range(5):
        hub.publish({"kind": "e", "i": i})
    q = hub.subscribe(since=2)
    hub.publish({"kind": "live"})
    seqs = []
    while not q.empty():
        seqs.append(q.get_nowait()["seq"])
    assert seqs == [3, 4, 5, 6]


def test_hub_since_zero_replays_everything_kept() -> None:
    """``since=0`` replays the whole ring; older events beyond ``keep`` are dropped."""
    hub = EventHub(keep=3)
    for i in range(5):
        hub.publish({"i": i})
    q = hub.subscribe(since=0)
    assert [q.get_nowait()["seq"] for _ in range(3)] == [3, 4, 5]
    assert q.empty()


def test_hub_fans_out_and_unsubscribe_stops_delivery() -> None:
    """Each subscriber gets its own copy; an unsubscribed queue receives nothing more."""
    hub = EventHub()
    a, b = hub.subscribe(), hub.subscribe()
    hub.publish({"kind": "one"})
    hub.unsubscribe(a)
    hub.publish({"kind": "two"})
    assert a.get_nowait()["kind"] == "one"
    assert a.empty()
    assert [b.get_nowait()["kind"], b.get_nowait()["kind"]] == ["one", "two"]


def test_hub_publish_does_not_mutate_the_callers_dict() -> None:
    """The sequence number is added to a copy, so callers can reuse their event dict."""
    hub = EventHub()
    ev = {"kind": "k"}
    hub.publish(ev)
    assert ev == {"kind": "k"}


def test_hub_is_thread_safe_under_concurrent_publishers() -> None:
    """Concurrent publishers never lose or duplicate a sequence number."""
    hub = EventHub(keep=10_000)
    q = hub.subscribe()

    def pump() -> None:
        for _ in range(500):
            hub.publish({"kind": "t"})

    threads = [threading.Thread(target=pump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [q.get_nowait()["seq"] for _ in range(2000)]
    assert seqs == list(range(1, 2001))


def test_hub_keeps_only_the_newest_events_for_replay() -> None:
    """The replay ring holds ``keep`` events: a late subscriber gets the newest, in order."""
    hub = EventHub(keep=3)
    for n in range(5):
        hub.publish({"n": n})
    q = hub.subscribe(since=0)
    replayed = [q.get_nowait() for _ in range(q.qsize())]
    assert [(e["seq"], e["n"]) for e in replayed] == [(3, 2), (4, 3), (5, 4)]
