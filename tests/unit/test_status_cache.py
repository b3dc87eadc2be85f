"""`envd status` and `envd down` without a daemon read the desired state `envd up` cached (no spec
load), reports what a fresh load would, and never runs a `command` secret source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envd.engine.fake import FakeEngine
from envd.inputs import prepare as prepare_mod
from tests.helpers import cli_in_process as cli

SPEC = """\
[project]
name = "stc"

[services.web]
image = "web:1"
env = { MODE = "dev" }

[services.worker]
image = "web:1"
depends_on = { web = "started" }
"""


pytestmark = pytest.mark.usefixtures("private_state")


def _status(capsys: pytest.CaptureFixture[str], proj: Path) -> dict[str, object]:
    code, out, err = cli(capsys, "status", "--json", "-C", proj)
    assert code == 0, err
    report: dict[str, object] = json.loads(out)
    return report


def test_status_after_up_is_served_from_the_cache(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fake: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After `up`, status loads no spec and reports exactly what the slow path reports."""
    proj = tmp_path / "stc"
    proj.mkdir()
    (proj / "envd.toml").write_text(SPEC)
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 0, err
    cache = proj / ".envd" / "desired.cache"
    assert cache.is_file()
    cache.unlink()
    slow = _status(capsys, proj)  # from the spec: the reference
    code, _, err = cli(capsys, "up", "--once", "-C", proj)  # a no-op that caches again
    assert code == 0 and cache.is_file(), err
    calls: list[str] = []
    real = prepare_mod.prepare

    def counted(*args: object, **kwargs: object) -> object:
        calls.append("prepare")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prepare_mod, "prepare", counted)
    fast = _status(capsys, proj)
    assert calls == []
    assert fast == slow
    # An env edit takes the cache's env-edit path (still no load) and the drift shows.
    (proj / "envd.toml").write_text(SPEC.replace('"dev"', '"prod"'))
    changed = _status(capsys, proj)
    assert calls == []
    assert changed != slow
    # Any other edit is a miss: the spec is loaded again and the drift shows.
    (proj / "envd.toml").write_text(SPEC.replace('image = "web:1"\nenv', 'image = "web:2"\nenv'))
    other = _status(capsys, proj)
    assert calls == ["prepare"]
    assert other not in (slow, changed)


def test_status_never_runs_a_command_secret(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fake: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cached entry with a `command` secret source is not used by status: its command
    would have to run again, and status runs no host command."""
    proj = tmp_path / "stc"
    proj.mkdir()
    (proj / "envd.toml").write_text(
        SPEC + '\n[services.api]\nimage = "web:1"\nsecrets = ["token"]\n\n'
        '[secrets.token]\ncommand = ["sh", "-c", "echo run >> runs.log; printf tok"]\n'
    )
    monkeypatch.setenv("ENVD_ALLOW", "1")  # approved for this run (envd.inputs.consent)
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 0, err
    runs = (proj / "runs.log").read_text().count("run")
    report = _status(capsys, proj)
    assert (proj / "runs.log").read_text().count("run") == runs
    services = {s["name"]: s for s in report["services"]}  # type: ignore[attr-defined]
    assert services["api"]["secrets_not_checked"] == ["token"]


def test_down_after_up_loads_no_spec_and_keeps_named_volumes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fake: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """down after up takes the cached desired state, removes the containers and the
    network, and keeps the declared named volume (only -v removes it)."""
    proj = tmp_path / "stc"
    proj.mkdir()
    (proj / "envd.toml").write_text(
        SPEC.replace('env = { MODE = "dev" }', 'volumes = ["data:/data"]') + "\n[volumes.data]\n"
    )
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 0, err
    calls: list[str] = []
    monkeypatch.setattr(prepare_mod, "prepare", lambda *a, **k: calls.append("prepare"))
    code, out, err = cli(capsys, "down", "--json", "-C", proj)
    assert code == 0, err
    assert calls == []
    assert json.loads(out.splitlines()[-1]) == {"result": "ok", "containers": 2, "volumes": []}
    assert fake.list_containers("stc") == [] and fake.list_networks("stc") == []
    assert [v.name for v in fake.list_volumes("stc")] == ["stc_data"]
