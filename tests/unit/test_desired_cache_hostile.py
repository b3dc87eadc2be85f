"""A planted or tampered ``.envd/desired.cache`` is ignored: never executed,
never followed through a link, never read when it is not a small regular file
of ours, and never waited on."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import pickle
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from envd.core.desired import DesiredProject
from envd.inputs import desired_cache
from envd.inputs import desired_codec as codec
from envd.inputs import keys as keymod
from envd.inputs.approvals import state_token
from envd.inputs.keys import load_keys
from envd.inputs.prepare import prepare, prepare_desired
from envd.inputs.target import Target

SPEC = """\
[project]
name = "hostile"

[services.api]
image = "api:1"
env = { MODE = "dev" }
ports = ["8080:80"]
volumes = ["data:/data"]
healthcheck = { test = ["CMD", "true"] }
secrets = ["token"]

[services.web]
build = "web"
depends_on = { api = "healthy" }

[secrets.token]
file = "token.txt"

[volumes.data]
"""


@pytest.fixture(autouse=True)
def _own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test has its own per-user key, never the machine user's."""
    monkeypatch.delenv("ENVD_HASH_KEY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(keymod, "_FILE_KEYS", {})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    (root / "web").mkdir(parents=True)
    (root / "web" / "Dockerfile").write_text("FROM scratch\n")
    (root / "envd.toml").write_text(SPEC)
    (root / "token.txt").write_bytes(b"s3cret")
    return root


ENV = {"PATH": os.environ.get("PATH", "")}


def _warm(project: Path) -> Path:
    prepare_desired(Target(str(project)), ENV)
    path = project / ".envd" / desired_cache.CACHE_FILE
    assert _lookup(project) is not None
    return path


def _lookup(project: Path) -> DesiredProject | None:
    # prepare_desired keys the cache on this user's approval of the spec too.
    approval = state_token(project / "envd.toml", project, None, ENV)
    return desired_cache.lookup(Target(str(project)), ENV, False, load_keys(), approval)


def _within(seconds: float, call: Callable[[], object]) -> object:
    """``call()``'s result, failing the test if it has not returned in ``seconds``."""
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(call()), daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert not worker.is_alive(), "the cache lookup blocked"
    return result[0]


def test_the_cache_is_sealed_json_not_a_pickle(project: Path) -> None:
    """The body after the 32-byte seal is JSON, sealed with the derived seal key, not the root key."""
    raw = _warm(project).read_bytes()
    keys = load_keys()
    assert raw[:32] == keys.seal(raw[32:])
    assert raw[:32] != hmac.new(keys.hash_key, raw[32:], hashlib.sha256).digest()
    assert json.loads(raw[32:])["desired"]["project"] == "hostile"
    assert b"s3cret" not in raw
    assert _lookup(project) == prepare(Target(str(project)), ENV)[1]


@pytest.mark.parametrize("seal_with", ["root key", "seal key"])
def test_a_planted_pickle_never_runs(project: Path, tmp_path: Path, seal_with: str) -> None:
    """A pickle that would run code is a miss even when sealed with the user's own keys."""
    path = _warm(project)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
            return (os.system, (f"touch {marker}",))

    body = pickle.dumps(Payload())
    keys = load_keys()
    seal = (
        hmac.new(keys.hash_key, body, hashlib.sha256).digest()
        if seal_with == "root key"
        else keys.seal(body)
    )
    path.write_bytes(seal + body)
    assert _lookup(project) is None
    assert not marker.exists(), "the planted pickle ran"


def test_valid_json_with_a_bad_seal_is_ignored(project: Path) -> None:
    """An edited entry (the image swapped) under the old seal is a miss, not a hit."""
    path = _warm(project)
    raw = path.read_bytes()
    edited = raw[32:].replace(b'"api:1"', b'"evil:1"')
    assert edited != raw[32:]
    path.write_bytes(raw[:32] + edited)
    assert _lookup(project) is None


def test_json_sealed_but_mistyped_is_a_miss(project: Path) -> None:
    """A sealed entry whose fields have the wrong types is refused by the typed decoders."""
    path = _warm(project)
    data = json.loads(path.read_bytes()[32:])
    data["desired"]["services"]["api"]["replicas"] = "1"
    body = json.dumps(data).encode()
    path.write_bytes(load_keys().seal(body) + body)
    assert _lookup(project) is None


def test_a_link_to_dev_zero_is_not_followed(project: Path) -> None:
    """``desired.cache -> /dev/zero`` is a miss at once, without reading the device."""
    path = _warm(project)
    path.unlink()
    path.symlink_to("/dev/zero")
    assert _within(5, lambda: _lookup(project)) is None


def test_a_link_to_a_valid_cache_is_not_followed(project: Path, tmp_path: Path) -> None:
    """Even a link to a genuine, sealed cache file is not followed (O_NOFOLLOW)."""
    path = _warm(project)
    elsewhere = tmp_path / "genuine.cache"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    assert _lookup(project) is None


def test_a_fifo_is_a_miss_without_waiting(project: Path) -> None:
    """A FIFO planted as the cache does not block the lookup."""
    path = _warm(project)
    path.unlink()
    os.mkfifo(path, 0o600)
    try:
        assert _within(5, lambda: _lookup(project)) is None
    finally:
        # Unblock a reader stuck in open, if the lookup had blocked.
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


def test_a_fifo_as_a_keyed_input_is_a_miss_without_waiting(project: Path) -> None:
    """A FIFO planted as envd.lock (an input of the cache key) makes a miss, not a hang."""
    _warm(project)
    lock = project / "envd.lock"
    os.mkfifo(lock, 0o600)
    try:
        assert _within(5, lambda: _lookup(project)) is None
    finally:
        try:
            os.close(os.open(lock, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


def test_a_huge_file_is_refused_before_reading(project: Path) -> None:
    """A cache file above the size cap is a miss (sparse, so the test writes no data)."""
    path = _warm(project)
    with open(path, "r+b") as fh:
        fh.truncate(desired_cache.MAX_BYTES + 1)
    assert _lookup(project) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_cache_owned_by_someone_else_is_a_miss(project: Path) -> None:
    """A cache file another user owns is not read, sealed or not."""
    path = _warm(project)
    os.chown(path, 65534, 65534)
    assert _lookup(project) is None


def test_a_store_replaces_a_planted_link_not_its_target(project: Path, tmp_path: Path) -> None:
    """Writing the cache renames over a planted link; the file it pointed at is untouched."""
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (project / ".envd").mkdir()
    (project / ".envd" / desired_cache.CACHE_FILE).symlink_to(victim)
    prepare_desired(Target(str(project)), ENV)
    assert victim.read_text() == "keep me\n"
    path = project / ".envd" / desired_cache.CACHE_FILE
    assert not path.is_symlink() and path.stat().st_mode & 0o777 == 0o600


def test_every_cached_dataclass_field_has_a_decoder() -> None:
    """A field added to a cached dataclass must get a decoder, or a hit would drop it."""
    for cls, table in codec.TABLES.items():
        wanted = {f.name for f in dataclasses.fields(cls) if f.init}
        assert set(table) == wanted, cls.__name__


@pytest.mark.parametrize(
    "module", ["values/labels.py", "spec/interpolate.py", "core/desired.py", "inputs/secrets.py"]
)
def test_the_code_fingerprint_covers_every_layer_a_desired_state_comes_from(module: str) -> None:
    """A change to a module of values, spec, core or inputs (not only envd/inputs) is a miss."""
    import envd

    path = Path(envd.__file__).parent / module
    before = desired_cache._code_fingerprint()
    st = path.stat()
    try:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert desired_cache._code_fingerprint() != before
    finally:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
