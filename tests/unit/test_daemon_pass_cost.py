"""What a daemon pass costs in engine calls after a one-service spec edit: the
per-container calls depend on what changed, never on the project's size."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from envd.engine.fake import FakeEngine
from tests.helpers import DaemonWorld as World

# Calls that read the whole project (one per kind, whatever its size).
LIST_CALLS = {"list_containers", "list_networks", "list_volumes"}


class CountingEngine:
    """The fake engine, counting every call by method name."""

    def __init__(self, inner: FakeEngine) -> None:
        self._inner = inner
        self.counts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return attr(*args, **kwargs)

        return counted


def spec(n: int, changed: str = "0") -> str:
    lines = ['[project]\nname = "unitd"\n']
    for i in range(n):
        gen = changed if i == n // 2 else "0"
        lines.append(
            f'[services.s{i:03d}]\nimage = "envd-local/busybox:latest"\n'
            f'command = ["sleep", "3600"]\nenv = {{ GEN = "{gen}" }}\n'
        )
    return "\n".join(lines)


def edit_pass_calls(root: Path, n: int) -> Counter[str]:
    """Engine calls of the daemon pass that follows a one-service edit in an n-service project."""
    world = World(root, spec(n))
    world.converge()
    counting = CountingEngine(world.engine)
    world.reconciler.engine = counting  # type: ignore[assignment]
    world.write(spec(n, changed="1"))
    world.converge()
    return counting.counts


def test_one_service_edit_pass_costs_the_same_at_10_and_200_services(tmp_path: Path) -> None:
    """A pass after one service's edit makes the same engine calls at 10 and at 200 services."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    small = edit_pass_calls(tmp_path / "a", 10)
    large = edit_pass_calls(tmp_path / "b", 200)
    assert small == large, (small, large)
    # One container recreated: one stop, one remove, one create, one start.
    for kind in ("stop_container", "remove_container", "create_container", "start_container"):
        assert large[kind] == 1, (kind, large)
    lists = sum(large[k] for k in LIST_CALLS)
    assert lists <= 6, large


def test_one_service_edit_pass_lists_containers_at_most_twice(tmp_path: Path) -> None:
    """The pass observes once and refreshes once after the recreate, with no extra list after."""
    calls = edit_pass_calls(tmp_path, 20)
    assert calls["list_containers"] <= 2, calls


def test_a_costly_pass_spaces_the_periodic_resync(tmp_path: Path) -> None:
    """The periodic resync waits at least RESYNC_SHARE times the last pass's CPU, so a
    large project's safety-net passes stay a small share of a core."""
    import threading

    from envd.daemon.reconciler import RESYNC_SHARE

    world = World(tmp_path, spec(2))
    r = world.reconciler
    r.resync = 0.01
    r._pass_cpu = 1.0  # a pass that cost a second of CPU: the next resync waits ≥ 500 s
    assert RESYNC_SHARE * r._pass_cpu >= 100
    due: list[object] = []
    waiter = threading.Thread(target=lambda: due.append(r.next_pass()), daemon=True)
    waiter.start()
    waiter.join(0.3)
    assert due == []  # no periodic resync after 0.3 s (30 periods of 0.01 s)
    r.trigger("files changed: envd.toml")  # a trigger is not delayed
    waiter.join(5)
    assert len(due) == 1 and due[0] is not None
