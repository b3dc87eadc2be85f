"""Refusing resource limits the engine would silently drop.

Rootless Podman on cgroups v1 creates a container without the CPU, memory,
swap and pids limits it was asked for and says so only in its own log; its
Docker API drops the container's ulimits there too (seen with Podman 4.3). A
service that counts on a limit must not run unbounded unnoticed, so such a
spec is refused before anything is created. The engine is asked (once, it
caches the answer) only when some service sets a limit: most specs set none,
and every command would otherwise pay a round trip.
"""

from __future__ import annotations

from envd.core.desired import DesiredProject
from envd.core.host_settings import resource_limits
from envd.engine.base import Engine
from envd.values.errors import UsageError


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def refuse_ignored_limits(engine: Engine, desired: DesiredProject) -> None:
    """Raise ``UsageError`` (exit 2) when a service sets a resource limit ``engine`` drops
    (``Engine.ignored_limits`` names the engine then: "rootless Podman on cgroups v1")."""
    limited = {
        name: found
        for name, svc in sorted(desired.services.items())
        if (found := resource_limits(svc.template.host))
    }
    if not limited:
        return
    why = engine.ignored_limits()
    if not why:
        return
    first, fields = next(iter(limited.items()))
    others = [repr(name) for name in sorted(limited)[1:]]
    also = ""
    if others:
        also = (
            f" (so does service {others[0]})"
            if len(others) == 1
            else f" (so do services {_join(others)})"
        )
    raise UsageError(
        f"service {first!r} sets {_join(fields)}{also}, which {why} silently ignores:"
        " the containers would run without those limits; use rootful Podman or a host"
        " with cgroups v2, or remove the limits from the spec"
    )
