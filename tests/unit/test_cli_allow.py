"""``envd allow`` and the consent it gives, run in-process on the fake engine:
read-only commands run no host command; up and run refuse what is not approved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envd.cli import containers
from envd.cli.app import run_cli
from envd.engine.fake import FakeEngine
from tests.helpers import cli_in_process

SPEC = """\
[project]
name = "shop"

[services.web]
image = "web:1"
secrets = ["token"]

[services.worker]
image = "worker:1"

[secrets.token]
command = ["sh", "-c", "echo ran >> {marker}; echo s3cret"]

[environments.ci]
services.worker.env = {{ MODE = "ci" }}
"""


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Approvals and keys go to a temporary directory; no approval or environment from outside."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for name in ("ENVD_ENV", "ENVD_PROFILES", "ENVD_ALLOW"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "marker"


@pytest.fixture
def proj(tmp_path: Path, marker: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "envd.toml").write_text(SPEC.format(marker=marker))
    return root


cli = cli_in_process


def _read_only(capsys: pytest.CaptureFixture[str], proj: Path) -> None:
    for args in (
        ("validate",),
        ("plan",),
        ("plan", "--json"),
        ("status",),
        ("status", "--json"),
        ("logs",),
        ("diff", "base", "ci"),
        ("export", "--format", "compose"),
        ("export", "--format", "k8s", "--secret-values"),
    ):
        code, _, err = cli(capsys, *args, "-C", proj)
        assert code == 0, (args, err)


def test_read_only_commands_never_run_a_command_secret(
    capsys: pytest.CaptureFixture[str],
    proj: Path,
    fake: FakeEngine,
    marker: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """validate, plan, status, logs, exec, diff and export leave the marker unwritten; allow --yes + up --once runs it once."""
    _read_only(capsys, proj)
    assert not marker.exists()
    code, _, err = cli(capsys, "allow", "--yes", "-C", proj)
    assert code == 0, err
    assert not marker.exists()  # approving runs nothing either
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 0, err
    assert marker.read_text() == "ran\n"
    # What can be compared without the value is: web is up to date, its secrets unchecked.
    out = cli(capsys, "plan", "-C", proj)[1]
    assert "Nothing to do: the project is up to date." in out
    assert "up to date (secrets not checked" in out
    report = json.loads(cli(capsys, "status", "--json", "-C", proj)[1])
    web = next(s for s in report["services"] if s["name"] == "web")
    assert web["drift"] == [] and web["secrets_not_checked"] == ["token"]
    # Up now: status, logs, exec and plan still run nothing.
    monkeypatch.setattr(containers.shutil, "which", lambda _: None)
    fake.set_exec_handler(lambda cid, cmd: (0, b""))
    _read_only(capsys, proj)
    with pytest.raises(SystemExit):
        run_cli(["exec", "-C", str(proj), "web", "--", "true"])
    assert marker.read_text() == "ran\n"


def test_plan_shows_what_is_unapproved_and_which_commands_it_did_not_run(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """plan has an unapproved section and a not-run note, in text and --json."""
    code, out, _ = cli(capsys, "plan", "-C", proj)
    assert code == 0
    assert "Not run: the command source(s) of secret(s) token" in out
    assert "Not approved (`envd up` refuses until you run `envd allow`):" in out
    assert "secret 'token' runs a host command: sh -c" in out
    code, out, _ = cli(capsys, "plan", "--json", "-C", proj)
    data = json.loads(out)
    assert data["secrets_not_read"] == ["token"]
    assert [i["kind"] for i in data["unapproved"]] == ["command"]
    assert cli(capsys, "allow", "--yes", "-C", proj)[0] == 0
    data = json.loads(cli(capsys, "plan", "--json", "-C", proj)[1])
    assert data["unapproved"] == [] and data["secrets_not_read"] == ["token"]


def test_up_and_run_refuse_an_unapproved_spec_touching_nothing(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine, marker: Path
) -> None:
    """up --once and run exit 2 with one sentence naming the item and `envd allow`; no engine change, no command."""
    for args in (("up", "--once", "-C", proj), ("run", "-C", proj, "web", "--", "true")):
        code, _, err = cli(capsys, *args)
        assert code == 2, err
        (line,) = err.splitlines()
        assert "envd.toml:12:" in line and "secret 'token' runs a host command" in line
        assert "envd allow" in line
    assert fake.mutating_calls() == [] and not marker.exists()


def test_a_changed_command_needs_a_new_approval(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine, marker: Path
) -> None:
    """An approval covers the argv it showed: a different argv is refused until approved again."""
    assert cli(capsys, "allow", "--yes", "-C", proj)[0] == 0
    spec = proj / "envd.toml"
    spec.write_text(spec.read_text().replace("echo s3cret", "echo other"))
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 2 and "echo other" in err
    assert not marker.exists()


def test_a_revoked_approval_is_not_served_from_the_desired_cache(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine, marker: Path
) -> None:
    """After up, --revoke makes the next up refuse even though nothing else changed."""
    assert cli(capsys, "allow", "--yes", "-C", proj)[0] == 0
    assert cli(capsys, "up", "--once", "-C", proj)[0] == 0
    code, out, _ = cli(capsys, "allow", "--revoke", "-C", proj)
    assert code == 0 and "revoked" in out
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 2 and "has not approved" in err
    assert marker.read_text() == "ran\n"


def test_allow_asks_on_a_terminal_only_and_lists(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """Without a terminal and without --yes nothing is approved (exit 2); --list shows approvals."""
    code, out, err = cli(capsys, "allow", "-C", proj)
    assert code == 2 and "envd allow --yes" in err
    assert "secret 'token' runs a host command" in out
    code, out, _ = cli(capsys, "allow", "--list")
    assert code == 0 and out == "No approvals.\n"
    assert cli(capsys, "allow", "--yes", "-C", proj)[0] == 0
    code, out, _ = cli(capsys, "allow", "--list", "--json")
    (entry,) = json.loads(out)
    assert entry["project_dir"] == str(proj.resolve())
    assert [i["kind"] for i in entry["items"]] == ["command"]


def test_envd_allow_variable_lets_ci_up_without_a_record(
    capsys: pytest.CaptureFixture[str],
    proj: Path,
    fake: FakeEngine,
    marker: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENVD_ALLOW=1 approves one run (CI): up --once runs the command, and nothing is recorded."""
    monkeypatch.setenv("ENVD_ALLOW", "1")
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 0, err
    assert marker.read_text() == "ran\n"
    assert cli(capsys, "allow", "--list")[1] == "No approvals.\n"


def test_a_bind_retargeted_out_of_the_project_is_not_served_from_the_desired_cache(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake: FakeEngine
) -> None:
    """After an up, ./data becoming a link out of the project makes the next up refuse, the spec unchanged."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "data").mkdir()
    (root / "envd.toml").write_text(
        '[project]\nname = "shop"\n\n[services.web]\nimage = "web:1"\nvolumes = ["./data:/data"]\n'
    )
    code, _, err = cli(capsys, "up", "--once", "-C", root)
    assert code == 0, err
    (root / "data").rmdir()
    (tmp_path / "home").mkdir()
    (root / "data").symlink_to(tmp_path / "home")
    code, _, err = cli(capsys, "up", "--once", "-C", root)
    assert code == 2 and "mounts" in err and "has not approved" in err


def test_allow_on_a_terminal_approves_only_on_yes(
    proj: Path, fake: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal envd allow shows the list and asks: "n" approves nothing (exit 2), "y" records it."""
    from click.testing import CliRunner

    from envd.cli import allow as allow_module
    from envd.cli.app import main
    from envd.inputs import approvals

    monkeypatch.setattr(allow_module, "_on_terminal", lambda: True)
    runner = CliRunner()
    result = runner.invoke(main, ["allow", "-C", str(proj)], input="n\n")
    assert result.exit_code != 0 and "Allow these, for this user and this spec?" in result.output
    assert approvals.listing() == []
    result = runner.invoke(main, ["allow", "-C", str(proj)], input="y\n")
    assert result.exit_code == 0 and "Approved 1 item(s)" in result.output
    assert len(approvals.listing()) == 1
