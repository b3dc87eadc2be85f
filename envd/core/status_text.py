"""The STATE column of ``envd status``, with no import: the lean entry renders it too."""

from __future__ import annotations

# typing (and collections.abc) cost milliseconds to import; the lean entry renders this.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


def state_text(entry: Mapping[str, Any], when: str = "") -> str:
    """The STATE column: ``completed (exit 0) at T``, ``failed (exit 3)``, ``healthy (2 heals)``."""
    state = str(entry.get("state") or "-")
    if state in ("completed", "failed") and entry.get("exit_code") is not None:
        state += f" (exit {entry['exit_code']})"
        if when:
            state += f" at {when}"
    heals = (entry.get("heal") or {}).get("heals") or 0
    if heals:
        state += f" ({heals} heal{'s' if heals != 1 else ''})"
    return state
