"""Refusing resource limits the engine would silently drop.

Some engines create a container without limits it was asked for and say so
only in their own log or in a create warning nobody reads: rootless Podman on
cgroups v1 drops CPU, memory, swap and pids limits and (through its Docker API,
seen with Podman 4.3) ulimits; Docker without a cgroup manager (rootless, no
systemd or cgroups v1) drops every cgroup limit; Docker on a kernel without
swap accounting drops the swap limit. A service that counts on a limit must
not run unbounded unnoticed, so such a spec is refused before anything is
created. The engine is asked (once, it caches the answer) only when some
service sets a limit: most specs set none, and every command would otherwise
pay a round trip.
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
    (``Engine.ignored_limits`` names the engine and what makes it apply them)."""
    limited = {
        name: found
        for name, svc in sorted(desired.services.items())
        if (found := resource_limits(svc.template.host))
    }
    if not limited:
        return
    support = engine.ignored_limits()
    dropped = {
        name: kept
        for name, fields in limited.items()
        if (kept := [f for f in fields if f in support.drops])
    }
    if not dropped:
        return
    first, fields = next(iter(dropped.items()))
    others = [repr(name) for name in sorted(dropped)[1:]]
    also = ""
    if others:
        also = (
            f" (so does service {others[0]})"
            if len(others) == 1
            else f" (so do services {_join(others)})"
        )
    raise UsageError(
        f"service {first!r} sets {_join(fields)}{also}, which {support.engine} silently"
        f" ignores: the containers would run without those limits; {support.remedy},"
        " or remove the limits from the spec"
    )
