"""Heal counts and flap marks, kept in ``.envd/heal.json`` across daemon restarts.

Written by temp file + rename (never through a link planted at the name),
mode 0600, read back only from a regular file of ours under a size cap. A
file that is missing, unreadable or malformed starts the records afresh: it
only ever holds counts and times, never anything a service's safety needs.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from envd.core.heal import HealRecord
from envd.inputs.safefile import read_regular, write_replacing

FORMAT = 1
MAX_BYTES = 1024 * 1024
MAX_TIMES = 1000  # per service: far above any sane heal.max


class HealStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._records: dict[str, HealRecord] = self._load()

    def get(self, service: str) -> HealRecord:
        with self._lock:
            return self._records.get(service, HealRecord())

    def all(self) -> dict[str, HealRecord]:
        with self._lock:
            return dict(self._records)

    def put(self, service: str, record: HealRecord) -> None:
        """Keep ``record`` and write the file when it changed."""
        with self._lock:
            if self._records.get(service, HealRecord()) == record:
                return
            self._records[service] = record
            data = {
                "format": FORMAT,
                "services": {n: _encode(r) for n, r in sorted(self._records.items())},
            }
            write_replacing(self.path, (json.dumps(data, indent=1) + "\n").encode(), 0o600)

    def _load(self) -> dict[str, HealRecord]:
        try:
            raw = read_regular(self.path, MAX_BYTES, follow=False, own=True)
            data = json.loads(raw.decode("utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}
        services = data.get("services")
        if not isinstance(services, dict):
            return {}
        out: dict[str, HealRecord] = {}
        for name, item in services.items():
            record = _decode(item)
            if isinstance(name, str) and record is not None:
                out[name] = record
        return out


def _encode(r: HealRecord) -> dict[str, Any]:
    return {
        "heals": list(r.heals[-MAX_TIMES:]),
        "total": r.total,
        "flapping": r.flapping,
        "flapping_since": r.flapping_since,
        "containers": list(r.containers[-MAX_TIMES:]),
    }


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _decode(item: object) -> HealRecord | None:
    if not isinstance(item, dict):
        return None
    heals, total = item.get("heals"), item.get("total")
    flapping, since, ids = item.get("flapping"), item.get("flapping_since"), item.get("containers")
    if not (isinstance(heals, list) and all(_number(t) for t in heals)):
        return None
    if not (isinstance(total, int) and not isinstance(total, bool) and total >= 0):
        return None
    if not isinstance(flapping, bool) or not (since is None or _number(since)):
        return None
    if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        return None
    return HealRecord(
        heals=tuple(float(t) for t in heals[-MAX_TIMES:]),
        total=total,
        flapping=flapping,
        flapping_since=float(since) if since is not None else None,
        containers=tuple(ids[-MAX_TIMES:]),
    )
