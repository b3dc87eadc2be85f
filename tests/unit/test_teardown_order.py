"""The order ``down`` removes containers in (envd/run/teardown.py)."""

from __future__ import annotations

from envd.engine.fake import FakeEngine
from envd.run.teardown import remove_all
from envd.values.types import ObservedContainer


class RefusesOwnerFirst(FakeEngine):
    """A FakeEngine refusing, like Podman, to remove ``owner`` while ``joined`` exists."""

    def __init__(self) -> None:
        super().__init__()
        self.removed: list[str] = []

    def stop_container(self, container_id: str, timeout: int | None = None) -> None:
        return None

    def remove_container(self, container_id: str, volumes: bool = False) -> None:
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
