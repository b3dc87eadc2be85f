"""How events are shown (``envd.cli.progress``): plain lines, JSON lines, the lazy live view."""

from __future__ import annotations

import io
import json

import pytest

from envd.cli import progress
from envd.values.events import Event


def plain(*events: Event) -> list[str]:
    out = io.StringIO()
    show = progress.PlainProgress(out)
    for ev in events:
        show(ev)
    show.close()
    return out.getvalue().splitlines()


def test_plain_lines_name_the_resource_with_a_verb_per_phase() -> None:
    """Working, done and error lines read as a person would say them."""
    assert plain(
        Event("create", "container shop-web-1", "", "working", "web"),
        Event("create", "container shop-web-1", "done", "done", "web"),
        Event("recreate-network", "network shop_backend", "changed: internal", "working"),
        Event("remove-network", "network shop_default", "in use", "error"),
    ) == [
        "… container shop-web-1: Creating",
        "✔ container shop-web-1: Started",
        "… network shop_backend: Recreating (changed: internal)",
        "✘ network shop_default: Removing: in use",
    ]


def test_plain_lines_skip_streamed_pull_output_but_keep_the_reason() -> None:
    """A pull's progress lines are too chatty for logs; the line saying why it pulls stays."""
    assert plain(
        Event("pull", "image pg", "image not present locally", "working", "db"),
        Event("pull", "image pg", "Downloading 3/10", "working", "db"),
        Event("pull", "image pg", "done", "done", "db"),
    ) == ["… image pg: Pulling", "✔ image pg: Pulled"]


def test_json_progress_writes_one_event_per_line() -> None:
    """--json prints each event as a JSON object under "event"."""
    out = io.StringIO()
    progress.JsonProgress(out)(Event("start", "container c", "", "done", "web"))
    doc = json.loads(out.getvalue())
    assert doc["event"]["kind"] == "start" and doc["event"]["resource"] == "container c"


def test_lazy_view_without_work_prints_plain_lines_at_close(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A no-op up never starts the live view: what it buffered is printed plainly at the end."""
    view = progress.LazyTtyProgress()
    view(Event("ready", "service web", "ready", "done", "web"))
    assert view.live is None and capsys.readouterr().err == ""
    view.close()
    assert capsys.readouterr().err == "✔ service web: Ready\n"


def test_make_progress_picks_by_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON for --json, nothing when quiet, plain lines when stderr is no terminal."""
    assert isinstance(progress.make_progress(True), progress.JsonProgress)
    assert isinstance(progress.make_progress(False, quiet=True), progress.QuietProgress)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert isinstance(progress.make_progress(False), progress.PlainProgress)
