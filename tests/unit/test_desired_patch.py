"""A spec edit served from the desired-state cache (envd.inputs.desired_patch) gives
exactly the desired state a full load gives, and every edit it cannot apply
exactly falls back to the full load (same result, same error)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envd.core.desired import DesiredProject
from envd.inputs import desired_cache
from envd.inputs import desired_codec as codec
from envd.inputs import keys as keymod
from envd.inputs import prepare as prepare_mod
from envd.inputs.prepare import prepare, prepare_desired
from envd.inputs.target import Target
from envd.values.errors import SpecError
from tests.helpers import toml_string

SPEC = """\
[project]
name = "patchy"

[services.api]
image = "api:1"
env = { MODE = "dev", COUNT = 1 }
secrets = ["token"]
depends_on = { db = "started" }
ports = ["8080:80"]

[services.db]
image = "postgres:16"
env_file = ["db.env"]
env = { POSTGRES_DB = "app" }

[services.worker]
image = "worker:1"
command = ["run"]

[services.tool]
image = "tool:1"
profiles = ["tools"]
env = { T = "1" }

[networks.default]
internal = false

[secrets.token]
file = "token.txt"

[environments.prod.services.db]
image = "postgres:17"
"""


@pytest.fixture(autouse=True)
def _own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test has its own per-user key, never the machine user's."""
    monkeypatch.delenv("ENVD_HASH_KEY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(keymod, "_FILE_KEYS", {})


def _project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "envd.toml").write_text(SPEC)
    (root / "db.env").write_text("POSTGRES_USER=u\n")
    (root / "token.txt").write_bytes(b"s3cret")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _project(tmp_path / "p")


ENV = {"HOME": os.environ.get("HOME", "/root"), "PATH": os.environ.get("PATH", ""), "V": "x"}


class Loads:
    """Counts the full loads ``prepare_desired`` falls back to."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loads]:
    seen = Loads()
    real = prepare_mod.prepare

    def counting(*args: object, **kwargs: object) -> object:
        seen.count += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prepare_mod, "prepare", counting)
    yield seen


def _up(project: Path, environment: str | None = None) -> DesiredProject:
    return prepare_desired(Target(project_dir=str(project), environment=environment), ENV)


def _full(project: Path, environment: str | None = None) -> DesiredProject:
    return prepare(Target(project_dir=str(project), environment=environment), ENV)[1]


def _edit(project: Path, old: str, new: str) -> None:
    spec = project / "envd.toml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new, 1))


# (old, new) edits the cache applies without a full load
APPLIED = {
    "one value": ('MODE = "dev"', 'MODE = "prod"'),
    "a number and a bool": ("COUNT = 1 }", "COUNT = 2.5, DEBUG = true }"),
    "env of a service with none": ('command = ["run"]', 'command = ["run"]\nenv = { W = "1" }'),
    "env removed": ('env = { MODE = "dev", COUNT = 1 }\n', ""),
    "an inactive service": ('T = "1"', 'T = "2"'),
    "a comment": ("[services.worker]", "# the worker\n[services.worker]"),
}
# edits it must leave to the full load
FALLBACK = {
    "interpolated": ('MODE = "dev"', 'MODE = "${V}"'),
    "dollar escape": ('MODE = "dev"', 'MODE = "a$$b"'),
    "a new service": (
        "[networks.default]",
        '[services.extra]\nimage = "x:1"\n\n[networks.default]',
    ),
    "a renamed network": ("[networks.default]", "[networks.front]"),
    "env next to env_file": ('POSTGRES_DB = "app"', 'POSTGRES_DB = "other"'),
    "the list form": ('env = { MODE = "dev", COUNT = 1 }', 'env = ["MODE=dev", "V"]'),
    "an image": ('image = "api:1"', 'image = "api:2"'),
    "env and image together": (
        'image = "api:1"\nenv = { MODE = "dev"',
        'image = "api:2"\nenv = { MODE = "prod"',
    ),
}
# edits that are errors: the same message as the full load, never a cached state
INVALID = {
    "depends_on a missing service": (
        'depends_on = { db = "started" }',
        'depends_on = { nope = "started" }',
    ),
    "an array as a value": ('MODE = "dev"', "MODE = [1, 2]"),
    "a table as a value": ('MODE = "dev"', "MODE = { a = 1 }"),
    "invalid TOML": ('MODE = "dev"', 'MODE = "dev'),
}


@pytest.mark.parametrize("edit", sorted(APPLIED))
def test_an_env_edit_is_applied_without_a_full_load(project: Path, loads: Loads, edit: str) -> None:
    """An edit of services' env tables gives the full load's desired state, from the cache."""
    _up(project)
    _edit(project, *APPLIED[edit])
    loads.count = 0
    patched = _up(project)
    assert loads.count == 0
    assert patched == _full(project)
    # ... and it is stored: the next up is a plain hit.
    assert (
        desired_cache.lookup(
            Target(project_dir=str(project)), ENV, False, keymod.load_keys(), _approval(project)
        )
        == patched
    )
    # Stored exactly as a whole new encoding would store it (only the changed
    # services were encoded again).
    doc = json.loads((project / ".envd" / desired_cache.CACHE_FILE).read_bytes()[32:])
    assert doc == codec.encode(desired_cache._decode_entry(doc))


def _approval(project: Path) -> str:
    from envd.inputs.approvals import state_token

    return state_token(project / "envd.toml", project, None, ENV)


@pytest.mark.parametrize("edit", sorted(FALLBACK))
def test_any_other_edit_loads_the_spec(project: Path, loads: Loads, edit: str) -> None:
    """An edit the cache cannot apply exactly is a full load, with its result."""
    _up(project)
    _edit(project, *FALLBACK[edit])
    loads.count = 0
    got = _up(project)
    assert loads.count == 1
    assert got == _full(project)


@pytest.mark.parametrize("edit", sorted(INVALID))
def test_an_invalid_edit_fails_as_the_full_load_does(
    project: Path, loads: Loads, edit: str
) -> None:
    """A bad value gives the full load's error (file:line, field), never a cached state."""
    _up(project)
    _edit(project, *INVALID[edit])
    with pytest.raises(SpecError) as full:
        _full(project)
    with pytest.raises(SpecError) as via_cache:
        _up(project)
    assert str(via_cache.value) == str(full.value)
    assert "envd.toml:" in str(full.value)


def test_frozen_is_left_to_the_full_load(project: Path, loads: Loads) -> None:
    """With --frozen the lock's digests of each service (env included) are checked:
    an env edit is loaded in full, and refused as the full load refuses it."""
    from envd.engine.fake import FakeEngine
    from envd.inputs import lock as lockfile
    from envd.run.lockgen import make_lock
    from envd.values.errors import LockMismatch

    target = Target(project_dir=str(project))
    engine = FakeEngine()
    for ref in ("api:1", "postgres:16", "postgres:17", "worker:1", "tool:1"):
        engine.add_image(ref)
    lockfile.write(project, make_lock(engine, target))
    prepare_desired(target, ENV, frozen=True)  # the lock matches: stored
    _edit(project, *APPLIED["one value"])
    loads.count = 0
    with pytest.raises(LockMismatch) as via_cache:
        prepare_desired(target, ENV, frozen=True)
    assert loads.count == 1
    assert "does not match the spec (--frozen)" in str(via_cache.value)


def test_an_environment_overlay_on_the_service_falls_back(project: Path, loads: Loads) -> None:
    """With an environment selected, a service its overlay touches is loaded in full;
    one it does not touch is applied from the cache."""
    _up(project, "prod")
    _edit(project, 'MODE = "dev"', 'MODE = "prod"')
    loads.count = 0
    assert _up(project, "prod") == _full(project, "prod")
    assert loads.count == 0
    _edit(project, 'POSTGRES_DB = "app"', 'POSTGRES_DB = "x"')  # db: overlaid (and env_file)
    assert _up(project, "prod") == _full(project, "prod")
    assert loads.count == 1


_KEYS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
_VALUES = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return toml_string(v) if isinstance(v, str) else str(v)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(env=st.dictionaries(_KEYS, _VALUES, max_size=5), which=st.sampled_from(["api", "worker"]))
def test_any_env_table_gives_the_full_load_s_state(
    tmp_path_factory: pytest.TempPathFactory, loads: Loads, env: dict[str, object], which: str
) -> None:
    """Whatever env table an edit writes (strings, numbers, bools, odd keys), the
    result equals a full load's, applied or fallen back."""
    project = _project(tmp_path_factory.mktemp("prop"))
    _up(project)
    table = "{ " + ", ".join(f"{toml_string(k)} = {_toml_value(v)}" for k, v in env.items()) + " }"
    if which == "api":
        _edit(project, 'env = { MODE = "dev", COUNT = 1 }', f"env = {table}")
    else:
        _edit(project, 'command = ["run"]', f'command = ["run"]\nenv = {table}')
    loads.count = 0
    assert _up(project) == _full(project)
    plain = not any("$" in v for v in env.values() if isinstance(v, str))
    assert loads.count == (0 if plain else 1)
