"""The rules of the corpus comparison with Compose v2 (tests/compose_v2_corpus.py)."""

from __future__ import annotations

from tests.compose_v2_corpus import (
    KNOWN_GAPS,
    corpus_entries,
    differences,
    known_gap,
    leaves,
    normalize,
    pattern_matches,
)


def test_normalize_drops_only_compose_defaults() -> None:
    """`init: false`, `restart: no`, default healthcheck timings and default drivers are representation; other values stay."""
    config = {
        "name": "corpus",
        "x-anchor": {"a": 1},
        "services": {
            "web": {
                "init": False,
                "restart": "no",
                "healthcheck": {"test": ["CMD", "true"], "interval": "30s", "retries": 5},
            },
            "db": {"init": True, "restart": "always"},
        },
        "networks": {"default": {"driver": "bridge"}, "ov": {"driver": "overlay"}},
        "volumes": {"data": {"driver": "local"}},
    }
    assert normalize(config) == {
        "services": {
            "web": {"healthcheck": {"test": ["CMD", "true"], "retries": 5}},
            "db": {"init": True, "restart": "always"},
        },
        "networks": {"default": {}, "ov": {"driver": "overlay"}},
        "volumes": {"data": {}},
    }


def test_differences_name_each_leaf() -> None:
    """A changed, missing or added leaf is reported by its dotted path with both values."""
    a = {"services": {"web": {"ports": [{"target": 80}], "user": "1"}}}
    b = {"services": {"web": {"ports": [{"target": 81}], "tty": True}}}
    assert differences(a, b) == [
        ("services.web.ports[0].target", 80, 81),
        ("services.web.tty", "<absent>", True),
        ("services.web.user", "1", "<absent>"),
    ]
    assert leaves({"a": [], "b": {}}) == {"a": [], "b": {}}


def test_patterns_treat_only_star_as_wildcard() -> None:
    """`[` and `]` in a gap pattern are literal (fnmatch would read them as a character class)."""
    assert pattern_matches(
        "services.*.volumes[*].bind.selinux", "services.es.volumes[1].bind.selinux"
    )
    assert not pattern_matches("services.*.tty", "services.web.stdin_open")
    assert pattern_matches("services.*.expose*", "services.db.expose[0]")


def test_known_gaps_name_corpus_entries_with_a_reason() -> None:
    """Every KNOWN_GAPS entry names an existing corpus file and says why (pending work or unsupported)."""
    names = {e.name for e in corpus_entries()}
    assert set(KNOWN_GAPS) <= names
    for entry, gaps in KNOWN_GAPS.items():
        for pattern, reason in gaps.items():
            assert reason.startswith(("pending: ", "unsupported: ")), (entry, pattern)
            if pattern == "!validate":
                assert "; fails with: " in reason, entry
    assert known_gap("opentelemetry-demo", "services.x.build.cache_from[0]") is not None
    assert known_gap("opentelemetry-demo", "services.x.image") is None


def test_corpus_entries_carry_source_and_licence() -> None:
    """Each corpus entry keeps its SOURCE (repo, path, commit) and LICENSE text, and there are at least 30."""
    entries = corpus_entries()
    assert len(entries) >= 30
    for entry in entries:
        source = (entry / "SOURCE").read_text()
        assert "repo: https://github.com/" in source and "commit: " in source, entry.name
        assert (entry / "LICENSE").read_text().strip(), entry.name
