"""The plan's values: what ``make_plan`` returns and ``apply`` executes.

Kept apart from the planner's decisions (``envd.core.plan``), which
re-exports them, so neither module outgrows what one reader can hold.
"""

from __future__ import annotations

from dataclasses import field
from functools import cached_property
from typing import Literal, get_args

from envd.values.record import value
from envd.values.types import ContainerCreate

ActionKind = Literal[
    "pull",
    "build",
    "create-network",
    "recreate-network",
    "create-volume",
    "remove",
    "remove-network",
    "create",
    "recreate",
    "start",
    "pending",
    "ok",
]

# supervisor: the reasons of the "ok" actions that leave a finished one-shot alone.
ONESHOT_DONE = "completed (exited 0)"
ONESHOT_FAILED = "failed (exited with code"


def aside_name(name: str, container_id: str) -> str:
    """What a recreated container is renamed to once stopped, so its successor can take
    ``name`` before it is removed (Compose's ``<id12>_<name>``): never a name envd gives."""
    return f"{container_id[:12]}_{name}"


# Every action changes something except the two that only report.
MUTATING: frozenset[str] = frozenset(get_args(ActionKind)) - {"pending", "ok"}


@value
class Action:
    kind: ActionKind
    resource: str  # "service api #1", "network shop_default", "image postgres:16"
    reason: str
    service: str = ""
    replica: int = 0
    container_id: str = ""
    container: ContainerCreate | None = field(default=None, repr=False)
    name: str = ""  # network/volume/image name
    stop_timeout: int | None = 10  # None: the grace period the container was created with

    @property
    def mutating(self) -> bool:
        return self.kind in MUTATING

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "action": self.kind,
            "resource": self.resource,
            "reason": self.reason,
        }
        if self.service:
            out["service"] = self.service
        if self.replica:
            out["replica"] = self.replica
        if self.container_id:
            out["container_id"] = self.container_id[:12]
        if self.name:
            out["name"] = self.name
        return out


@value
class PlanProblem:
    """Something no action can fix (an image that may not be pulled), per service."""

    service: str
    message: str

    def __str__(self) -> str:
        return f"service {self.service!r}: {self.message}"


@value
class Plan:
    project: str
    actions: tuple[Action, ...]
    problems: tuple[PlanProblem, ...] = ()

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.mutating)

    @property
    def image_actions(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind in ("pull", "build"))

    def for_service(self, service: str) -> tuple[Action, ...]:
        return self._by_service.get(service, ())

    @cached_property
    def _by_service(self) -> dict[str, tuple[Action, ...]]:
        # Indexed once: asked of every service, a scan each would be O(services²).
        grouped: dict[str, list[Action]] = {}
        for a in self.actions:
            grouped.setdefault(a.service, []).append(a)
        return {name: tuple(actions) for name, actions in grouped.items()}

    def to_json(self) -> dict[str, object]:
        return {
            "project": self.project,
            "changes": len(self.changes),
            "actions": [a.to_json() for a in self.actions],
            "problems": [str(p) for p in self.problems],
        }
