"""Compose's ``expose`` entries as the engine's port keys; no pydantic, so the
pure core can expand them."""

from __future__ import annotations

import re

EXPOSE_PATTERN = r"^([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/(tcp|udp|sctp))?$"
_EXPOSE = re.compile(EXPOSE_PATTERN)
MAX_RANGE = 4096


def expose_ports(entry: str) -> list[str]:
    """``"8000-8002/udp"`` as the engine's keys: ``["8000/udp", "8001/udp", "8002/udp"]``."""
    m = _EXPOSE.match(entry)
    if m is None:
        raise ValueError(
            f"invalid expose entry {entry!r}: use PORT, PORT/PROTO or START-END[/PROTO]"
        )
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else start
    proto = m.group(3) or "tcp"
    if not 1 <= start <= end <= 65535:
        raise ValueError(f"invalid expose entry {entry!r}: ports run from 1 to 65535, low to high")
    if end - start >= MAX_RANGE:
        raise ValueError(f"expose range {entry!r} is too long (at most {MAX_RANGE} ports)")
    return [f"{port}/{proto}" for port in range(start, end + 1)]
