"""``envd.lock`` is committed: nothing in it may reveal a value interpolated into
the spec, it must be the same on every machine, and ``--frozen`` must still name
what drifted. An old-format lock pins images but asks to be regenerated."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from envd.engine.fake import FakeEngine
from envd.inputs import lock as lockfile
from envd.inputs.prepare import Target, prepare
from envd.run.lockgen import make_lock
from envd.values.errors import LockMismatch

SPEC = """\
[project]
name = "shop"

[services.db]
image = "postgres:16"
env = { POSTGRES_PASSWORD = "${PGPW}", POSTGRES_USER = "shop" }

[services.app]
image = "busybox:1"
command = ["sh", "-c", "echo ${PGPW:-none}"]

[environments.ci]
services.app.env = { MODE = "ci-${PGPW}" }
"""

SECRET = "hunter2"
# What an attacker would try first.
WORDS = ["123456", "password", "postgres", SECRET, "letmein", "qwerty", "admin", "secret"]


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever envd keeps per user goes to a temporary directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ENVD_HASH_KEY", raising=False)


def _project(root: Path, spec: str = SPEC) -> Target:
    root.mkdir(parents=True, exist_ok=True)
    (root / "envd.toml").write_text(spec)
    return Target(str(root))


def _lock_text(root: Path, value: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PGPW", value)
    return lockfile.render(make_lock(FakeEngine(), _project(root)))


def test_a_dictionary_attack_on_the_lock_finds_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relocking with each guess for ${PGPW} reproduces the committed lock for every guess alike,
    so the lock singles out none; neither the value nor a plain digest of it is in the file."""
    real = _lock_text(tmp_path / "real", SECRET, monkeypatch)
    found = [w for w in WORDS if _lock_text(tmp_path / w, w, monkeypatch) == real]
    assert found == WORDS, f"the lock depends on PGPW: guesses {found} reproduce it"
    assert SECRET not in real
    for fragment in re.findall(r"[0-9a-f]{8,}", real):
        for word in WORDS:
            assert fragment not in hashlib.sha256(word.encode()).hexdigest()


def test_the_lock_is_the_same_on_another_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other variable values (another machine, CI) do not make the committed lock drift."""
    target = _project(tmp_path)
    monkeypatch.setenv("PGPW", SECRET)
    lockfile.write(tmp_path, make_lock(FakeEngine(), target))
    monkeypatch.setenv("PGPW", "ci-password")
    for env in (None, "ci"):
        prepare(Target(str(tmp_path), environment=env), frozen=True, read_secret_values=False)


def test_frozen_still_names_the_field_that_drifted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edited command (as written) is drift naming the service and field, in every environment."""
    target = _project(tmp_path)
    monkeypatch.setenv("PGPW", SECRET)
    lockfile.write(tmp_path, make_lock(FakeEngine(), target))
    _project(tmp_path, SPEC.replace("echo ${PGPW:-none}", "echo ${PGPW:-nothing}"))
    with pytest.raises(LockMismatch) as caught:
        prepare(Target(str(tmp_path), environment="ci"), frozen=True, read_secret_values=False)
    lines = str(caught.value).splitlines()
    assert "the resolved spec of environment 'ci' changed since envd.lock was written" in lines
    assert "  ~ service 'app': changed command" in lines
    assert not any("'db'" in line for line in lines)


def test_an_overlay_change_is_drift_of_that_environment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed overlay makes its environment drift and leaves the base in sync."""
    target = _project(tmp_path)
    monkeypatch.setenv("PGPW", SECRET)
    lockfile.write(tmp_path, make_lock(FakeEngine(), target))
    _project(tmp_path, SPEC.replace('MODE = "ci-${PGPW}"', 'MODE = "ci2-${PGPW}"'))
    prepare(Target(str(tmp_path)), frozen=True, read_secret_values=False)
    with pytest.raises(LockMismatch, match="~ service 'app': changed env"):
        prepare(Target(str(tmp_path), environment="ci"), frozen=True, read_secret_values=False)


def test_a_format_1_lock_still_pins_images_but_frozen_asks_for_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old lock is read (its digests pin images) and --frozen says to re-run `envd lock`."""
    target = _project(tmp_path)
    monkeypatch.setenv("PGPW", SECRET)
    text = lockfile.render(make_lock(FakeEngine(), target))
    assert "version = 2\n" in text
    (tmp_path / "envd.lock").write_text(text.replace("version = 2\n", "version = 1\n"))
    old = lockfile.read(tmp_path)
    assert old is not None and old.version == 1
    _, desired = prepare(target, read_secret_values=False)
    assert desired.services["db"].image_ref.startswith("postgres@sha256:")
    with pytest.raises(LockMismatch) as caught:
        prepare(target, frozen=True, read_secret_values=False)
    assert "envd.lock is in format 1" in str(caught.value)
    assert "run `envd lock` and commit the new one" in str(caught.value)
    lockfile.write(tmp_path, make_lock(FakeEngine(), target))
    prepare(target, frozen=True, read_secret_values=False)


def test_an_unknown_lock_version_is_corrupt(tmp_path: Path) -> None:
    """A lock from a future envd is refused as corrupt, naming the file."""
    (tmp_path / "envd.lock").write_text("version = 3\n")
    with pytest.raises(LockMismatch, match=r"envd\.lock is corrupt"):
        lockfile.read(tmp_path)


def _within(seconds: float, call: Callable[[], object]) -> object:
    """``call()``'s result or exception, failing the test if it has not returned in ``seconds``."""
    result: list[object] = []

    def attempt() -> None:
        try:
            result.append(call())
        except Exception as exc:  # handed to the test thread
            result.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert not worker.is_alive(), "reading the lock blocked"
    return result[0]


def test_a_planted_temp_link_does_not_redirect_the_lock_write(tmp_path: Path) -> None:
    """A repository shipping `envd.lock.tmp -> victim` cannot make `envd lock` write the victim."""
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    project = tmp_path / "p"
    project.mkdir()
    (project / "envd.lock.tmp").symlink_to(victim)
    lockfile.write(project, lockfile.Lock({}))
    assert victim.read_text() == "keep me\n"
    assert (project / "envd.lock").is_file() and not (project / "envd.lock").is_symlink()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_lock_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    """A FIFO or a link to /dev/zero as envd.lock is refused with exit 2, never waited on or read."""
    path = tmp_path / "envd.lock"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    try:
        outcome = _within(5, lambda: lockfile.read(tmp_path))
    finally:
        if kind == "fifo":  # unblock a reader stuck in open, had it blocked
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    assert isinstance(outcome, LockMismatch) and outcome.exit_code == 2
    assert "envd.lock cannot be read" in str(outcome)
