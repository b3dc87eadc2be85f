"""docs/compatibility.md names every Compose field the real-world corpus uses."""

from __future__ import annotations

import re
from pathlib import Path

from tests.compose_corpus_fields import corpus_fields, file_fields

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
_ROW = re.compile(r"^\| `([^`]+)` \|")


def documented_fields() -> set[str]:
    """The field of each table row of docs/compatibility.md."""
    return {m.group(1) for line in DOC.read_text().splitlines() if (m := _ROW.match(line))}


def test_every_corpus_field_has_a_row() -> None:
    """A field used by a corpus file but missing from docs/compatibility.md fails (bench/corpus_fields.py --missing lists them)."""
    missing = {f: users for f, users in corpus_fields().items() if f not in documented_fields()}
    assert not missing, f"docs/compatibility.md has no row for: {missing}"


def test_fields_are_generic_paths() -> None:
    """Names the user chose (services, variables, network names) become `*`, so the doc lists fields, not values."""
    doc = {
        "version": "3",
        "x-common": {"a": 1},
        "services": {
            "web": {
                "image": "nginx",
                "environment": {"FOO": "1"},
                "depends_on": {"db": {"condition": "service_healthy"}},
                "volumes": [{"type": "bind", "source": ".", "target": "/app"}, "data:/d"],
                "x-meta": 1,
            }
        },
        "networks": {"front": {"ipam": {"config": [{"subnet": "10.0.0.0/24"}]}}},
    }
    assert file_fields(doc) == {
        "version",
        "x-*",
        "services",
        "services.*.image",
        "services.*.environment",
        "services.*.environment.*",
        "services.*.depends_on",
        "services.*.depends_on.*",
        "services.*.depends_on.*.condition",
        "services.*.volumes",
        "services.*.volumes[]",
        "services.*.volumes[].type",
        "services.*.volumes[].source",
        "services.*.volumes[].target",
        "services.*.x-*",
        "networks",
        "networks.*.ipam",
        "networks.*.ipam.config",
        "networks.*.ipam.config[]",
        "networks.*.ipam.config[].subnet",
    }
