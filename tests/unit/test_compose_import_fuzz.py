"""Fuzzing ``envd import``: mutated corpus files and raw text never escape as anything but SpecError.

Each example takes a valid Compose file from tests/fixtures/compose, applies a
few mutations (keys dropped or renamed, values replaced by other kinds, values
nested in lists and mappings, strings with ``$``, ``${`` and unicode) and
imports it. The importer must either write TOML that parses, or raise one
SpecError that renders as one line. Under ``CI`` the examples are
derandomized, so a run is reproducible; ``ENVD_FUZZ_EXAMPLES`` sets how many.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envd.interop.compose_import import import_compose
from envd.values.errors import SpecError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CORPUS = sorted((Path(__file__).parent.parent / "fixtures" / "compose").glob("*.yml"))
DOCS: list[Any] = [yaml.safe_load(p.read_text()) for p in CORPUS]
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
EXAMPLES = int(os.environ.get("ENVD_FUZZ_EXAMPLES", "600"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Strings a Compose file holds, and the ones that break naive code.
WORDS = [
    *("", "$", "${", "${X", "${X:-${Y}}", "$$", "a=b", "80:80", "./a:/a:rw", "rw", "0440"),
    *("tcp", "sync", "always", "CMD", "NONE", "true", "-1", "1-2", "é", "名前", "\u202e"),
]
TEXT = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=12),
    st.text(alphabet="${}:=/.-_aZ09 \t\\\"'", max_size=12),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _containers(node: Any, out: list[Any]) -> list[Any]:
    """Every list and mapping in ``node``, ``node`` first."""
    if isinstance(node, (dict, list)):
        out.append(node)
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            _containers(child, out)
    return out


@st.composite
def mutated_docs(draw: st.DrawFn) -> Any:
    import copy

    doc = copy.deepcopy(draw(st.sampled_from(DOCS)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        spots = _containers(doc, [])
        if not spots:
            return draw(VALUES)
        spot = draw(st.sampled_from(spots))
        if not spot:
            continue
        keys = list(spot) if isinstance(spot, dict) else list(range(len(spot)))
        key = draw(st.sampled_from(keys))
        how = draw(st.sampled_from(["drop", "replace", "wrap-list", "wrap-map", "rename"]))
        if how == "drop":
            del spot[key]
        elif how == "replace":
            spot[key] = draw(VALUES)
        elif how == "wrap-list":
            spot[key] = [spot[key]]
        elif how == "wrap-map":
            spot[key] = {draw(TEXT): spot[key]}
        elif isinstance(spot, dict):
            spot[draw(TEXT)] = spot.pop(key)
    return doc


def _dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=DUMPER, allow_unicode=True, sort_keys=False)


def _check(text: str) -> None:
    """Import ``text``: TOML that parses and one-line notes, or one one-line SpecError."""
    try:
        result = import_compose(text, source="compose.yml")
    except (SpecError, UsageError) as exc:
        message = str(exc)
        assert message and "\n" not in message.strip(), message
        if isinstance(exc, SpecError):
            assert len(exc.problems) == 1
            assert exc.problems[0].render().startswith("compose.yml")
        return
    tomllib.loads(result.toml)
    for note in result.notes:
        assert "\n" not in note and note.isprintable(), note


def test_the_corpus_imports_cleanly() -> None:
    """Every corpus file, the fuzzer's seed, imports without an error."""
    assert CORPUS
    for doc in DOCS:
        tomllib.loads(import_compose(_dump(doc)).toml)


@FUZZ
@given(mutated_docs())
def test_mutated_compose_files_never_escape_as_internal_errors(doc: Any) -> None:
    """A corpus file mutated at random imports, or fails as one located SpecError."""
    _check(_dump(doc))


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 10))
@given(mutated_docs(), st.data())
def test_mutated_yaml_text_never_escapes_as_an_internal_error(
    doc: Any, data: st.DataObject
) -> None:
    """YAML text cut, spliced or sprinkled with YAML syntax imports, or fails as one SpecError."""
    text = _dump(doc)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(text)))
        junk = data.draw(
            st.one_of(
                st.sampled_from(["&a ", "*a", "<<: *a\n", "? ", "!!set ", "!!binary ", "{", "["]),
                st.sampled_from(['"\\ud800"', "- ", ": ", "\n  ", "\t", "~", "\x7f", "\ufeff"]),
                TEXT,
            )
        )
        cut = data.draw(st.integers(min_value=0, max_value=3))
        text = text[:at] + junk + text[at + cut :]
    _check(text)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_corpus_file_with_every_value_nulled_is_a_clean_result(path: Path) -> None:
    """Each corpus file with any one value set to null imports, or fails as one SpecError."""
    doc = yaml.safe_load(path.read_text())
    for spot in _containers(doc, []):
        keys = list(spot) if isinstance(spot, dict) else list(range(len(spot)))
        for key in keys:
            old = spot[key]
            for replacement in (None, True, 2**64, [old], {"k": old}, "${"):
                spot[key] = replacement
                _check(_dump(doc))
            spot[key] = old
