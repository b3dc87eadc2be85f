"""Durations as written in specs: ``"500ms"``, ``"5s"``, ``"1m30s"``, ``"1h"``."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(us|µs|ms|s|m|h)")
_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
PATTERN = r"^((\d+(\.\d+)?)(us|µs|ms|s|m|h))+$"


def parse_duration(value: object) -> float:
    """Seconds in a duration string; bare numbers are seconds (as in Compose)."""
    if isinstance(value, bool):
        raise ValueError("a duration is a string like '500ms', '5s' or '1m30s'")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("a duration must be a finite number of seconds")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a string like '500ms', '5s' or '1m30s'")
    text = value.strip()
    if not text:
        raise ValueError("a duration cannot be empty")
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        if text.replace(".", "", 1).isdigit():
            return float(text)
        raise ValueError(f"invalid duration {value!r}: use forms like '500ms', '5s' or '1m30s'")
    return total


def format_duration(seconds: float) -> str:
    """The shortest canonical spelling, used in plans and exports."""
    if seconds == 0:
        return "0s"
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    out = ""
    if h:
        out += f"{h}h"
    if m:
        out += f"{m}m"
    if sec:
        out += f"{sec}s"
    return out
