"""The test tree itself: pytest imports test files by basename (no packages), so two
test files with one name in different folders stop the whole run at collection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_name_is_unique_across_the_tree() -> None:
    """A second tests/*/test_x.py would make pytest refuse to collect anything (exit 2 in CI)."""
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
