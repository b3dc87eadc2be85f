"""Progress rendering: plain lines, JSON lines and the quiet renderer, written to string buffers."""

from __future__ import annotations

import io
import json

import pytest

from envd.cli.progress import (
    JsonProgress,
    LazyTtyProgress,
    PlainProgress,
    QuietProgress,
    make_progress,
)
from envd.values.events import Event, Phase

# (kind, phase, message, the plain line for resource "service web #1")
PLAIN = [
    ("create", "working", "", "… service web #1: Creating"),
    ("create", "done", "", "✔ service web #1: Started"),
    ("recreate", "working", "env changed", "… service web #1: Recreating (env changed)"),
    ("recreate", "done", "env changed", "✔ service web #1: Recreated"),
    ("pull", "error", "registry unreachable", "✘ service web #1: Pulling: registry unreachable"),
    ("ready", "info", "healthy", "  service web #1: Ready (healthy)"),
    ("waiting", "waiting", "for db", "· service web #1: Waiting (for db)"),
    ("healthy", "done", "", "✔ service web #1: Healthy"),  # unknown kinds are capitalised
    ("pull", "working", "image not present", "… service web #1: Pulling"),
]


@pytest.mark.parametrize(("kind", "phase", "message", "line"), PLAIN)
def test_plain_progress_writes_one_line_per_event(
    kind: str, phase: Phase, message: str, line: str
) -> None:
    """Each meaningful event is one line: a phase symbol, the resource and a verb."""
    out = io.StringIO()
    PlainProgress(out)(Event(kind, "service web #1", message, phase))
    assert out.getvalue() == line + "\n"


def test_plain_progress_drops_streaming_build_and_pull_output() -> None:
    """Layer-by-layer pull and build output is too chatty for logs; the first line is kept."""
    out = io.StringIO()
    progress = PlainProgress(out)
    progress(Event("build", "image web", "build context 3 MB", "working"))
    progress(Event("build", "image web", "Step 2/9 : RUN make", "working"))
    progress(Event("pull", "image db", "a1b2: Downloading 40%", "working"))
    progress(Event("build", "image web", "", "done"))
    progress.close()
    assert out.getvalue().splitlines() == ["… image web: Building", "✔ image web: Built"]


def test_json_progress_writes_one_event_object_per_line() -> None:
    """--json: each event is one JSON object under "event", empty fields left out."""
    out = io.StringIO()
    progress = JsonProgress(out)
    progress(Event("create", "service web #1", "", "done", service="web", time=12.5))
    progress(Event("pull", "image db", "registry unreachable", "error", time=13.0))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {
            "event": {
                "kind": "create",
                "resource": "service web #1",
                "phase": "done",
                "service": "web",
                "time": 12.5,
            }
        },
        {
            "event": {
                "kind": "pull",
                "resource": "image db",
                "message": "registry unreachable",
                "phase": "error",
                "time": 13.0,
            }
        },
    ]


def test_quiet_progress_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """-q: events are swallowed."""
    progress = QuietProgress()
    progress(Event("create", "service web #1", "", "done"))
    progress.close()
    assert capsys.readouterr() == ("", "")


def test_lazy_tty_without_work_prints_buffered_lines_plainly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A no-op up never starts the live view: its "ready" lines are printed plainly at close."""
    progress = LazyTtyProgress()
    progress(Event("ready", "service web #1", "", "info"))
    assert capsys.readouterr().err == ""
    progress.close()
    assert capsys.readouterr().err == "  service web #1: Ready\n"


def test_make_progress_picks_the_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON wins over quiet; a terminal gets the live view, anything else plain lines."""
    assert isinstance(make_progress(json_mode=True, quiet=True), JsonProgress)
    assert isinstance(make_progress(json_mode=False, quiet=True), QuietProgress)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert isinstance(make_progress(json_mode=False), PlainProgress)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    assert isinstance(make_progress(json_mode=False), LazyTtyProgress)
