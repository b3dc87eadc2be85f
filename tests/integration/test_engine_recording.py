"""The recording the replay tests use is what the adapter really exchanges with this engine.

Runs ``tests/engine_replay.scenario`` against the real engine through a
recording transport and checks the calls (and what the adapter made of the
answers) match ``tests/fixtures/engine_api/v1.41-recorded.json``, the file
``tests/unit/test_engine_replay.py`` replays without an engine. With
``ENVD_RECORD_ENGINE_FIXTURE=1`` it rewrites that file instead.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any

import pytest

from tests.engine_replay import FIXTURES, RecordingEngine, load, scenario

TEST_IMAGE = os.environ.get("ENVD_TEST_IMAGE", "envd-local/busybox:latest")
FIXTURE = "v1.41-recorded.json"
_ID = re.compile(r"[0-9a-f]{64}")


def _shape(exchanges: list[dict[str, Any]], project: str) -> list[tuple[str, str, str]]:
    """Method, path and request body with ids and the project name made neutral."""

    def neutral(text: str) -> str:
        return _ID.sub("<id>", text.replace(project, "<project>"))

    return [
        (e["method"], neutral(e["path"]), neutral(json.dumps(e["request"], sort_keys=True)))
        for e in exchanges
    ]


@pytest.mark.docker
def test_the_recorded_exchange_is_what_the_adapter_does_on_this_engine() -> None:
    """The 1.41 recording replayed in CI matches a fresh recording against Docker 20.10."""
    project = f"rec{uuid.uuid4().hex[:8]}"
    eng = RecordingEngine()
    if eng.engine_info().api_used != "1.41" or eng.engine_info().is_podman:
        pytest.fail("the 1.41 recording is made against Docker 20.10 (API 1.41)")
    result = scenario(eng, project, TEST_IMAGE)
    recorded = [e.as_json() for e in eng.exchanges]
    if os.environ.get("ENVD_RECORD_ENGINE_FIXTURE") == "1":
        doc = {"project": project, "image": TEST_IMAGE, "exchanges": recorded}
        doc["result"] = json.loads(json.dumps(result))
        (FIXTURES / FIXTURE).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    fixture = json.loads((FIXTURES / FIXTURE).read_text())
    assert _shape(recorded, project) == _shape(load(FIXTURE), fixture["project"])
    expected = json.loads(json.dumps(fixture["result"]).replace(fixture["project"], project))
    got = json.loads(json.dumps(result))
    got["version"] = {k: v for k, v in got["version"].items() if k in ("name", "api_version")}
    expected["version"] = {
        k: v for k, v in expected["version"].items() if k in ("name", "api_version")
    }
    assert got == expected
