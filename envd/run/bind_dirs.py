"""Bind sources that do not exist yet: listed by ``plan``, created by ``up``.

Compose creates a missing host directory for a bind mount (the short syntax,
and the long one unless ``bind.create_host_path = false``, which the loader
refuses instead). envd does the same at apply time, never while validating or
planning, and as the user running envd rather than as the engine's root. The
consent rules for binds outside the project were checked before apply runs.
"""

from __future__ import annotations

import os

from envd.core.desired import DesiredProject
from envd.values.errors import EnvironmentFailed, ServiceFailure
from envd.values.events import Emit, Event, discard


def missing_bind_dirs(desired: DesiredProject) -> list[str]:
    """The bind sources ``up`` would create (they do not exist now)."""
    return [path for path in desired.bind_dirs if not os.path.lexists(path)]


def bind_users(desired: DesiredProject, path: str) -> list[str]:
    return sorted(
        s.name
        for s in desired.services.values()
        if any(m.type == "bind" and m.source == path for m in s.template.mounts)
    )


def create_bind_dirs(
    desired: DesiredProject, emit: Emit = discard, service: str | None = None
) -> list[str]:
    """Create each missing bind source (of ``service`` only, when given) as a
    directory; the ones created."""
    created: list[str] = []
    for path in missing_bind_dirs(desired):
        users = bind_users(desired, path)
        if service is not None and service not in users:
            continue
        service = users[0] if users else "-"
        try:
            os.makedirs(path, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise EnvironmentFailed(
                [
                    ServiceFailure(
                        service,
                        f"cannot create bind source directory {path}: {exc.strerror or exc}",
                    )
                ]
            ) from None
        created.append(path)
        emit(
            Event(
                "create-dir",
                f"directory {path}",
                "bind source did not exist; created (as Compose does)",
                "done",
                service,
            )
        )
    return created
