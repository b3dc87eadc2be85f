"""Fuzzing the merge of several Compose files: two mutated corpus files never escape as internal errors.

The second file overrides the first with values of any kind (a mapping where
the first has a list, ``!reset`` and ``!override`` tags, nulls), as a hostile
or broken override file would; ``envd import -f a -f b`` must write TOML that
parses or fail as one located SpecError.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from envd.interop.compose_import import import_files
from envd.values.errors import SpecError, UsageError
from tests.unit.test_compose_import_fuzz import EXAMPLES, FUZZ, _dump, mutated_docs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

TAGS = ["", "", "!reset ", "!override "]


def _tagged(text: str, data: st.DataObject) -> str:
    """``text`` with a merge tag put before some values."""
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(0, 3))):
        if not lines:
            break
        at = data.draw(st.integers(0, len(lines) - 1))
        key, sep, value = lines[at].partition(": ")
        if sep and value:
            lines[at] = f"{key}: {data.draw(st.sampled_from(TAGS))}{value}"
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 10))
@given(mutated_docs(), mutated_docs(), st.data())
def test_merging_mutated_files_never_escapes_as_an_internal_error(
    first: Any, second: Any, data: st.DataObject
) -> None:
    """Two mutated corpus files merged with -f a -f b: TOML that parses, or one SpecError line."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "a.yml").write_text(_dump(first))
        (base / "b.yml").write_text(_tagged(_dump(second), data))
        try:
            result = import_files(["a.yml", "b.yml"], environ={}, cwd=base)
        except (SpecError, UsageError) as exc:
            message = str(exc)
            assert message and "\n" not in message.strip(), message
            return
        tomllib.loads(result.toml)
        for note in result.notes:
            assert "\n" not in note and note.isprintable(), note
