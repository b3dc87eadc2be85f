"""Secrets on the real engine (contract §5): delivery, owner and mode, no leaks, rotation.

Each value is a distinctive random string, so a scan of everything envd and
Docker show (``docker inspect`` of every object, ``status``/``plan``/``up``
output, the daemon's log, events and ``.envd/``, error messages) proves it
appears nowhere but in the container's file.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.conftest import ProjectDir
from tests.helpers import BUSYBOX, describe, envd_env, wait_for

pytestmark = pytest.mark.docker

TOKEN_VAR = "ENVD_TEST_SECRET_TOKEN"

SPEC = f"""
[services.app]
image = "{BUSYBOX}"
command = ["sleep", "3600"]
secrets = [
  "pw",
  "tok",
  "cmd",
  {{ source = "pw", target = "owned/pw", uid = "1234", gid = "2345", mode = 0o440 }},
]

[services.ro]
image = "{BUSYBOX}"
command = ["sleep", "3600"]
read_only = true
secrets = [{{ source = "pw", uid = "1000", gid = "1001", mode = 0o444 }}, "tok"]

[services.tokonly]
image = "{BUSYBOX}"
command = ["sleep", "3600"]
secrets = ["tok"]

[services.plain]
image = "{BUSYBOX}"
command = ["sleep", "3600"]

[secrets.pw]
file = "secrets/pw.txt"

[secrets.tok]
env = "{TOKEN_VAR}"

[secrets.cmd]
command = ["cat", "secrets/cmd.txt"]
"""

SERVICES = ("app", "ro", "tokonly", "plain")


def _value(kind: str) -> str:
    return f"envd-{kind}-{secrets.token_hex(12)}"


@dataclass
class SecretProject:
    """A running-or-not project using three secrets, and every value it ever used."""

    dir: ProjectDir
    name: str
    client: Any
    state: Path
    values: dict[str, str] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)  # every value ever used (also rotated ones)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value
        self.seen.append(value)
        if name == "pw":
            (self.dir / "secrets" / "pw.txt").write_text(value)
        elif name == "cmd":
            # A trailing newline, as `pass show` prints: envd strips it.
            (self.dir / "secrets" / "cmd.txt").write_text(value + "\n")

    def env(self, **extra: str) -> dict[str, str]:
        # ENVD_ALLOW=1: the command source is approved for each run, as CI would (docs/security.md).
        return {
            TOKEN_VAR: self.values["tok"],
            "XDG_STATE_HOME": str(self.state),
            "ENVD_ALLOW": "1",
            **extra,
        }

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Any:
        """``envd ARGS`` in the project, with the token variable set."""
        from tests.helpers import run_envd

        return run_envd(args, cwd=self.dir, env=env or self.env(), timeout=timeout)

    def containers(self) -> dict[str, Any]:
        flt = {"label": f"dev.envd.project={self.name}"}
        return {
            c.labels["dev.envd.service"]: c
            for c in self.client.containers.list(all=True, filters=flt)
        }

    def ids(self) -> dict[str, str]:
        return {s: c.id for s, c in self.containers().items()}

    def exec(self, service: str, *cmd: str) -> tuple[int, str]:
        code, out = self.containers()[service].exec_run(list(cmd))
        return code, out.decode()

    def assert_absent(self, text: str, where: str) -> None:
        """None of the values, nor a plain (unkeyed) sha256 of one, occurs in ``text``."""
        for value in self.seen:
            assert value not in text, f"a secret value leaked into {where}"
            plain = hashlib.sha256(value.encode()).hexdigest()
            assert plain not in text, f"an unkeyed digest of a secret leaked into {where}"


@pytest.fixture(autouse=True)
def _no_hash_key_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hash key or secret value from the outside."""
    monkeypatch.delenv("ENVD_HASH_KEY", raising=False)
    monkeypatch.delenv(TOKEN_VAR, raising=False)


@pytest.fixture
def proj(
    project_dir: ProjectDir,
    project_name: str,
    docker_client: Any,
    busybox_image: str,
    tmp_path: Path,
) -> SecretProject:
    """The secrets project, written but not started; hash key under a private XDG_STATE_HOME."""
    project_dir.write(SPEC)
    (project_dir / "secrets").mkdir()
    p = SecretProject(project_dir, project_name, docker_client, tmp_path / "state")
    for name in ("pw", "tok", "cmd"):
        p.set(name, _value(name))
    return p


def _up(p: SecretProject, *extra: str) -> CompletedProcess[str]:
    proc: CompletedProcess[str] = p.run("up", "--once", "--json", *extra)
    assert proc.returncode == 0, describe(proc)
    return proc


def _stat(p: SecretProject, service: str, path: str) -> str:
    code, out = p.exec(service, "stat", "-c", "%a %u %g", path)
    assert code == 0, out
    return out.strip()


def test_secrets_delivered_as_files_with_owner_and_mode(proj: SecretProject) -> None:
    """File, env and command secrets land at /run/secrets/<target> with mode 0400 by default or the given uid/gid/mode."""
    _up(proj)
    v = proj.values
    assert proj.exec("app", "cat", "/run/secrets/pw") == (0, v["pw"])
    assert proj.exec("app", "cat", "/run/secrets/tok") == (0, v["tok"])
    assert proj.exec("app", "cat", "/run/secrets/cmd") == (0, v["cmd"]), "trailing newline kept"
    assert proj.exec("app", "cat", "/run/secrets/owned/pw") == (0, v["pw"])
    for target in ("pw", "tok", "cmd"):
        assert _stat(proj, "app", f"/run/secrets/{target}") == "400 0 0"
    assert _stat(proj, "app", "/run/secrets/owned/pw") == "440 1234 2345"
    # A read-only root filesystem: secrets still arrive, with their owner and mode.
    assert proj.containers()["ro"].attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert proj.exec("ro", "touch", "/probe")[0] != 0, "the root filesystem is writable"
    assert proj.exec("ro", "cat", "/run/secrets/pw") == (0, v["pw"])
    assert _stat(proj, "ro", "/run/secrets/pw") == "444 1000 1001"
    assert _stat(proj, "ro", "/run/secrets/tok") == "400 0 0"
    # Delivered as files only: never in the environment.
    for service in ("app", "ro", "tokonly"):
        code, env = proj.exec(service, "env")
        assert code == 0
        proj.assert_absent(env, f"the environment of {service}")
    assert proj.exec("plain", "ls", "/run/secrets")[0] != 0


def _inspect_everything(p: SecretProject) -> str:
    """``docker inspect`` (as JSON) of every container, network and volume of the project."""
    api = p.client.api
    flt = {"label": [f"dev.envd.project={p.name}"]}
    docs: list[Any] = []
    volume_names: set[str] = set()
    for c in api.containers(all=True, filters=flt):
        doc = api.inspect_container(c["Id"])
        docs.append(doc)
        volume_names.update(m["Name"] for m in doc.get("Mounts") or [] if m.get("Name"))
        docs.append(api.inspect_image(doc["Image"]))
    for n in api.networks(filters=flt):
        docs.append(api.inspect_network(n["Id"]))
    for v in (api.volumes(filters=flt) or {}).get("Volumes") or []:
        volume_names.add(v["Name"])
    for name in sorted(volume_names):
        docs.append(api.inspect_volume(name))
    return json.dumps(docs)


def _envd_state(p: SecretProject) -> str:
    """The names and contents of every file under the project's ``.envd/``."""
    out: list[str] = []
    root = p.dir / ".envd"
    for path in sorted(root.rglob("*")) if root.exists() else []:
        out.append(str(path))
        if path.is_file() and not stat.S_ISSOCK(path.lstat().st_mode):
            out.append(path.read_text(errors="replace"))
    return "\n".join(out)


def test_secret_values_appear_nowhere_but_in_the_container(proj: SecretProject) -> None:
    """No value (nor an unkeyed digest of one) shows in docker inspect, up/plan/status output, .envd/ or after down."""
    up = _up(proj)
    proj.assert_absent(up.stdout + up.stderr, "envd up --once --json")
    plain = proj.run("up", "--once")
    assert plain.returncode == 0, describe(plain)
    proj.assert_absent(plain.stdout + plain.stderr, "envd up --once")
    proj.assert_absent(_inspect_everything(proj), "docker inspect")
    for args in (("status", "--json"), ("status",), ("plan", "--json"), ("plan",)):
        proc = proj.run(*args)
        assert proc.returncode == 0, describe(proc)
        proj.assert_absent(proc.stdout + proc.stderr, f"envd {' '.join(args)}")
    # The config-hash label holds a keyed digest of the value: it changes with it.
    labels = {s: c.labels["dev.envd.config-hash"] for s, c in proj.containers().items()}
    proj.assert_absent(json.dumps(labels), "labels")
    proj.assert_absent(_envd_state(proj), ".envd/")
    logs = proj.run("logs")
    proj.assert_absent(logs.stdout + logs.stderr, "envd logs")

    # The read-only service's secrets live in an anonymous volume: down takes it along.
    ro = proj.client.api.inspect_container(proj.containers()["ro"].id)
    secret_volumes = [m["Name"] for m in ro["Mounts"] if m["Destination"] == "/run/secrets"]
    assert len(secret_volumes) == 1
    down = proj.run("down")
    assert down.returncode == 0, describe(down)
    proj.assert_absent(down.stdout + down.stderr, "envd down")
    names = {v["Name"] for v in (proj.client.api.volumes() or {}).get("Volumes") or []}
    assert secret_volumes[0] not in names, "a secret stayed on disk in a volume after down"
    assert proj.containers() == {}


def _read_events(proc: subprocess.Popen[str], lines: list[str], stop: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if stop.is_set():
            break


def test_daemon_log_events_and_control_api_never_carry_values(proj: SecretProject) -> None:
    """With a daemon: its status answers, event stream, log files and a rotation through it never show a value."""
    up = proj.run("up")
    assert up.returncode == 0, describe(up)
    first = proj.ids()
    events_cmd = [sys.executable, "-m", "envd", "events", "--json", "--since", "0"]
    events = subprocess.Popen(
        events_cmd,
        cwd=proj.dir,
        env=envd_env(proj.env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    stop = threading.Event()
    reader = threading.Thread(target=_read_events, args=(events, lines, stop), daemon=True)
    reader.start()
    try:
        status = proj.run("status", "--json")
        assert status.returncode == 0, describe(status)
        assert "daemon" in json.loads(status.stdout), "status did not come from the daemon"
        proj.assert_absent(status.stdout + status.stderr, "the daemon's status answer")
        # Rotate through the daemon: `envd up` asks it to reload.
        proj.set("pw", _value("pw-rotated"))
        again = proj.run("up")
        assert again.returncode == 0, describe(again)
        proj.assert_absent(again.stdout + again.stderr, "envd up (daemon)")
        assert proj.exec("app", "cat", "/run/secrets/pw") == (0, proj.values["pw"])
        now = proj.ids()
        assert now["plain"] == first["plain"] and now["tokonly"] == first["tokonly"]
        assert now["app"] != first["app"] and now["ro"] != first["ro"]
        wait_for(
            lambda: any('"recreate"' in line for line in lines),
            timeout=30,
            message="the event stream to show the recreate",
        )
    finally:
        stop.set()
        events.terminate()
        try:
            events.wait(timeout=15)
        except subprocess.TimeoutExpired:
            events.kill()
            events.wait(timeout=15)
        reader.join(timeout=15)
    proj.assert_absent("".join(lines), "envd events --json")
    state = _envd_state(proj)
    assert "daemon.log" in state
    proj.assert_absent(state, ".envd/ (daemon log, output, pid)")
    proj.assert_absent(_inspect_everything(proj), "docker inspect")
    down = proj.run("down")
    assert down.returncode == 0, describe(down)
    proj.assert_absent(down.stdout + down.stderr, "envd down")


def _plan_changes(p: SecretProject) -> dict[str, str]:
    proc = p.run("plan", "--json")
    assert proc.returncode == 0, describe(proc)
    return {
        a["service"]: a["reason"]
        for a in json.loads(proc.stdout)["actions"]
        if a["action"] != "ok" and a.get("service")
    }


@pytest.mark.parametrize(
    ("secret", "consumers"),
    [("pw", {"app", "ro"}), ("tok", {"app", "ro", "tokonly"}), ("cmd", {"app"})],
    ids=["file", "env", "command"],
)
def test_rotation_recreates_exactly_the_services_using_it(
    proj: SecretProject, secret: str, consumers: set[str]
) -> None:
    """A changed value recreates exactly the services that use the secret; the others keep their containers."""
    _up(proj)
    before = proj.ids()
    assert _plan_changes(proj) == {}
    proj.set(secret, _value(f"{secret}-rotated"))
    # plan runs no host command: app also uses the command secret, so its
    # secrets are "not checked" there; up reads them all.
    assert _plan_changes(proj) == {s: "changed: secrets" for s in consumers - {"app"}}
    up = _up(proj)
    proj.assert_absent(up.stdout + up.stderr, "envd up --once --json")
    after = proj.ids()
    assert {s for s in SERVICES if after[s] != before[s]} == consumers
    for service in consumers:
        assert proj.exec(service, "cat", f"/run/secrets/{secret}") == (0, proj.values[secret])
    assert all(c.status == "running" for c in proj.containers().values())
    assert _plan_changes(proj) == {}


def _missing_file(p: SecretProject) -> dict[str, str]:
    (p.dir / "secrets" / "pw.txt").unlink()
    return p.env()


def _unset_variable(p: SecretProject) -> dict[str, str]:
    env = p.env()
    del env[TOKEN_VAR]
    return env


def _failing_command(p: SecretProject) -> dict[str, str]:
    # The command prints the value on stderr before failing: envd must not relay it.
    spec = (p.dir / "envd.toml").read_text()
    (p.dir / "envd.toml").write_text(
        spec.replace(
            'command = ["cat", "secrets/cmd.txt"]',
            'command = ["sh", "-c", "cat secrets/cmd.txt; cat secrets/cmd.txt >&2; exit 3"]',
        )
    )
    return p.env()


@pytest.mark.parametrize(
    ("breaker", "path", "message"),
    [
        (
            _missing_file,
            "secrets.pw.file",
            "secret 'pw': file 'secrets/pw.txt' does not exist",
        ),
        (_unset_variable, "secrets.tok.env", f"environment variable {TOKEN_VAR} is not set"),
        (_failing_command, "secrets.cmd.command", "command exited with code 3"),
    ],
    ids=["missing-file", "unset-env", "failing-command"],
)
def test_unreadable_secret_exits_2_and_touches_nothing(
    proj: SecretProject, breaker: Callable[[SecretProject], dict[str, str]], path: str, message: str
) -> None:
    """A secret that cannot be read is exit 2 naming it, with the value nowhere, before anything is touched."""
    _up(proj)
    before = {
        s: (c.id, c.status, c.attrs["State"]["StartedAt"]) for s, c in proj.containers().items()
    }
    env = breaker(proj)
    for args in (("up", "--once"), ("plan",), ("up", "--once", "--force-recreate")):
        proc = proj.run(*args, env=env)
        if args == ("plan",) and breaker is _failing_command:
            # plan runs no host command, so it cannot find the command failing.
            assert proc.returncode == 0 and "Not run: " in proc.stdout, describe(proc)
            continue
        assert proc.returncode == 2, describe(proc)
        assert f"{path}: {message}" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        proj.assert_absent(proc.stdout + proc.stderr, f"the error of envd {' '.join(args)}")
    after = {
        s: (c.id, c.status, c.attrs["State"]["StartedAt"]) for s, c in proj.containers().items()
    }
    assert after == before, "a failed secret read touched containers"


def test_label_hash_uses_a_keyed_digest(proj: SecretProject) -> None:
    """The config-hash label is built from an HMAC keyed by the per-user key file, not a plain sha256 of the value."""
    from envd.core.desired import container_for
    from envd.inputs.keys import load_keys
    from envd.inputs.prepare import Target, prepare
    from envd.values import labels
    from envd.values.keys import Keys

    _up(proj)
    key_file = proj.state / "envd" / "hash-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    key = key_file.read_bytes()
    assert len(key) >= 32

    environ = {**os.environ, TOKEN_VAR: proj.values["tok"], "ENVD_ALLOW": "1"}
    keys = load_keys({"XDG_STATE_HOME": str(proj.state)})
    assert keys.hash_key == key

    def label_for(service: str, keys: Keys, plain: bool = False) -> str:
        _, desired = prepare(Target(str(proj.dir)), environ=environ, keys=keys, acting=True)
        svc = desired.services[service]
        if plain:
            digests = tuple(hashlib.sha256(f.value).hexdigest() for f in svc.template.secrets)
            svc = replace(svc, secret_digests=digests)
        image_id = proj.containers()[service].attrs["Image"]
        spec = container_for(desired, svc, 1, image_id)
        return spec.labels[labels.CONFIG_HASH]

    actual = proj.containers()["app"].labels[labels.CONFIG_HASH]
    assert label_for("app", keys) == actual, "the label is not reproducible from the keyed digest"
    # The same config hashed with plain sha256 of the value gives another label:
    # what is stored cannot be checked against guesses without the key.
    assert label_for("app", keys, plain=True) != actual
    # Another user's key gives another label too.
    assert label_for("app", Keys(b"someone else's key")) != actual
    assert keys.digest(b"x") != hashlib.sha256(b"x").hexdigest()
