"""Debounce and back-off arithmetic, with plain numbers for ``now``: nothing sleeps."""

from __future__ import annotations

import pytest

from envd.daemon.timing import Backoff, Debouncer

# --------------------------------------------------------------------------- Debouncer


def test_debouncer_idle_is_not_pending() -> None:
    """A debouncer nobody marked is not pending and never fires."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    assert not d.pending
    assert d.remaining(123.0) == float("inf")


def test_debouncer_fires_after_quiet_period() -> None:
    """One mark fires once the quiet period has passed, not before."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    d.mark(10.0)
    assert d.pending
    assert d.remaining(10.0) == pytest.approx(0.05)
    assert d.remaining(10.03) == pytest.approx(0.02)
    assert d.remaining(10.05) == 0.0
    assert d.remaining(11.0) == 0.0  # never negative


def test_debouncer_burst_extends_quiet_period() -> None:
    """Each new mark in a burst pushes the firing time back by the quiet period."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    d.mark(10.00)
    d.mark(10.04)
    assert d.remaining(10.05) == pytest.approx(0.04)
    d.mark(10.08)
    assert d.remaining(10.09) == pytest.approx(0.04)
    assert d.remaining(10.13) == 0.0


def test_debouncer_steady_trickle_cannot_starve_it() -> None:
    """Marks arriving faster than the quiet period still fire within max_wait of the first."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    t = 100.0
    d.mark(t)
    fired_at = None
    for i in range(1, 100):
        now = t + i * 0.01
        if d.remaining(now) == 0.0:
            fired_at = now
            break
        d.mark(now)
    assert fired_at == pytest.approx(100.5)


def test_debouncer_reset_forgets_the_burst() -> None:
    """After reset the next mark starts a new burst (a new max_wait window)."""
    d = Debouncer(quiet=0.05, max_wait=0.5)
    d.mark(1.0)
    d.mark(1.4)
    d.reset()
    assert not d.pending
    d.mark(2.0)
    assert d.remaining(2.0) == pytest.approx(0.05)
    assert d.first == 2.0


def test_debouncer_quiet_zero_fires_at_once() -> None:
    """A debouncer with quiet 0 fires as soon as it is marked (what tests of the loop use)."""
    d = Debouncer(quiet=0.0, max_wait=0.0)
    d.mark(5.0)
    assert d.remaining(5.0) == 0.0


# --------------------------------------------------------------------------- Backoff


def test_backoff_doubles_from_base() -> None:
    """Consecutive failures wait base, 2×base, 4×base…"""
    b = Backoff(base=0.5, cap=30.0)
    assert [b.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_is_capped() -> None:
    """The delay never exceeds the cap, however many failures."""
    b = Backoff(base=0.5, cap=30.0)
    delays = [b.failed() for _ in range(20)]
    assert max(delays) == 30.0
    assert delays[-1] == 30.0
    assert delays == sorted(delays)


def test_backoff_success_resets() -> None:
    """A success starts the next failure over at the base delay."""
    b = Backoff(base=0.25, cap=10.0)
    b.failed()
    b.failed()
    b.succeeded()
    assert b.failures == 0
    assert b.failed() == 0.25
