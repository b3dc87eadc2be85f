"""The dashboard's document, built purely from the daemon's status, desired state and events."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.daemon.ui.view import graph, last_changes, page_state
from envd.inputs.prepare import Target, prepare

SPEC = """
[project]
name = "shop"

[services.db]
image = "postgres:16"
healthcheck = { test = ["CMD", "true"] }

[services.api]
image = "api:1"
depends_on = { db = "healthy" }

[services.web]
image = "web:1"
depends_on = ["api"]
"""


def test_the_graph_has_levels_and_labelled_edges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dependencies come first (level 0) and each edge carries its condition."""
    monkeypatch.setenv("ENVD_HASH_KEY", "ab" * 32)
    (tmp_path / "envd.toml").write_text(SPEC)
    _, desired = prepare(Target(str(tmp_path)))
    g = graph(desired)
    assert {n["id"]: n["level"] for n in g["nodes"]} == {"db": 0, "api": 1, "web": 2}
    assert {(e["from"], e["to"], e["condition"]) for e in g["edges"]} == {
        ("api", "db", "healthy"),
        ("web", "api", "started"),
    }


def test_the_last_change_of_each_service_is_its_latest_working_event() -> None:
    """The reason shown per service is the latest create/recreate/start event that began."""
    events = [
        {
            "seq": 1,
            "kind": "create",
            "service": "web",
            "phase": "working",
            "message": "does not exist",
        },
        {"seq": 2, "kind": "create", "service": "web", "phase": "done", "message": "done"},
        {
            "seq": 3,
            "kind": "recreate",
            "service": "web",
            "phase": "working",
            "message": "changed: env",
        },
        {"seq": 4, "kind": "ready", "service": "web", "phase": "done", "message": "ready"},
    ]
    assert last_changes(events) == {"web": {"kind": "recreate", "reason": "changed: env", "seq": 3}}


def test_a_spec_that_fails_to_load_is_shown_over_the_last_good_state() -> None:
    """An invalid-spec pass puts its error (file:line:col) at the top; services stay listed."""
    status = {
        "daemon": {"last_result": "invalid-spec", "last_error": "envd.toml:3:9: bad"},
        "project": "shop",
        "services": [{"name": "web"}],
    }
    state = page_state(status, None, [], watching=False)
    assert state["spec_error"] == "envd.toml:3:9: bad"
    assert [s["name"] for s in state["services"]] == ["web"] and state["watching"] is False
