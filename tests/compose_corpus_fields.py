"""The Compose fields the real-world corpus uses, as generic paths (``services.*.healthcheck.test``).

docs/compatibility.md has one row per path; ``bench/corpus_fields.py`` prints
the list and tests/unit/test_compatibility_doc.py checks the doc covers it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from tests.compose_v2_corpus import compose_file, corpus_entries

# Top-level sections whose keys are names the user chose.
NAMED_SECTIONS = ("services", "volumes", "networks", "secrets", "configs")
# Maps whose keys are the user's (variables, labels, service or network names…):
# the path stops at them with ``.*``, so the list names fields, not values.
FREE_KEYS = {
    "environment",
    "labels",
    "args",
    "options",
    "driver_opts",
    "sysctls",
    "extra_hosts",
    "depends_on",
    "networks",
    "ulimits",
    "annotations",
    "additional_contexts",
}


def _walk(value: Any, path: str) -> Iterator[str]:
    yield path
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield from _walk(item, f"{path}[]")
        return
    if not isinstance(value, dict):
        return
    last = path.rsplit(".", 1)[-1]
    if last in FREE_KEYS:
        for item in value.values():
            yield from _walk(item, f"{path}.*")
        return
    for key, item in value.items():
        key = str(key)
        if key.startswith("x-"):
            yield f"{path}.x-*"
            continue
        yield from _walk(item, f"{path}.{key}")


def file_fields(doc: dict[str, Any]) -> set[str]:
    """The generic field paths one parsed Compose file uses."""
    out: set[str] = set()
    for key, value in doc.items():
        key = str(key)
        if key.startswith("x-"):
            out.add("x-*")
        elif key in NAMED_SECTIONS and isinstance(value, dict):
            out.add(key)
            for body in value.values():
                if isinstance(body, dict):
                    for field, item in body.items():
                        name = "x-*" if str(field).startswith("x-") else str(field)
                        out.update(_walk(item, f"{key}.*.{name}"))
        else:
            out.update(_walk(value, key))
    return out


def corpus_fields() -> dict[str, list[str]]:
    """Each field path the corpus uses, with the entries that use it."""
    users: dict[str, list[str]] = {}
    for entry in corpus_entries():
        doc = yaml.safe_load(compose_file(entry).read_text())
        for field in file_fields(doc):
            users.setdefault(field, []).append(entry.name)
    return dict(sorted(users.items()))
