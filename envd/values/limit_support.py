"""Which resource limits an engine applies: what ``Engine.ignored_limits`` answers."""

from __future__ import annotations

from envd.values.record import value

# The limits a spec can set that an engine may drop, under their spec names.
CGROUP_LIMITS = ("cpus", "mem_limit", "mem_reservation", "memswap_limit", "pids_limit")
ALL_LIMITS = (*CGROUP_LIMITS, "ulimits")


@value
class LimitSupport:
    """``drops``: the limits (spec names) the engine would create a container without,
    telling only its own log or a create warning nobody reads; ``engine`` names it
    ("rootless Podman on cgroups v1"); ``remedy`` says what makes it apply them."""

    drops: frozenset[str] = frozenset()
    engine: str = ""
    remedy: str = ""


APPLIES_ALL = LimitSupport()
