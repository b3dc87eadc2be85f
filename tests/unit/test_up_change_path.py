"""``up --once`` after a spec edit: what the change path asks of the engine and leaves behind.

In-process against the fake engine. The lean entry's witness recording
(``envd.cli._lean_up.begin``) talks to a real socket, so it is replaced by a
recorder here; ``tests/unit/test_lean_entry.py`` covers what it writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envd.cli import _lean_up
from envd.engine.fake import FakeEngine
from tests.helpers import cli_in_process

SPEC = """\
[project]
name = "shop"

[services.web]
image = "web:1"
env = { MODE = "dev" }

[services.worker]
image = "worker:1"
"""

pytestmark = pytest.mark.usefixtures("private_state")


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "envd.toml").write_text(SPEC)
    return root


@pytest.fixture
def begun(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The projects ``begin`` was asked to witness, in order."""
    calls: list[str] = []

    def record(project: str, refs: Any, environ: Any) -> None:
        calls.append(project)

    monkeypatch.setattr(_lean_up, "begin", record)
    return calls


def test_only_a_run_on_the_cached_desired_state_asks_the_witness_questions(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine, begun: list[str]
) -> None:
    """The witness's engine questions are asked when the desired cache served the spec as
    stored, never after a spec edit (patched or loaded): the change path does not wait on them."""
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # loaded
    assert begun == []
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # a no-op, from the cache
    assert begun == ["shop"]
    (proj / "envd.toml").write_text(SPEC.replace('"dev"', '"prod"'))
    before = {c.service: c.id for c in fake.list_containers("shop")}
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # env edit: patched
    assert begun == ["shop"]
    after = {c.service: c.id for c in fake.list_containers("shop")}
    assert after["worker"] == before["worker"] and after["web"] != before["web"]
    (proj / "envd.toml").write_text(SPEC.replace('"dev"', '"prod"').replace("web:1", "worker:1"))
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # image edit: loaded
    assert begun == ["shop"]
    assert cli_in_process(capsys, "up", "--once", "-C", proj)[0] == 0  # a no-op again
    assert begun == ["shop", "shop"]
    assert cli_in_process(capsys, "up", "--once", "--no-wait", "-C", proj)[0] == 0
    assert cli_in_process(capsys, "up", "--once", "--force-recreate", "-C", proj)[0] == 0
    assert begun == ["shop", "shop"]
