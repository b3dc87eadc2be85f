"""post_start / pre_stop hooks and sync+exec rules: spec, hash, cache and when they run (fake engine)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from envd.core.desired import DesiredProject, canonical, desire, desired_hash
from envd.core.hashing import digest
from envd.engine.fake import FakeEngine
from envd.inputs import desired_codec
from envd.run.converge import converge
from envd.run.teardown import remove_all
from envd.spec.load import load
from envd.values.errors import EnvironmentFailed, SpecError
from envd.values.events import Event, FakeClock
from envd.values.keys import Keys
from envd.values.types import ExecOptions

KEYS = Keys(b"unit-test-hash-key")
IMAGE = "envd-local/busybox:latest"

SPEC = f"""\
[project]
name = "hooks"

[services.web]
image = "{IMAGE}"
command = ["sleep", "3600"]
post_start = [
  {{ command = "sh -c 'echo one'", user = "root", privileged = true, working_dir = "/tmp", environment = {{ A = "1" }} }},
  {{ command = ["echo", "two"] }},
]
pre_stop = [{{ command = ["echo", "bye"], user = "nobody" }}]
"""


def desired_from(root: Path, spec: str) -> DesiredProject:
    (root / "envd.toml").write_text(textwrap.dedent(spec))
    return desire(load(root, environ={}), {}, keys=KEYS)


def fake() -> FakeEngine:
    engine = FakeEngine()
    engine.add_image(IMAGE)
    return engine


def test_post_start_hooks_run_in_order_with_their_options(tmp_path: Path) -> None:
    """Each post_start hook is an exec after the start, with its user, privilege, cwd and variables."""
    engine = fake()
    events: list[Event] = []
    converge(engine, desired_from(tmp_path, SPEC), events.append, clock=FakeClock())
    calls = [c[0] for c in engine.mutating_calls()]
    assert calls.index("start_container") < calls.index("exec_run")
    (_, first, opts), (_, second, opts2) = engine.exec_options
    assert first == ("sh", "-c", "echo one")
    assert opts == ExecOptions(user="root", privileged=True, working_dir="/tmp", env=(("A", "1"),))
    assert (second, opts2) == (("echo", "two"), ExecOptions())
    done = [e.message for e in events if e.kind == "post_start" and e.phase == "done"]
    assert len(done) == 2 and done[0].startswith("post_start hook `sh -c echo one` done in ")


def test_a_failing_post_start_hook_fails_the_service_with_its_status(tmp_path: Path) -> None:
    """As with Compose, a post_start hook exiting non-zero fails `up`, naming the hook and status."""
    engine = fake()
    engine.set_exec_handler(lambda cid, cmd: (5, b"nope\n"))
    with pytest.raises(EnvironmentFailed) as info:
        converge(engine, desired_from(tmp_path, SPEC), clock=FakeClock())
    failure = info.value.failures[0]
    assert failure.service == "web"
    assert "post_start hook `sh -c echo one` exited with status 5" in failure.reason
    assert len(engine.exec_options) == 1  # the second hook never ran


def test_pre_stop_runs_before_a_recreate_stops_the_old_container(tmp_path: Path) -> None:
    """A changed config recreates: the old container's pre_stop hook runs before it is stopped."""
    engine = fake()
    converge(engine, desired_from(tmp_path, SPEC), clock=FakeClock())
    old = engine.list_containers("hooks")[0].id
    engine.calls.clear()
    engine.exec_options.clear()
    converge(engine, desired_from(tmp_path, SPEC.replace("3600", "3601")), clock=FakeClock())
    calls = engine.mutating_calls()
    bye = calls.index(("exec_run", old, "echo", "bye"))
    assert bye < calls.index(next(c for c in calls if c[0] == "stop_container" and c[1] == old))
    assert engine.exec_options[0][2].user == "nobody"


def test_down_runs_pre_stop_before_stopping_and_skips_stopped_containers(tmp_path: Path) -> None:
    """remove_all (envd down) runs a running container's pre_stop hooks first; a stopped one has none run."""
    engine = fake()
    desired = desired_from(tmp_path, SPEC)
    converge(engine, desired, clock=FakeClock())
    engine.exec_options.clear()
    engine.calls.clear()
    containers = engine.list_containers("hooks")
    remove_all(
        engine, containers, lambda c: 1, pre_stop=lambda c: desired.services[c.service].pre_stop
    )
    calls = engine.mutating_calls()
    assert calls[0][0] == "exec_run" and calls[1][0] == "stop_container"
    engine2 = fake()
    converge(engine2, desired, clock=FakeClock())
    cid = engine2.list_containers("hooks")[0].id
    engine2.stop_container(cid, 1)
    engine2.exec_options.clear()
    remove_all(
        engine2,
        engine2.list_containers("hooks"),
        lambda c: 1,
        pre_stop=lambda c: desired.services[c.service].pre_stop,
    )
    assert engine2.exec_options == []


def test_hooks_are_in_the_config_hash_only_when_present(tmp_path: Path) -> None:
    """A changed hook recreates (as Compose's hash covers hooks); a service without hooks keeps
    the hash it had before hooks existed."""
    with_hooks = desired_from(tmp_path, SPEC).services["web"]
    changed = desired_from(tmp_path, SPEC.replace('"bye"', '"ciao"')).services["web"]
    assert desired_hash(with_hooks, "sha256:x") != desired_hash(changed, "sha256:x")
    plain_spec = SPEC.split("post_start")[0]
    bare = desired_from(tmp_path, plain_spec).services["web"]
    legacy = canonical(bare.template, bare.secret_digests)
    legacy["image"] = "sha256:x"
    assert desired_hash(bare, "sha256:x") == digest(legacy)


def test_hooks_survive_the_desired_cache_and_an_old_cache_has_none(tmp_path: Path) -> None:
    """The codec writes and reads hooks; an entry written before them decodes with no hooks."""
    desired = desired_from(tmp_path, SPEC)
    data = desired_codec.encode(desired)
    assert desired_codec.decode_project(data) == desired
    assert isinstance(data, dict)
    del data["services"]["web"]["post_start"]
    del data["services"]["web"]["pre_stop"]
    assert desired_codec.decode_project(data).services["web"].post_start == ()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            '{ path = "src", action = "sync+exec", target = "/app" }',
            "needs an 'exec' table",
        ),
        (
            '{ path = "src", action = "sync", target = "/app", exec = { command = "true" } }',
            "'exec' applies to 'sync+exec' rules only",
        ),
        (
            '{ path = "src", action = "sync+exec", target = "/app", exec = { command = [] } }',
            "command",
        ),
    ],
)
def test_bad_sync_exec_rules_are_refused(tmp_path: Path, rule: str, message: str) -> None:
    """A sync+exec rule without exec, exec on another action, or an empty command: exit 2."""
    (tmp_path / "src").mkdir()
    spec = f'[services.web]\nimage = "{IMAGE}"\nwatch = [{rule}]\n'
    with pytest.raises(SpecError) as info:
        desired_from(tmp_path, spec)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_a_hook_with_an_unknown_field_or_relative_working_dir_is_refused(tmp_path: Path) -> None:
    """Hooks are strict like every spec table."""
    for hook in ('{ command = "true", usr = "root" }', '{ command = "true", working_dir = "rel" }'):
        spec = f'[services.web]\nimage = "{IMAGE}"\npost_start = [{hook}]\n'
        with pytest.raises(SpecError):
            desired_from(tmp_path, spec)


def test_envd_restart_service_runs_pre_stop_then_post_start_around_it(tmp_path: Path) -> None:
    """`envd restart SERVICE` (the daemon's action) runs pre_stop before the stop and the
    post_start hooks after the start, as Compose's restart does."""
    from envd.daemon.actions import ServiceActions

    engine = fake()
    desired = desired_from(tmp_path, SPEC)
    converge(engine, desired, clock=FakeClock())
    cid = engine.list_containers("hooks")[0].id
    engine.calls.clear()
    ServiceActions().run([("restart", "web")], engine, desired, lambda ev: None)
    calls = [c[:2] + ((c[2],) if c[0] == "exec_run" else ()) for c in engine.mutating_calls()]
    assert calls == [
        ("exec_run", cid, "echo"),
        ("stop_container", cid),
        ("start_container", cid),
        ("exec_run", cid, "sh"),
        ("exec_run", cid, "echo"),
    ]


def test_adding_a_hook_recreates_and_the_plan_names_it(tmp_path: Path) -> None:
    """A service that gains a post_start hook is recreated, and `envd plan` says which field changed."""
    engine = fake()
    bare = SPEC.split("post_start")[0]
    converge(engine, desired_from(tmp_path, bare), clock=FakeClock())
    plan, _ = converge(engine, desired_from(tmp_path, SPEC), clock=FakeClock())
    recreate = [a for a in plan.actions if a.kind == "recreate"]
    assert len(recreate) == 1
    assert "post_start" in recreate[0].reason and "pre_stop" in recreate[0].reason


def test_a_secret_value_a_hook_prints_is_masked_in_events_and_errors(tmp_path: Path) -> None:
    """A failing hook that prints a secret's value is reported with the value masked (contract §5)."""
    (tmp_path / "pw.txt").write_text("hunter2")
    (tmp_path / "envd.toml").write_text(
        f'[secrets.pw]\nfile = "pw.txt"\n\n[services.web]\nimage = "{IMAGE}"\n'
        'secrets = ["pw"]\npost_start = [{ command = "cat /run/secrets/pw" }]\n'
    )
    desired = desire(load(tmp_path, environ={}), {"pw": b"hunter2"}, keys=KEYS)
    engine = fake()
    engine.set_exec_handler(lambda cid, cmd: (1, b"bad password hunter2\n"))
    events: list[Event] = []
    with pytest.raises(EnvironmentFailed) as info:
        converge(engine, desired, events.append, clock=FakeClock())
    assert "bad password ***" in info.value.failures[0].reason
    assert not any("hunter2" in e.message for e in events)
    assert "hunter2" not in str(info.value)
