"""Durations as written in specs: parsing and canonical formatting."""

from __future__ import annotations

import pytest

from envd.spec.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("5s", 5.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1h2m3s", 3723.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("0s", 0.0),
        (" 2s ", 2.0),
        ("10", 10.0),
        ("2.5", 2.5),
        (3, 3.0),
        (1.25, 1.25),
        (0, 0.0),
    ],
)
def test_parse_duration_accepts_documented_forms(text: object, seconds: float) -> None:
    """Every documented duration spelling (and bare seconds, as in Compose) parses to seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("5x", "invalid duration"),
        ("s5", "invalid duration"),
        ("1m 30s", "invalid duration"),
        ("-5s", "invalid duration"),
        ("5sec", "invalid duration"),
        ("ms", "invalid duration"),
        (-1, "cannot be negative"),
        (True, "a duration is a string"),
        (None, "a duration is a string"),
        (["5s"], "a duration is a string"),
    ],
)
def test_parse_duration_rejects_garbage(value: object, fragment: str) -> None:
    """Malformed or negative durations raise ValueError with a hint of the valid forms."""
    with pytest.raises(ValueError, match=fragment):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (1.5, "1500ms"),
        (5, "5s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (3723, "1h2m3s"),
    ],
)
def test_format_duration_is_shortest_canonical(seconds: float, text: str) -> None:
    """Plans and exports print durations in one short canonical spelling."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, 0.001, 0.5, 2, 59, 61, 3599, 3601, 90061])
def test_format_then_parse_round_trips(seconds: float) -> None:
    """A formatted duration parses back to the same number of seconds."""
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
