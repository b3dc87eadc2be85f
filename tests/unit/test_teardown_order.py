"""The order ``down`` removes containers in (envd/run/teardown.py)."""

from __future__ import annotations

import pytest

from envd.engine.fake import FakeEngine
from envd.run.teardown import remove_all
from envd.values.errors import Conflict
from envd.values.types import ObservedContainer


class RefusesOwnerFirst(FakeEngine):
    """A FakeEngine refusing, like Podman, to remove ``owner`` while ``joined`` exists."""

    def __init__(self) -> None:
        super().__init__()
        self.removed: list[str] = []

    def stop_container(self, container_id: str, timeout: int | None = None) -> None:
        return None

    def remove_container(
        self, container_id: str, volumes: bool = False, mounted: tuple[str, ...] | None = None
    ) -> None:
        assert not (container_id == "owner" and "joined" not in self.removed), (
            "owner removed while joined still uses its network namespace"
        )
        self.removed.append(container_id)


def test_down_removes_containers_in_anothers_namespace_first() -> None:
    """A container with network_mode container:<id> is removed before the namespace's owner."""
    eng = RefusesOwnerFirst()
    owner = ObservedContainer(id="owner", name="p-db-1", labels={}, status="running")
    joined = ObservedContainer(
        id="joined", name="p-probe-1", labels={}, status="running", network_mode="container:owner"
    )
    remove_all(eng, [owner, joined], lambda c: 1)
    assert eng.removed == ["joined", "owner"]


class PodmanRefusal(RefusesOwnerFirst):
    """Like Podman: the owner is refused with a conflict (not removed) while joined exists."""

    def remove_container(
        self, container_id: str, volumes: bool = False, mounted: tuple[str, ...] | None = None
    ) -> None:
        if container_id == "owner" and "joined" not in self.removed:
            raise Conflict("container owner has dependent containers which must be removed", 409)
        self.removed.append(container_id)


def test_down_retries_an_owner_refused_while_an_unseen_joined_container_existed() -> None:
    """Podman's list carries no network mode: a refused owner is removed after the rest."""
    eng = PodmanRefusal()
    owner = ObservedContainer(id="owner", name="p-db-1", labels={}, status="running")
    joined = ObservedContainer(id="joined", name="p-probe-1", labels={}, status="running")
    remove_all(eng, [owner, joined], lambda c: 1)
    assert sorted(eng.removed) == ["joined", "owner"]
    assert eng.removed[-1] == "owner"


def test_down_reports_a_container_the_engine_keeps_refusing() -> None:
    """A refusal that outlasts the others is the caller's error, not swallowed."""

    class Always(RefusesOwnerFirst):
        def remove_container(
            self, container_id: str, volumes: bool = False, mounted: tuple[str, ...] | None = None
        ) -> None:
            raise Conflict("removal of container x is already in progress", 409)

    c = ObservedContainer(id="x", name="p-x-1", labels={}, status="exited")
    with pytest.raises(Conflict):
        remove_all(Always(), [c], lambda c: 1)
