"""Print the Compose fields the corpus (tests/fixtures/compose-corpus) uses, one per line.

    .venv/bin/python bench/corpus_fields.py            every field, with how many files use it
    .venv/bin/python bench/corpus_fields.py --missing  only those docs/compatibility.md lacks

docs/compatibility.md keeps one row per field; tests/unit/test_compatibility_doc.py
fails when a field of the corpus has no row.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.compose_corpus_fields import corpus_fields  # noqa: E402
from tests.unit.test_compatibility_doc import documented_fields  # noqa: E402


def main(argv: list[str]) -> int:
    fields = corpus_fields()
    if "--missing" in argv:
        have = documented_fields()
        fields = {k: v for k, v in fields.items() if k not in have}
    for field, users in fields.items():
        print(f"{field}\t{len(users)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
