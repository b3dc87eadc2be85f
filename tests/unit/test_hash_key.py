"""The per-user hash key fails closed: weak or unsafe keys are refused (exit 2),
a new key is durable before it is visible, and each use has its own key."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from pathlib import Path

import pytest

from envd.inputs import keys as keymod
from envd.inputs.keys import HashKeyRefused, key_file, load_keys
from envd.values.keys import Keys

GOOD_HEX = "0123456789abcdef" * 4


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment whose key file lives in a fresh directory, and no cached key."""
    monkeypatch.setattr(keymod, "_FILE_KEYS", {})
    return {"XDG_STATE_HOME": str(tmp_path / "state")}


def _plant(state: dict[str, str], data: bytes, mode: int = 0o600) -> Path:
    path = key_file(state)
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    "value",
    ["test-key", "a" * 63, "A" * 42, "x" * 20 + "!" * 50, "é" * 64],
    ids=["short", "63-hex", "42-base64", "not-base64", "not-ascii"],
)
def test_a_weak_env_key_is_refused_with_exit_2(value: str) -> None:
    """ENVD_HASH_KEY below 32 bytes of entropy (64 hex / 43 base64 characters) is refused in one sentence."""
    with pytest.raises(HashKeyRefused) as caught:
        load_keys({"ENVD_HASH_KEY": value})
    assert caught.value.exit_code == 2
    assert "ENVD_HASH_KEY" in str(caught.value) and "\n" not in str(caught.value)
    assert value not in str(caught.value)  # the key itself is never echoed


@pytest.mark.parametrize("value", [GOOD_HEX, "Zm9v" * 10 + "YmE", "q" * 43 + "=", GOOD_HEX + "\n"])
def test_a_strong_env_key_is_used_as_given(value: str) -> None:
    """A 64-hex or 43-base64 key is accepted and used as the bytes given, so labels do not change."""
    assert load_keys({"ENVD_HASH_KEY": value}).hash_key == value.encode()


def test_label_digests_stay_what_earlier_envd_made() -> None:
    """The label digest is HMAC-SHA256 under the root key itself: an upgrade recreates no container."""
    keys = Keys(b"unit-test-hash-key")
    want = "663f8bf8e97d841f63dc9a3c28db037e5b122ec2ad10b4f9a95ef019d8de7be5"
    assert keys.digest(b"hunter2") == want
    assert want == hmac.new(b"unit-test-hash-key", b"hunter2", hashlib.sha256).hexdigest()


def test_each_use_has_its_own_derived_key() -> None:
    """The cache key and the seal key differ from each other, from the root and from every label digest."""
    keys = Keys(GOOD_HEX.encode())
    derived = {keys.cache_key, keys.seal_key}
    assert len(derived) == 2 and keys.hash_key not in derived
    assert all(len(k) == 32 for k in derived)
    # A secret whose value is a context string must not put a derived key in a label.
    from envd.values.keys import CACHE_CONTEXT, SEAL_CONTEXT

    labels = {bytes.fromhex(keys.digest(c)) for c in (CACHE_CONTEXT, SEAL_CONTEXT)}
    labels |= {bytes.fromhex(keys.digest(c + b"\x01")) for c in (CACHE_CONTEXT, SEAL_CONTEXT)}
    assert not labels & derived
    assert Keys(b"another root").seal_key != keys.seal_key
    assert "hash_key" not in repr(keys) and GOOD_HEX not in repr(keys)


def test_a_new_key_is_64_hex_private_and_reused(state: dict[str, str]) -> None:
    """The first use creates a 0600 key of 64 hex digits; the next use reads the same key."""
    first = load_keys(state)
    path = key_file(state)
    assert len(first.hash_key) == 64 and int(first.hash_key, 16) >= 0
    assert path.stat().st_mode & 0o777 == 0o600
    keymod._FILE_KEYS.clear()
    assert load_keys(state) == first
    assert [p.name for p in path.parent.iterdir()] == ["hash-key"]  # no temp file left


def test_the_key_is_fsynced_before_it_is_linked_into_place(
    state: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """File and directory are fsync'd before the link, so a crash never leaves an empty key."""
    calls: list[str] = []
    real_fsync, real_link = os.fsync, os.link
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "link", lambda a, b: (calls.append("link"), real_link(a, b))[1])
    load_keys(state)
    assert calls[:3] == ["fsync", "fsync", "link"], calls


@pytest.mark.parametrize(
    "data", [b"", b"abc", GOOD_HEX[:-1].encode(), (GOOD_HEX + "00").encode(), b"z" * 64]
)
def test_an_empty_or_malformed_key_file_is_refused_not_used_nor_replaced(
    state: dict[str, str], data: bytes
) -> None:
    """An empty (crash-left) or wrong-length key file stops envd with exit 2 and is left as it was."""
    path = _plant(state, data)
    with pytest.raises(HashKeyRefused) as caught:
        load_keys(state)
    assert caught.value.exit_code == 2 and str(path) in str(caught.value)
    assert path.read_bytes() == data


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o666], ids=lambda m: f"{m:04o}")
def test_a_key_file_others_can_read_or_write_is_refused(state: dict[str, str], mode: int) -> None:
    """A key file readable or writable by group or others is refused, naming its mode."""
    _plant(state, GOOD_HEX.encode(), mode)
    with pytest.raises(HashKeyRefused, match="readable or writable by others"):
        load_keys(state)


def test_a_key_file_that_is_a_link_is_refused(state: dict[str, str], tmp_path: Path) -> None:
    """The key file is opened without following links: a planted link is refused, never read."""
    elsewhere = tmp_path / "their-key"
    elsewhere.write_text(GOOD_HEX)
    elsewhere.chmod(0o600)
    path = key_file(state)
    path.parent.mkdir(parents=True, mode=0o700)
    path.symlink_to(elsewhere)
    with pytest.raises(HashKeyRefused, match="not a link"):
        load_keys(state)


def test_a_key_file_that_is_a_fifo_is_refused_without_waiting(state: dict[str, str]) -> None:
    """A FIFO at the key path is refused at once instead of blocking the open."""
    path = key_file(state)
    path.parent.mkdir(parents=True, mode=0o700)
    os.mkfifo(path, 0o600)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            load_keys(state)
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():  # unblock the stuck open before failing
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading the key blocked on a FIFO")
    assert isinstance(outcome[0], HashKeyRefused) and "not a regular file" in str(outcome[0])


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_key_file_owned_by_someone_else_is_refused(state: dict[str, str]) -> None:
    """A key file another user owns (and so could have chosen) is refused."""
    path = _plant(state, GOOD_HEX.encode())
    os.chown(path, 65534, 65534)
    with pytest.raises(HashKeyRefused, match="belongs to uid 65534"):
        load_keys(state)
