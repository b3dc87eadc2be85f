"""The desired-state cache: a hit equals a fresh load, any changed input is a miss,
secret values never reach the file, and a file envd did not seal is ignored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from envd.core.desired import DesiredProject
from envd.inputs import desired_cache
from envd.inputs import keys as keymod
from envd.inputs.approvals import state_token
from envd.inputs.keys import load_keys
from envd.inputs.prepare import prepare, prepare_desired
from envd.inputs.target import Target

SECRET = b"cache-must-not-hold-this-42"

SPEC = """\
[project]
name = "cachy"

[services.api]
image = "api:1"
env = { GREETING = "${GREETING:-hi}" }
env_file = ["api.env"]
volumes = ["./site:/www:ro"]
secrets = ["token"]
depends_on = { db = "healthy" }

[services.db]
image = "postgres:16"
healthcheck = { test = ["CMD", "true"] }

[services.web]
build = "web"

[secrets.token]
file = "token.txt"
"""


@pytest.fixture(autouse=True)
def _own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test has its own per-user key, never the machine user's."""
    monkeypatch.delenv("ENVD_HASH_KEY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(keymod, "_FILE_KEYS", {})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "envd.toml").write_text(SPEC)
    (tmp_path / "api.env").write_text("MODE=dev\n")
    (tmp_path / "site").mkdir()
    (tmp_path / "token.txt").write_bytes(SECRET)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /\n")
    (tmp_path / "web" / "app.txt").write_text("v1\n")
    return tmp_path


def _env() -> dict[str, str]:
    return {"HOME": os.environ.get("HOME", "/root"), "PATH": os.environ.get("PATH", "")}


def _fresh(project: Path, env: dict[str, str]) -> DesiredProject:
    return prepare(Target(project_dir=str(project)), env)[1]


def _warm(project: Path, env: dict[str, str]) -> DesiredProject:
    desired = prepare_desired(Target(project_dir=str(project)), env)
    assert (project / ".envd" / desired_cache.CACHE_FILE).is_file()
    return desired


def _lookup(project: Path, env: dict[str, str]) -> DesiredProject | None:
    # prepare_desired keys the cache on this user's approval of the spec too.
    approval = state_token(project / "envd.toml", project, None, env)
    return desired_cache.lookup(Target(project_dir=str(project)), env, False, load_keys(), approval)


def test_a_hit_equals_a_fresh_load_including_secret_values(project: Path) -> None:
    env = _env()
    first = _warm(project, env)
    hit = _lookup(project, env)
    assert hit is not None
    assert hit == _fresh(project, env) == first
    api = hit.services["api"].template
    assert [s.value for s in api.secrets] == [SECRET]
    assert hit.services["api"].depends_on["db"].condition == "healthy"


def test_the_file_holds_no_secret_value_and_is_private(project: Path) -> None:
    _warm(project, _env())
    path = project / ".envd" / desired_cache.CACHE_FILE
    assert SECRET not in path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "change",
    [
        "spec",
        "variable",
        "env_file",
        "secret",
        "bind source gone",
        "build context",
        "dotenv",
        "lock",
    ],
)
def test_any_changed_input_is_a_miss(project: Path, change: str) -> None:
    env = _env()
    _warm(project, env)
    assert _lookup(project, env) is not None
    if change == "spec":
        spec = project / "envd.toml"
        spec.write_text(spec.read_text().replace('image = "api:1"', 'image = "api:2"'))
    elif change == "variable":
        env["GREETING"] = "hello"
    elif change == "env_file":
        (project / "api.env").write_text("MODE=prod\n")
    elif change == "secret":
        (project / "token.txt").write_bytes(SECRET + b"-rotated")
    elif change == "bind source gone":
        (project / "site").rmdir()
    elif change == "build context":
        (project / "web" / "app.txt").write_text("v2, a different size\n")
    elif change == "dotenv":
        (project / ".env").write_text("GREETING=yo\n")
    elif change == "lock":
        (project / "envd.lock").write_text("{}\n")
    assert _lookup(project, env) is None


def test_a_file_envd_did_not_seal_is_ignored(project: Path) -> None:
    """A flipped byte or an unsealed planted payload makes a miss."""
    env = _env()
    _warm(project, env)
    path = project / ".envd" / desired_cache.CACHE_FILE
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF  # one flipped byte in the body
    path.write_bytes(bytes(data))
    assert _lookup(project, env) is None
    path.write_bytes(b"\0" * 32 + b"cos\nsystem\n(S'echo pwned'\ntR.")  # a planted pickle
    assert _lookup(project, env) is None


def test_a_bad_spec_is_never_served_from_the_cache(project: Path) -> None:
    from envd.values.errors import SpecError

    env = _env()
    _warm(project, env)
    spec = project / "envd.toml"
    spec.write_text(spec.read_text().replace('image = "api:1"', 'imgae = "api:1"'))
    with pytest.raises(SpecError):
        prepare_desired(Target(project_dir=str(project)), env)


def test_a_hit_does_not_import_pydantic(project: Path) -> None:
    env = {**_env(), "ENVD_HASH_KEY": "ab" * 32}
    _code = (
        "import sys\n"
        "from envd.inputs.prepare import Target, prepare_desired\n"
        f"prepare_desired(Target(project_dir={str(project)!r}))\n"
        "print('pydantic' in sys.modules)\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    run_env = {**env, "PYTHONPATH": root}
    outs = [
        subprocess.run(
            [sys.executable, "-c", _code], env=run_env, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert outs == ["True", "False"]  # the first run loads and stores, the second hits


def test_a_command_secret_runs_once_per_up(tmp_path: Path) -> None:
    """Storing the entry digests the value the desired state was built with; it does not
    run the secret's command again (a rotating token would differ)."""
    (tmp_path / "envd.toml").write_text(
        '[services.api]\nimage = "api:1"\nsecrets = ["token"]\n\n'
        '[secrets.token]\ncommand = ["sh", "-c", "echo run >> runs.log; printf tok"]\n'
    )
    env = {**_env(), "ENVD_ALLOW": "1"}  # approved for this run (envd.inputs.consent)
    runs = tmp_path / "runs.log"
    first = prepare_desired(Target(project_dir=str(tmp_path)), env)  # a miss: load + store
    assert runs.read_text().count("run") == 1
    hit = prepare_desired(Target(project_dir=str(tmp_path)), env)  # a hit re-reads it once
    assert runs.read_text().count("run") == 2
    assert hit == first
    assert [s.value for s in hit.services["api"].template.secrets] == [b"tok"]


def test_the_shell_s_own_variables_do_not_make_a_miss(project: Path) -> None:
    """`_`, SHLVL and OLDPWD change with every way of starting envd (`time envd up`): still a hit."""
    env = _env() | {"_": "/usr/bin/envd", "SHLVL": "1", "OLDPWD": "/"}
    _warm(project, env)
    other = env | {"_": "/usr/bin/time", "SHLVL": "3", "OLDPWD": "/tmp"}
    assert _lookup(project, other) is not None


@pytest.mark.parametrize("reference", ["${SHLVL}", "$SHLVL", "${_}"])
def test_a_shell_variable_the_spec_names_stays_in_the_key(project: Path, reference: str) -> None:
    """A spec that reads one of the shell's own variables misses when it changes."""
    spec = project / "envd.toml"
    spec.write_text(spec.read_text().replace("${GREETING:-hi}", reference))
    env = _env() | {"_": "/usr/bin/envd", "SHLVL": "1"}
    _warm(project, env)
    assert _lookup(project, env | {"_": "/usr/bin/time", "SHLVL": "2"}) is None
