"""Canonical JSON and the hashes envd stamps on what it creates.

One encoding for every hash label (containers, networks, volumes, swarm
services): compact, key-sorted JSON, sha256 in hex. Changing anything here
changes every label, and an upgraded envd would recreate everything: the
tests pin known hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from typing import Any

# default=list: tuples and other sequences encode as JSON arrays.
ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=list)


def plain(value: Any) -> dict[str, Any]:
    """``asdict`` for flat dataclasses, without its recursive deep copy (hot in planning)."""
    return {f.name: getattr(value, f.name) for f in fields(value)}


def at_default(f: Field[Any], value: Any) -> bool:
    """Whether ``value`` is dataclass field ``f``'s default, as it is or in its
    ``plain_deep`` form: a field added after hashes were given out joins a hash
    only when it is not (so an upgrade recreates nothing)."""
    if f.default is not MISSING:
        default: Any = f.default
    elif f.default_factory is not MISSING:
        default = f.default_factory()
    else:
        return False
    return bool(value == default or value == plain_deep(default))


def plain_deep(value: Any) -> Any:
    """Nested dataclasses, mappings and sequences as dicts and lists, ready to encode."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: plain_deep(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain_deep(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [plain_deep(v) for v in value]
    return value


def digest(value: Any) -> str:
    """sha256 of ``value`` as compact, key-sorted JSON."""
    return hashlib.sha256(ENCODER.encode(value).encode()).hexdigest()


def hash_fields(parts: Mapping[str, Any]) -> tuple[str, str]:
    """(``digest(parts)``, per-field short hashes as ``field=abcd1234,...``).

    Each field is encoded once and the whole document assembled from those
    encodings (byte for byte what ``digest`` encodes): field names are plain
    identifiers, so quoting them is their JSON encoding.
    """
    blobs = {k: ENCODER.encode(v) for k, v in parts.items()}
    names = sorted(blobs)
    short = ",".join(f"{k}={hashlib.sha256(blobs[k].encode()).hexdigest()[:8]}" for k in names)
    document = "{" + ",".join(f'"{k}":{blobs[k]}' for k in names) + "}"
    return hashlib.sha256(document.encode()).hexdigest(), short


def changed_fields(old_fields: str, new_fields: str) -> list[str]:
    """Which fields differ between two field-hashes labels (``field=abcd1234,...``).

    An empty old label (made by an envd that wrote none, or by hand) cannot
    tell which fields changed: no field is named rather than all of them.
    """

    def parse(text: str) -> dict[str, str]:
        return dict(p.split("=", 1) for p in text.split(",") if "=" in p)

    old, new = parse(old_fields), parse(new_fields)
    if not old:
        return []
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
