"""Configs (Compose's ``configs``): the spec, the desired state, reading, caching, consent, applying."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from envd.core.desired import canonical, desire
from envd.engine.fake import FakeEngine
from envd.inputs import desired_cache
from envd.inputs import desired_codec as codec
from envd.inputs import keys as keymod
from envd.inputs.approvals import state_token
from envd.inputs.configs import read_configs
from envd.inputs.consent import reach
from envd.inputs.keys import load_keys
from envd.inputs.prepare import prepare, prepare_desired
from envd.inputs.target import Target
from envd.run.converge import converge
from envd.spec.load import LoadedSpec, load
from envd.values.errors import SpecError
from envd.values.events import FakeClock
from envd.values.keys import Keys
from envd.values.types import ConfigFile, ContainerCreate

KEYS = Keys(b"unit-test-hash-key")

SPEC = """\
[project]
name = "cfg"

[services.web]
image = "nginx"
configs = ["site", { source = "motd", target = "etc/motd", uid = "101", gid = 101, mode = 0o440 }]

[configs.site]
file = "site.conf"

[configs.motd]
content = "hello ${WHO:-world}"
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
    root.mkdir()
    (root / "envd.toml").write_text(SPEC)
    (root / "site.conf").write_text("server { listen 80; }\n")
    return root


def _load(root: Path, spec: str | None = None, environ: dict[str, str] | None = None) -> LoadedSpec:
    if spec is not None:
        (root / "envd.toml").write_text(textwrap.dedent(spec))
    return load(root, environ=environ or {})


def _problems(root: Path, spec: str) -> str:
    with pytest.raises(SpecError) as info:
        _load(root, spec)
    return str(info.value)


# --------------------------------------------------------------------------- spec


def test_short_and_long_syntax_with_compose_defaults(project: Path) -> None:
    """A bare name targets /NAME, root-owned, mode 0444; a relative target is taken from /."""
    web = _load(project).spec.services["web"]
    site, motd = web.configs
    assert (site.path, site.uid, site.gid, site.mode) == ("/site", "0", "0", 0o444)
    assert (motd.path, motd.uid, motd.gid, motd.mode) == ("/etc/motd", "101", "101", 0o440)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('configs = ["nope"]', "uses undefined config 'nope'"),
        (
            'configs = ["site", { source = "site", target = "/site" }]',
            "both target /site",
        ),
        ('configs = [{ source = "site", target = "/data/x" }]\nvolumes = ["d:/data"]', "volume"),
        ('configs = [{ source = "site", target = "/a/../etc/passwd" }]', "'..'"),
        ('configs = [{ source = "site", uid = "root" }]', "not a numeric id"),
        ('configs = [{ source = "site", gid = "99999999999999999999" }]', "largest id"),
        ('configs = ["site"]\nread_only = true', "read-only root filesystem"),
    ],
)
def test_bad_service_configs_are_refused(project: Path, body: str, fragment: str) -> None:
    """Undefined sources, clashing targets, targets under mounts, '..', names as ids and read_only fail validation."""
    spec = f'[services.web]\nimage = "x"\n{body}\n\n[volumes.d]\n\n[configs.site]\ncontent = "x"\n'
    assert fragment in _problems(project, spec)


@pytest.mark.parametrize(
    "definition",
    ['file = "a"\ncontent = "b"', "", 'file = "missing.conf"'],
    ids=["two sources", "no source", "missing file"],
)
def test_config_definitions_need_one_existing_source(project: Path, definition: str) -> None:
    """A config names exactly one of file, content, environment, and its file must exist."""
    spec = f'[services.web]\nimage = "x"\nconfigs = ["c"]\n\n[configs.c]\n{definition}\n'
    message = _problems(project, spec)
    assert "configs.c" in message


# --------------------------------------------------------------------------- desired state


def test_desired_configs_carry_content_and_change_the_hash(project: Path) -> None:
    """Each config becomes a file with its content; new content changes the config hash."""
    loaded = _load(project)
    values = read_configs(loaded)
    assert values == {"site": b"server { listen 80; }\n", "motd": b"hello world"}
    t = desire(loaded, {}, keys=KEYS, config_values=values).services["web"].template
    assert t.configs == (
        ConfigFile("/site", 0, 0, 0o444, b"server { listen 80; }\n"),
        ConfigFile("/etc/motd", 101, 101, 0o440, b"hello world"),
    )
    changed = desire(loaded, {}, keys=KEYS, config_values={**values, "site": b"other"})
    assert canonical(changed.services["web"].template) != canonical(t)


def test_a_container_without_configs_hashes_as_before() -> None:
    """No configs, no `configs` key in the hashed view: existing containers are not recreated."""
    assert "configs" not in canonical(ContainerCreate(name="a", image="x", labels={}))


def test_environment_configs_read_the_spec_variables(project: Path) -> None:
    """An `environment` config reads the process environment over .env; an unset one is a clear error."""
    spec = '[services.web]\nimage = "x"\nconfigs = ["c"]\n\n[configs.c]\nenvironment = "CFG"\n'
    (project / ".env").write_text("CFG=from-dotenv\n")
    assert read_configs(_load(project, spec)) == {"c": b"from-dotenv"}
    assert read_configs(_load(project, None, {"CFG": "from-env"})) == {"c": b"from-env"}
    (project / ".env").unlink()
    with pytest.raises(SpecError, match="environment variable CFG is not set"):
        read_configs(_load(project))


def test_up_sends_the_daemon_a_config_variable(project: Path) -> None:
    """The variable an `environment` config names reaches the daemon `up` starts (it gets only referenced ones)."""
    from envd.daemon.process import spec_environ

    spec = '[services.web]\nimage = "x"\nconfigs = ["c"]\n\n[configs.c]\nenvironment = "CFG_VAR"\n'
    (project / "envd.toml").write_text(spec)
    sent = spec_environ(project / "envd.toml", project, {"CFG_VAR": "v", "OTHER": "o"})
    assert sent.get("CFG_VAR") == "v" and "OTHER" not in sent


def test_teardown_needs_no_config_content(project: Path) -> None:
    """`down` loads without reading configs: an unset `environment` variable does not stop it."""
    spec = (
        '[services.web]\nimage = "x"\nconfigs = ["c"]\n\n[configs.c]\nenvironment = "UNSET_CFG"\n'
    )
    (project / "envd.toml").write_text(spec)
    target = Target(project_dir=str(project))
    with pytest.raises(SpecError, match="UNSET_CFG"):
        prepare(target, {})
    _, desired = prepare(target, {}, read_secret_values=False)
    assert desired.services["web"].template.configs[0].target == "/c"


def test_a_fifo_config_file_is_refused_without_blocking(project: Path) -> None:
    """A config file swapped for a FIFO after validation is refused at once (a read would wait for a writer)."""
    loaded = _load(project)
    (project / "site.conf").unlink()
    os.mkfifo(project / "site.conf")
    with pytest.raises(SpecError, match="not a regular file"):
        read_configs(loaded)


def test_codec_round_trips_configs_and_reads_caches_without_them() -> None:
    """The desired cache keeps a config's (not secret) content; a cache written before configs still decodes."""
    spec = ContainerCreate(
        name="a", image="x", labels={}, configs=(ConfigFile("/c", 1, 2, 0o400, b"\x00\xffdata"),)
    )
    decoded = codec._container(codec.encode(spec))
    assert decoded == spec
    older = codec.encode(ContainerCreate(name="a", image="x", labels={}))
    assert codec._container(older).configs == ()
    with pytest.raises(codec.BadCache):
        codec._container({**codec.encode(spec), "configs": [{"target": "/c"}]})  # type: ignore[dict-item]


def test_changed_config_file_misses_the_desired_cache(project: Path) -> None:
    """`up` does not serve a desired state whose config file changed since it was cached."""
    env = {"PATH": os.environ.get("PATH", ""), "ENVD_ALLOW": "1"}
    target = Target(project_dir=str(project))
    first = prepare_desired(target, env)
    approval = state_token(project / "envd.toml", project, None, env)
    assert desired_cache.lookup(target, env, False, load_keys(), approval) == first
    (project / "site.conf").write_text("server { listen 8080; }\n")
    assert desired_cache.lookup(target, env, False, load_keys(), approval) is None
    again = prepare(target, env)[1].services["web"].template.configs[0]
    assert again.value == b"server { listen 8080; }\n"


def test_a_config_file_outside_the_project_needs_consent(project: Path, tmp_path: Path) -> None:
    """A config `file` outside the project is something to approve, like a bind mount."""
    outside = tmp_path / "elsewhere.conf"
    outside.write_text("x")
    spec = f'[services.web]\nimage = "x"\nconfigs = ["c"]\n\n[configs.c]\nfile = "{outside}"\n'
    items = reach(_load(project, spec), {})
    assert [(i.kind, i.subject, i.what) for i in items] == [
        ("config-file", "config 'c'", (str(outside),))
    ]
    assert "reads" in items[0].describe() and "outside the project" in items[0].describe()
    inside = '[services.web]\nimage = "x"\nconfigs = ["c"]\n\n[configs.c]\nfile = "site.conf"\n'
    assert reach(_load(project, inside), {}) == []


# --------------------------------------------------------------------------- applying


def test_up_delivers_configs_and_recreates_on_new_content(project: Path) -> None:
    """Converging writes each config into the container; changed content recreates it with the new file."""
    engine = FakeEngine(auto_healthy=True)
    engine.add_image("nginx")
    loaded = _load(project)
    desired = desire(loaded, {}, keys=KEYS, config_values=read_configs(loaded))
    converge(engine, desired, clock=FakeClock(), timeout=60)
    (first,) = engine.list_containers("cfg")
    files = engine._containers[first.id].files
    assert files["/site"].data == b"server { listen 80; }\n"
    assert (files["/etc/motd"].mode, files["/etc/motd"].uid) == (0o440, 101)

    (project / "site.conf").write_text("server { listen 81; }\n")
    loaded = _load(project)
    desired = desire(loaded, {}, keys=KEYS, config_values=read_configs(loaded))
    converge(engine, desired, clock=FakeClock(), timeout=60)
    (second,) = engine.list_containers("cfg")
    assert second.id != first.id
    assert engine._containers[second.id].files["/site"].data == b"server { listen 81; }\n"
