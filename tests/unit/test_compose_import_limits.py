"""``envd import`` reads hostile YAML within limits: alias bombs, size, depth, keys, bytes and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.interop import compose_yaml
from envd.interop.compose_import import import_compose
from envd.values.errors import SpecError


def _bomb(levels: int = 9) -> str:
    lines = ["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append(f"services: {{x: {{image: x, command: *{chr(ord('a') + levels - 1)}}}}}")
    return "\n".join(lines) + "\n"


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        import_compose(text, source="compose.yml")
    [problem] = info.value.problems
    return problem.render()


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    """A ~500-byte billion-laughs file is a located SpecError, not exhausted memory."""
    text = _bomb()
    assert len(text) < 600
    message = _error(text)
    assert message.startswith("compose.yml:")
    assert f"more than {compose_yaml.MAX_NODES} nodes" in message


def test_an_alias_to_its_own_anchor_is_refused() -> None:
    """A self-referencing alias (a cyclic document) is refused, not walked forever."""
    assert "refers to its own anchor" in _error("x-a: &a [*a]\nservices: {}\n")


def test_anchors_used_a_few_times_still_import() -> None:
    """Ordinary anchors and merge keys stay within the limits and import as before."""
    text = (
        "x-base: &base {image: x, environment: {A: '1'}}\n"
        "services:\n  a: {<<: *base}\n  b:\n    <<: *base\n    image: y\n"
    )
    toml = import_compose(text).toml
    assert 'image = "x"' in toml and 'image = "y"' in toml


def test_deep_nesting_is_refused_with_its_line() -> None:
    """Nesting deeper than the limit is a located SpecError, not a RecursionError."""
    text = "services:\n  a:\n    image: x\n    labels: " + "[" * 200 + "]" * 200 + "\n"
    message = _error(text)
    assert message.startswith("compose.yml:4:")
    assert f"deeper than {compose_yaml.MAX_DEPTH}" in message


def test_a_repeated_key_is_refused() -> None:
    """A key given twice (the reader sees the first, YAML keeps the last) is refused with its line."""
    message = _error("services:\n  a:\n    image: safe\n    image: evil\n")
    assert message.startswith("compose.yml:4:5:") and "'image' is repeated" in message


@pytest.mark.parametrize("key", ["~", "[a]", "{a: 1}"])
def test_a_key_that_is_not_a_string_is_refused(key: str) -> None:
    """A null, list or mapping key is a located SpecError."""
    message = _error(f"services:\n  a:\n    image: x\n    labels: {{? {key} : v}}\n")
    assert message.startswith("compose.yml:4:") and "key must be a string" in message


def test_keys_are_read_as_written() -> None:
    """`NO:` and `1:` are the names NO and 1 (as Compose reads them), not False and 1."""
    toml = import_compose("services:\n  a:\n    image: x\n    environment: {NO: a, 1: b}\n").toml
    assert 'NO = "a"' in toml and '1 = "b"' in toml


def test_a_date_like_value_stays_the_text_written() -> None:
    """A value that YAML 1.1 reads as a date is kept as the string written."""
    toml = import_compose("services:\n  a:\n    image: 2024-01-02\n").toml
    assert 'image = "2024-01-02"' in toml


def test_a_number_too_large_for_python_is_refused() -> None:
    """An integer of thousands of digits is a located SpecError, not an internal ValueError."""
    message = _error("services:\n  a:\n    image: x\n    scale: " + "9" * 5000 + "\n")
    assert message.startswith("compose.yml:4:12:") and "too large" in message


def test_a_file_over_the_size_cap_is_refused() -> None:
    """A Compose file over 4 MiB is refused before it is parsed."""
    text = "services: {}\n#" + "x" * compose_yaml.MAX_BYTES + "\n"
    assert "larger than 4 MiB" in _error(text)


def test_non_utf8_names_the_byte_offset() -> None:
    """Latin-1 bytes are a SpecError naming the file, line, column and byte offset."""
    with pytest.raises(SpecError) as info:
        compose_yaml.decode(b"services:\n  a:\n    image: caf\xe9\n", "compose.yml")
    assert info.value.problems[0].render() == (
        "compose.yml:3:15: not valid UTF-8: byte 29 (0xe9); save the file as UTF-8"
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (_bomb(), "more than"),
        (b"services:\n  a: {image: caf\xe9}\n", "byte 26"),
        ("services: " + "[" * 200 + "]" * 200 + "\n", "deeper than"),
        ("services: " + "[" * 3000 + "]" * 3000 + "\n", "nesting depth"),
    ],
    ids=["alias-bomb", "latin-1", "deep", "very-deep"],
)
def test_the_import_command_exits_2_with_one_sentence(
    tmp_path: Path, content: str | bytes, needle: str
) -> None:
    """`envd import` on hostile YAML exits 2 with one line naming the file, never a traceback."""
    from tests.helpers import run_envd

    path = tmp_path / "compose.yml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    proc = run_envd(["import", "compose.yml"], cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "compose.yml" in line and needle in line and "Traceback" not in proc.stderr


def test_the_import_command_refuses_a_file_that_is_not_regular(tmp_path: Path) -> None:
    """`envd import` on a FIFO exits 2 at once instead of hanging on it."""
    import os

    from tests.helpers import run_envd

    os.mkfifo(tmp_path / "compose.yml")
    proc = run_envd(["import", "compose.yml"], cwd=tmp_path, timeout=30)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


def test_a_control_character_is_a_located_spec_error() -> None:
    """A character YAML forbids (here U+001F) is exit 2 with its line and column."""
    message = _error("services:\n  a:\n    image: é\x1f\n")
    assert message.startswith("compose.yml:3:13: invalid YAML: character #x001f")


def test_an_escaped_lone_surrogate_is_refused() -> None:
    """A "\\ud800" escape (no character TOML or UTF-8 can hold) is refused where it is written."""
    message = _error('services:\n  a:\n    image: "\\ud800"\n')
    assert message.startswith("compose.yml:3:")
    assert "surrogate" in message or "invalid Unicode" in message
