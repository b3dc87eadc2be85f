"""The real-world corpus through ``import → validate → export --format compose``, checked by Compose v2.

For each file, Compose v2's ``config --format json`` of the original must equal,
field by field, Compose v2's view of envd's export (``tests/compose_v2_corpus.py``
says what counts as representation and lists the known gaps in one place).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.interop.compose_export import to_compose
from envd.interop.compose_import import import_compose, import_files
from envd.interop.render import render_yaml
from envd.spec.load import load
from envd.values.errors import SpecError
from tests.compose_corpus import own_home
from tests.compose_v2_corpus import (
    COMPOSE_V2,
    KNOWN_GAPS,
    compose_v2_config,
    corpus_entries,
    differences,
    known_gap,
    pattern_matches,
    prepare,
    validate_failure,
)

ENTRIES = corpus_entries()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own, so binds like ~/data resolve inside the test's directory."""
    return own_home(tmp_path, monkeypatch)


def test_compose_v2_is_installed() -> None:
    """The comparison needs Compose v2 at its fixed path (scripts/install-compose-v2.sh puts it there)."""
    assert COMPOSE_V2.is_file(), f"{COMPOSE_V2} is missing: run scripts/install-compose-v2.sh"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_export_resolves_like_the_original(entry: Path, tmp_path: Path, home: Path) -> None:
    """Compose v2 resolves envd's export of each corpus file to the same configuration as the original."""
    gaps = KNOWN_GAPS.get(entry.name, {})
    project = tmp_path / "project"
    path = prepare(entry, project)
    original = compose_v2_config(project, path.name)

    try:
        # As `envd import FILE` in the project: its .env speaks, the host's variables do not.
        result = import_files([str(path)], environ={}, cwd=project)
        (project / "envd.toml").write_text(result.toml)
        loaded = load(project, environ={})
    except SpecError as exc:
        expected = validate_failure(entry.name)
        assert expected is not None, f"{entry.name}: import → validate failed: {exc}"
        assert expected in str(exc), f"{entry.name}: failed otherwise than listed: {exc}"
        return
    assert "!validate" not in gaps, (
        f"{entry.name} now validates: remove its '!validate' entry from KNOWN_GAPS"
    )
    (project / "envd-export.yml").write_text(render_yaml(to_compose(loaded)))
    exported = compose_v2_config(project, "envd-export.yml")

    unexpected = []
    seen: set[str] = set()
    for field, want, got in differences(original, exported):
        reason = known_gap(entry.name, field)
        if reason is None:
            unexpected.append(f"{entry.name}: {field}: original {want!r}, envd's export {got!r}")
        else:
            seen.update(p for p in gaps if pattern_matches(p, field))
    assert not unexpected, "\n".join(unexpected)
    stale = sorted(set(gaps) - seen)
    assert not stale, f"{entry.name}: KNOWN_GAPS lists {stale}, which no longer differ: remove them"


CONFIGS = """\
services:
  web:
    image: nginx
    configs:
      - site
      - source: motd
        target: /etc/motd
        uid: "101"
        gid: "101"
        mode: 0440
      - banner
configs:
  site:
    file: ./site.conf
  motd:
    content: |
      price: $$5 for ${WHO:-everyone}
  banner:
    environment: BANNER
"""


def test_configs_resolve_like_the_original(tmp_path: Path, home: Path) -> None:
    """Compose v2 resolves envd's export of file, inline and environment configs (short and long references) as it does the original."""
    (tmp_path / "site.conf").write_text("server {}\n")
    (tmp_path / "docker-compose.yml").write_text(CONFIGS)
    original = compose_v2_config(tmp_path, "docker-compose.yml")
    (tmp_path / "envd.toml").write_text(import_compose(CONFIGS).toml)
    loaded = load(tmp_path, environ={})
    (tmp_path / "envd-export.yml").write_text(render_yaml(to_compose(loaded)))
    exported = compose_v2_config(tmp_path, "envd-export.yml")
    # `config` writes a literal $ back as $$ (its output is a Compose file again).
    assert original["configs"]["motd"]["content"] == "price: $$5 for everyone\n"
    assert differences(original, exported) == []
