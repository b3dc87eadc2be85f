"""What the user pointed envd at: a value shared by prepare and the desired cache."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """Where the user pointed envd: project dir, file, environment, profiles."""

    project_dir: str | None = None
    file: str | None = None
    environment: str | None = None
    profiles: frozenset[str] = frozenset()
    swarm: bool = False  # deploying to a Swarm: replicas may share a published port
