"""Each CLI module's commands, run in-process: exit codes, output, and the fake engine.

``run_cli`` is what ``python -m envd`` runs; a command that needs an engine
gets a ``FakeEngine`` in place of the Docker engine (the ``engine`` its module
imported from ``envd.cli._common``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from envd.cli import _common, containers, daemon, project
from envd.cli.app import main, run_cli
from envd.engine.fake import FakeEngine
from envd.values import labels
from envd.values.errors import (
    EngineError,
    EnvironmentFailed,
    ServiceFailure,
    SpecError,
    UsageError,
)
from tests.helpers import cli_in_process

SPEC = """\
[project]
name = "shop"

[services.web]
image = "web:1"
env = { MODE = "dev" }

[services.worker]
image = "worker:1"
depends_on = { web = "started" }

[environments.ci]
services.web.env = { MODE = "ci" }
"""


pytestmark = pytest.mark.usefixtures("private_state")


cli = cli_in_process


# --------------------------------------------------------------------------- app


def test_version_and_an_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    """--version exits 0; an unknown command exits 2 and suggests a close name from every module."""
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.startswith("envd, version ")
    code, _, err = cli(capsys, "deplo")
    assert code == 2 and "No such command 'deplo'" in err and "deploy" in err


def test_an_unexpected_error_is_one_line_with_exit_1(
    capsys: pytest.CaptureFixture[str], proj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug surfaces as `envd: internal error: ...` (exit 1), a traceback only with --debug."""

    def boom() -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(project, "engine", boom)
    code, _, err = cli(capsys, "plan", "-C", proj)
    assert code == 1
    assert err == "envd: internal error: RuntimeError: kaput (run with --debug for a traceback)\n"
    code, _, err = cli(capsys, "--debug", "plan", "-C", proj)
    assert code == 1 and "Traceback" in err


# --------------------------------------------------------------------------- _common


def test_project_options_after_the_command_set_the_context(proj: Path) -> None:
    """-C/-f/--env/--profile work after the command too, and profiles add up."""
    seen: list[_common.Ctx] = []

    @click.command()
    @_common._project_opts()
    @click.pass_obj
    def probe(obj: _common.Ctx) -> None:
        seen.append(obj)

    group = click.Group(
        callback=click.pass_context(
            lambda ctx: setattr(ctx, "obj", _common.Ctx(None, None, None, frozenset({"a"}), False))
        )
    )
    group.add_command(probe)
    args = ["probe", "-C", str(proj), "-f", "x.toml", "--env", "ci", "--profile", "b"]
    result = CliRunner().invoke(group, args)
    assert result.exit_code == 0, result.output
    (ctx,) = seen
    assert (ctx.project_dir, ctx.file, ctx.environment) == (str(proj), "x.toml", "ci")
    assert ctx.profiles == {"a", "b"}


def test_print_error_renders_each_kind_and_returns_its_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Spec problems one per line (2), usage one sentence (2), an engine error (1); reported failures stay quiet."""
    assert _common.print_error(SpecError("first")) == 2
    assert _common.print_error(UsageError("bad flag")) == 2
    assert _common.print_error(EngineError("no luck")) == 1
    assert _common.print_error(EnvironmentFailed([ServiceFailure("web", "died")])) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[1:] == ["envd: bad flag", "envd: no luck"] and "first" in err[0]


def test_small_helpers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--tail takes a number; paths print relative when below the cwd; tables align columns."""
    assert _common._int("12", "--tail") == 12
    with pytest.raises(UsageError, match="--tail takes a number or 'all', not 'x'"):
        _common._int("x", "--tail")
    assert _common._rel("/") == "/"
    _common.table([("A", "LONGER"), ("wide-value", "b")])
    assert capsys.readouterr().out == "A           LONGER\nwide-value  b\n"


# --------------------------------------------------------------------------- project


def test_validate_text_and_json(capsys: pytest.CaptureFixture[str], proj: Path) -> None:
    """validate checks every environment and says so; --json gives the counts."""
    code, out, _ = cli(capsys, "validate", "-C", proj)
    assert code == 0 and "is valid: project 'shop', 2 service(s), 1 environment(s)" in out
    code, out, _ = cli(capsys, "validate", "-C", proj, "--json")
    assert code == 0
    assert json.loads(out) == {
        "valid": True,
        "project": "shop",
        "services": 2,
        "environments": ["ci"],
        "warnings": [],
    }


def test_validate_reports_a_broken_overlay_with_exit_2(
    capsys: pytest.CaptureFixture[str], proj: Path
) -> None:
    """A problem in an environment overlay fails validate (exit 2) even without --env."""
    (proj / "envd.toml").write_text(SPEC + 'services.web.replicas = "many"\n')
    code, out, err = cli(capsys, "validate", "-C", proj)
    assert code == 2 and out == "" and "replicas" in err


def test_plan_up_status_down_on_the_fake_engine(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """plan lists the creates, up --once converges, status shows it, down removes it all."""
    code, out, _ = cli(capsys, "plan", "-C", proj)
    assert code == 0 and out.splitlines()[0] == "Project shop"
    assert "+ create-network" in out and out.rstrip().endswith("3 change(s)")
    code, out, err = cli(capsys, "up", "--once", "--json", "-C", proj)
    assert code == 0, err
    assert json.loads(out.splitlines()[-1]) == {
        "result": "ok",
        "project": "shop",
        "services": {"web": "ready", "worker": "ready"},
    }
    code, out, _ = cli(capsys, "plan", "-C", proj)
    assert out.rstrip().endswith("Nothing to do: the project is up to date.")
    code, out, _ = cli(capsys, "status", "-C", proj, "--json")
    report = json.loads(out)
    assert code == 0 and [s["name"] for s in report["services"]] == ["web", "worker"]
    code, out, _ = cli(capsys, "status", "-C", proj)
    assert out.splitlines()[0] == "no daemon runs for this project (`envd up` starts one)"
    assert out.splitlines()[1] == "engine: fake 0 at fake:// (API 1.41)"
    assert out.splitlines()[2].split() == [
        "SERVICE",
        "STATE",
        "DESIRED",
        "ACTUAL",
        "HEALTH",
        "CONTAINERS",
        "DRIFT",
    ]
    code, out, err = cli(capsys, "down", "-C", proj, "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1]) == {"result": "ok", "containers": 2, "volumes": []}
    assert fake.list_containers("shop") == [] and fake.list_networks("shop") == []


def test_up_rerun_recreates_only_that_service(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """`up --once --rerun web` recreates web alone; an unknown name is exit 2, nothing touched."""
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 0, err
    before = {c.name: c.id for c in fake.list_containers("shop")}
    calls = len(fake.mutating_calls())
    code, _, err = cli(capsys, "up", "--once", "--rerun", "nope", "-C", proj)
    assert code == 2 and "--rerun nope: no such service" in err
    assert len(fake.mutating_calls()) == calls
    code, _, err = cli(capsys, "up", "--once", "--rerun", "web", "-C", proj)
    assert code == 0, err
    after = {c.name: c.id for c in fake.list_containers("shop")}
    assert after["shop-web-1"] != before["shop-web-1"]
    assert after["shop-worker-1"] == before["shop-worker-1"]


def test_status_without_daemon_reads_heal_records(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """With no daemon, `status` shows the heal counts and flap mark kept in .envd/heal.json,
    and drops the mark once the container it was counted on is gone."""
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 0, err
    web = next(c.id for c in fake.list_containers("shop") if c.service == "web")
    state = proj / ".envd"
    state.mkdir(mode=0o700, exist_ok=True)  # up --once may have made it (desired.cache)

    def record(containers: list[str]) -> None:
        entry = {
            "heals": [1.0, 2.0],
            "total": 2,
            "flapping": True,
            "flapping_since": 3.0,
            "containers": containers,
        }
        (state / "heal.json").write_text(json.dumps({"format": 1, "services": {"web": entry}}))

    record([web])
    code, out, err = cli(capsys, "status", "--json", "-C", proj)
    entry = next(s for s in json.loads(out)["services"] if s["name"] == "web")
    assert entry["state"] == "flapping" and entry["heal"]["heals"] == 2
    code, out, err = cli(capsys, "status", "-C", proj)
    assert "flapping (2 heals)" in out and "envd up --rerun web" in out
    record(["gone"])
    code, out, err = cli(capsys, "status", "--json", "-C", proj)
    entry = next(s for s in json.loads(out)["services"] if s["name"] == "web")
    assert entry["state"] == "running" and entry["heal"]["heals"] == 2
    assert not entry["heal"]["flapping"]


def test_up_refuses_force_recreate_without_once(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """--force-recreate is an --once flag: with a daemon it is a usage error (exit 2), nothing created."""
    code, _, err = cli(capsys, "up", "--force-recreate", "-C", proj)
    assert code == 2 and "--force-recreate needs --once" in err
    assert fake.mutating_calls() == []


def test_up_once_reports_a_failed_service_with_its_log(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """A service that exits non-zero fails `up --once` (exit 1), its last log lines shown."""
    (proj / "envd.toml").write_text(SPEC.replace('env = { MODE = "dev" }', 'restart = "no"'))
    original = fake.start_container

    def crash(cid: str) -> None:
        original(cid)
        if fake.container_spec(cid).labels.get(labels.SERVICE) == "web":
            fake.emit_log(cid, "boom")
            fake.exit_container(cid, 7)

    fake.start_container = crash  # type: ignore[method-assign]
    code, _, err = cli(capsys, "up", "--once", "-C", proj)
    assert code == 1
    assert "envd: service 'web' exited with code 7" in err and "  web | boom" in err


# --------------------------------------------------------------------------- containers


def test_logs_prefix_each_line_and_skip_one_offs(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """logs prints every service container's lines prefixed by its name; --tail limits them."""
    assert cli(capsys, "up", "--once", "-C", proj)[0] == 0
    ids = {c.service: c.id for c in fake.list_containers("shop")}
    fake.emit_log(ids["web"], "one", "two")
    fake.emit_log(ids["worker"], "three")
    code, out, _ = cli(capsys, "logs", "-C", proj)
    assert code == 0
    assert out.splitlines() == [
        "shop-web-1    | one",
        "shop-web-1    | two",
        "shop-worker-1 | three",
    ]
    code, out, _ = cli(capsys, "logs", "web", "--tail", "1", "--no-prefix", "-C", proj)
    assert out == "two\n"
    code, _, err = cli(capsys, "logs", "nope", "-C", proj)
    assert code == 2 and "no service named 'nope'" in err


def test_exec_and_run_without_the_docker_cli(
    capsys: pytest.CaptureFixture[str],
    proj: Path,
    fake: FakeEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a docker command, exec runs through the engine and exits with the command's code."""
    monkeypatch.setattr(containers.shutil, "which", lambda _: None)
    code, _, err = cli(capsys, "exec", "web", "-C", proj, "--", "true")
    assert code == 2 and "has no container #1; run `envd up` first" in err
    assert cli(capsys, "up", "--once", "-C", proj)[0] == 0
    fake.set_exec_handler(lambda cid, cmd: (4, b"ran " + " ".join(cmd).encode()))
    with pytest.raises(SystemExit) as exited:
        run_cli(["exec", "-C", str(proj), "web", "--", "echo", "hi"])
    assert exited.value.code == 4
    with pytest.raises(SystemExit) as exited:
        run_cli(["run", "-C", str(proj), "worker", "--", "true"])
    assert exited.value.code == 0
    assert [c.service for c in fake.list_containers("shop")] == ["web", "worker"]  # --rm
    code, _, err = cli(capsys, "run", "-C", proj, "nope")
    assert code == 2 and "no service named 'nope'" in err


# --------------------------------------------------------------------------- daemon, events, schema


def test_schema_is_json_and_events_need_a_daemon(
    capsys: pytest.CaptureFixture[str], proj: Path
) -> None:
    """schema prints the JSON Schema; events without a daemon is a usage error (exit 2)."""
    code, out, _ = cli(capsys, "schema")
    assert code == 0 and "services" in json.loads(out)["properties"]
    code, _, err = cli(capsys, "events", "-C", proj)
    assert code == 2
    assert err == "envd: no daemon runs for project 'shop'; start one with `envd up`\n"
    assert (daemon.daemon, daemon.events, daemon.schema) == daemon.COMMANDS


# --------------------------------------------------------------------------- environments, convert


def test_diff_between_the_base_and_an_environment(
    capsys: pytest.CaptureFixture[str], proj: Path
) -> None:
    """diff names each differing field with both values, as text and as JSON."""
    code, out, _ = cli(capsys, "diff", "base", "ci", "-C", proj)
    assert code == 0 and out.splitlines()[0] == "services.web.env.MODE"
    code, out, _ = cli(capsys, "diff", "base", "ci", "--json", "-C", proj)
    assert json.loads(out) == [{"path": "services.web.env.MODE", "base": "dev", "ci": "ci"}]
    code, out, _ = cli(capsys, "diff", "ci", "ci", "-C", proj)
    assert out == "ci and ci are identical.\n"


def test_lock_writes_then_checks(
    capsys: pytest.CaptureFixture[str], proj: Path, fake: FakeEngine
) -> None:
    """lock writes the lock file; --check then finds no drift (exit 0)."""
    code, out, err = cli(capsys, "lock", "-C", proj)
    assert code == 0, err
    assert out.startswith("wrote ") and "2 environment(s), 4 pinned service image(s)" in out
    code, out, err = cli(capsys, "lock", "--check", "-C", proj)
    assert code == 0, out + err
    assert out.endswith("matches the spec.\n")


def test_export_compose_and_import_it_back(
    capsys: pytest.CaptureFixture[str], proj: Path, tmp_path: Path
) -> None:
    """export --format compose prints a Compose file; import turns it into an envd spec."""
    code, out, _ = cli(capsys, "export", "--format", "compose", "-C", proj)
    assert code == 0 and "web:1" in out
    compose = tmp_path / "compose.yaml"
    compose.write_text(out)
    code, out, err = cli(capsys, "import", compose)
    assert code == 0 and "[services.web]" in out
    code, _, err = cli(capsys, "import", tmp_path / "missing.yaml")
    assert code == 2 and err.startswith("envd: cannot read ")


# --------------------------------------------------------------------------- swarm


def test_swarm_commands_without_an_engine_exit_3(
    capsys: pytest.CaptureFixture[str], proj: Path
) -> None:
    """deploy, status and down --target swarm say the engine is unreachable (exit 3)."""
    for args in (
        ("deploy", "--target", "swarm"),
        ("status", "--target", "swarm"),
        ("down", "--target", "swarm"),
    ):
        code, _, err = cli(capsys, *args, "-C", proj)
        assert code == 3, (args, err)
        assert err.startswith("envd: ")


def test_the_group_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`envd --help` lists the eager and the lazy commands alike."""
    result = CliRunner().invoke(main, ["--help"])
    for name in ("up", "down", "logs", "exec", "run", "schema", "deploy", "lock", "import"):
        assert f"  {name} " in result.output
