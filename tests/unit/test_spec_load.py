"""Loading ``envd.toml``: short and long syntaxes, overlays, profiles, and located errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from envd.spec.checks import find_cycle
from envd.spec.load import LoadedSpec, deep_merge, load, sanitize_project_name
from envd.spec.locate import Locator
from envd.spec.models import Dependency, Port, ServiceSecret, VolumeMount
from envd.values.errors import SpecError, SpecProblem
from envd.values.keys import Keys


def write_project(
    root: Path, spec: str, files: Iterable[str] = (), extra: Mapping[str, str] | None = None
) -> Path:
    """A project directory with ``envd.toml``; ``files`` ending in ``/`` are directories."""
    (root / "envd.toml").write_text(spec, encoding="utf-8")
    for name in files:
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("X=1\n", encoding="utf-8")
    for name, text in (extra or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def load_spec(
    root: Path,
    spec: str,
    files: Iterable[str] = (),
    *,
    environment: str | None = None,
    environ: Mapping[str, str] | None = None,
    profiles: frozenset[str] = frozenset(),
    extra: Mapping[str, str] | None = None,
) -> LoadedSpec:
    write_project(root, spec, files, extra)
    return load(root, environment=environment, environ=environ or {}, profiles=profiles)


def one_service(tmp_path: Path, body: str, files: Iterable[str] = ()) -> LoadedSpec:
    return load_spec(tmp_path, f'[services.s]\nimage = "img"\n{body}\n', files)


# --------------------------------------------------------------------------- ports


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ('["80"]', [Port(target=80)]),
        ("[80]", [Port(target=80)]),
        ('["8080:80"]', [Port(target=80, published=8080)]),
        ('["127.0.0.1:8080:80"]', [Port(target=80, published=8080, host_ip="127.0.0.1")]),
        ('["127.0.0.1::80"]', [Port(target=80, host_ip="127.0.0.1")]),
        ('["[::1]:8080:80"]', [Port(target=80, published=8080, host_ip="::1")]),
        ('["[::]:53:53/udp"]', [Port(target=53, published=53, host_ip="::", protocol="udp")]),
        ('["53/udp"]', [Port(target=53, protocol="udp")]),
        ('["9000/sctp"]', [Port(target=9000, protocol="sctp")]),
        (
            '["8000-8001:9000-9001"]',
            [Port(target=9000, published=8000), Port(target=9001, published=8001)],
        ),
        ('["3000-3002"]', [Port(target=3000), Port(target=3001), Port(target=3002)]),
        (
            '[{ target = 80, published = "8080", host_ip = "127.0.0.1", protocol = "udp" }]',
            [Port(target=80, published=8080, host_ip="127.0.0.1", protocol="udp")],
        ),
        ("[{ target = 80 }]", [Port(target=80)]),
        (
            '["80", { target = 443, published = 8443 }]',
            [Port(target=80), Port(target=443, published=8443)],
        ),
        ("[]", []),
    ],
)
def test_ports_short_and_long_syntax(tmp_path: Path, ports: str, expected: list[Port]) -> None:
    """Every port spelling (IP, IPv6 in brackets, ranges, protocols, tables) normalises to Port."""
    loaded = one_service(tmp_path, f"ports = {ports}")
    assert loaded.spec.services["s"].ports == expected


# --------------------------------------------------------------------------- volumes


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        ('["data:/var/data"]', [VolumeMount(type="volume", source="data", target="/var/data")]),
        (
            '["data:/var/data:ro"]',
            [VolumeMount(type="volume", source="data", target="/var/data", read_only=True)],
        ),
        (
            '["./site:/www:ro"]',
            [VolumeMount(type="bind", source="./site", target="/www", read_only=True)],
        ),
        ('["./site:/www:rw"]', [VolumeMount(type="bind", source="./site", target="/www")]),
        ('["../up:/up"]', [VolumeMount(type="bind", source="../up", target="/up")]),
        ('["/tmp:/host-tmp"]', [VolumeMount(type="bind", source="/tmp", target="/host-tmp")]),
        ('["/cache"]', [VolumeMount(type="volume", source="", target="/cache")]),
        (
            '[{ type = "volume", source = "data", target = "/d", read_only = true }]',
            [VolumeMount(type="volume", source="data", target="/d", read_only=True)],
        ),
        (
            '[{ type = "bind", source = "./site", target = "/www" }]',
            [VolumeMount(type="bind", source="./site", target="/www")],
        ),
        ('[{ type = "tmpfs", target = "/run" }]', [VolumeMount(type="tmpfs", target="/run")]),
        ('[{ target = "/anon" }]', [VolumeMount(target="/anon")]),
    ],
)
def test_volumes_short_and_long_syntax(
    tmp_path: Path, volumes: str, expected: list[VolumeMount]
) -> None:
    """Named, bind (relative and absolute), anonymous, read-only and table mounts normalise."""
    spec = f'[services.s]\nimage = "img"\nvolumes = {volumes}\n[volumes.data]\n'
    loaded = load_spec(tmp_path, spec, ["site/", "../up/"])
    assert loaded.spec.services["s"].volumes == expected


def test_named_volume_definition(tmp_path: Path) -> None:
    """A ``[volumes.x]`` table may be empty, external, or carry a name, driver and labels."""
    spec = """\
[services.s]
image = "img"
volumes = ["a:/a", "b:/b", "c:/c"]
[volumes.a]
[volumes.b]
external = true
name = "shared-b"
[volumes.c]
driver = "local"
driver_opts = { type = "tmpfs", device = "tmpfs" }
labels = { team = "core" }
"""
    vols = load_spec(tmp_path, spec).spec.volumes
    assert not vols["a"].external and vols["a"].name is None
    assert vols["b"].external and vols["b"].name == "shared-b"
    assert vols["c"].driver_opts == {"type": "tmpfs", "device": "tmpfs"}
    assert vols["c"].labels == {"team": "core"}


# --------------------------------------------------------------------------- secrets


def test_secrets_short_and_long_syntax(tmp_path: Path) -> None:
    """A secret is a name, or a table with target, numeric uid/gid and an octal mode."""
    spec = """\
[services.s]
image = "img"
secrets = ["pw", { source = "key", target = "api.key", uid = "999", gid = 999, mode = 0o440 }]
[secrets.pw]
file = "./secrets/pw.txt"
[secrets.key]
env = "API_KEY"
[secrets.cmd]
command = "pass show db"
"""
    loaded = load_spec(tmp_path, spec, ["secrets/pw.txt"])
    pw, key = loaded.spec.services["s"].secrets
    assert pw == ServiceSecret(source="pw")
    assert pw.path == "/run/secrets/pw"
    assert pw.mode == 0o400
    assert key == ServiceSecret(source="key", target="api.key", uid="999", gid="999", mode=0o440)
    assert key.path == "/run/secrets/api.key"
    assert loaded.spec.secrets["cmd"].command == ["pass", "show", "db"]


def test_secret_absolute_target(tmp_path: Path) -> None:
    """An absolute secret target is used as the in-container path as given."""
    spec = """\
[services.s]
image = "img"
secrets = [{ source = "pw", target = "/etc/app/pw" }]
[secrets.pw]
env = "PW"
"""
    (secret,) = load_spec(tmp_path, spec).spec.services["s"].secrets
    assert secret.path == "/etc/app/pw"


# --------------------------------------------------------------------------- depends_on


@pytest.mark.parametrize(
    ("depends_on", "expected"),
    [
        ('["db"]', {"db": Dependency(condition="started")}),
        ('{ db = "healthy" }', {"db": Dependency(condition="healthy")}),
        ('{ db = "completed" }', {"db": Dependency(condition="completed")}),
        ('{ db = "service_healthy" }', {"db": Dependency(condition="healthy")}),
        ('{ db = "service_started" }', {"db": Dependency(condition="started")}),
        (
            '{ db = "service_completed_successfully" }',
            {"db": Dependency(condition="completed")},
        ),
        (
            '{ db = { condition = "service_healthy", required = false } }',
            {"db": Dependency(condition="healthy", required=False)},
        ),
        ("{ db = {} }", {"db": Dependency()}),
        ("[]", {}),
    ],
)
def test_depends_on_forms(tmp_path: Path, depends_on: str, expected: dict[str, Dependency]) -> None:
    """depends_on accepts a list, a map of conditions or of tables, and Compose's condition names."""
    spec = f'[services.db]\nimage = "pg"\n[services.s]\nimage = "img"\ndepends_on = {depends_on}\n'
    assert load_spec(tmp_path, spec).spec.services["s"].depends_on == expected


# --------------------------------------------------------------------------- build, healthcheck, command


def test_build_short_syntax(tmp_path: Path) -> None:
    """``build = "dir"`` is the context, with the default Dockerfile."""
    loaded = load_spec(
        tmp_path, '[services.s]\nbuild = "app"\n', extra={"app/Dockerfile": "FROM scratch\n"}
    )
    build = loaded.spec.services["s"].build
    assert build is not None
    assert (build.context, build.dockerfile, build.args, build.target) == (
        "app",
        "Dockerfile",
        {},
        "",
    )
    assert loaded.spec.services["s"].image is None


def test_build_long_syntax(tmp_path: Path) -> None:
    """The build table carries context, dockerfile, args (scalars stringified) and target."""
    spec = """\
[services.s]
image = "me/app:dev"
[services.s.build]
context = "."
dockerfile = "docker/Dockerfile.dev"
args = { PYVER = "3.12", WORKERS = 4, DEBUG = true }
target = "dev"
"""
    loaded = load_spec(tmp_path, spec, extra={"docker/Dockerfile.dev": "FROM scratch\n"})
    build = loaded.spec.services["s"].build
    assert build is not None
    assert build.dockerfile == "docker/Dockerfile.dev"
    assert build.args == {"PYVER": "3.12", "WORKERS": "4", "DEBUG": "true"}
    assert build.target == "dev"


def test_healthcheck_string_test_is_shell(tmp_path: Path) -> None:
    """A string healthcheck test runs through the shell, with durations parsed."""
    loaded = one_service(
        tmp_path,
        'healthcheck = { test = "pg_isready -U x", interval = "2s", timeout = "500ms",'
        ' retries = 10, start_period = "1m30s" }',
    )
    hc = loaded.spec.services["s"].healthcheck
    assert hc is not None
    assert hc.test == ["CMD-SHELL", "pg_isready -U x"]
    assert (hc.interval, hc.timeout, hc.retries, hc.start_period) == (2.0, 0.5, 10, 90.0)


def test_healthcheck_list_test_and_disable(tmp_path: Path) -> None:
    """A list test is kept as written; ``disable = true`` needs no test."""
    spec = """\
[services.a]
image = "img"
healthcheck = { test = ["CMD", "true"] }
[services.b]
image = "img"
healthcheck = { disable = true }
"""
    services = load_spec(tmp_path, spec).spec.services
    assert services["a"].healthcheck is not None
    assert services["a"].healthcheck.test == ["CMD", "true"]
    assert services["b"].healthcheck is not None and services["b"].healthcheck.disable


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ('"echo hello world"', ["echo", "hello", "world"]),
        ('"sh -c \'sleep 1; echo \\"done\\"\'"', ["sh", "-c", 'sleep 1; echo "done"']),
        ('["echo", "hello world"]', ["echo", "hello world"]),
        ("[]", []),
    ],
)
def test_command_string_is_split(tmp_path: Path, command: str, expected: list[str]) -> None:
    """A command string is split like a shell would (no shell runs); a list is kept."""
    loaded = one_service(tmp_path, f"command = {command}\nentrypoint = {command}")
    assert loaded.spec.services["s"].command == expected
    assert loaded.spec.services["s"].entrypoint == expected


def test_defaults(tmp_path: Path) -> None:
    """An image-only service takes the documented defaults."""
    svc = one_service(tmp_path, "").spec.services["s"]
    assert svc.pull == "missing"
    assert svc.restart == "no"
    assert svc.init is True
    assert svc.stop_signal == "SIGTERM"
    assert svc.stop_grace_period == 10.0
    assert svc.replicas == 1
    assert svc.command is None and svc.entrypoint is None
    assert svc.networks == {} and svc.depends_on == {} and svc.profiles == []


def test_restart_compose_spellings(tmp_path: Path) -> None:
    """``restart = false`` means "no"; ``on-failure:3`` keeps its retry count (the engine's
    MaximumRetryCount, exported back as Compose wrote it); a count that is not a number is
    one sentence."""
    from envd.engine.docker import payloads
    from envd.interop.compose_export import to_compose
    from envd.values.types import ContainerCreate

    spec = '[services.a]\nimage = "i"\nrestart = false\n'
    assert load_spec(tmp_path, spec).spec.services["a"].restart == "no"
    counted = load_spec(tmp_path, '[services.b]\nimage = "i"\nrestart = "on-failure:3"\n')
    svc = counted.spec.services["b"]
    assert (svc.restart, svc.restart_max_attempts) == ("on-failure", 3)
    assert to_compose(counted).documents[0]["services"]["b"]["restart"] == "on-failure:3"
    body = payloads.create_body(
        ContainerCreate(
            name="b", image="i", labels={}, restart="on-failure", restart_max_attempts=3
        )
    )
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    with pytest.raises(SpecError, match="the retry count must be a whole number"):
        load_spec(tmp_path, '[services.c]\nimage = "i"\nrestart = "on-failure:x"\n')


# --------------------------------------------------------------------------- env and env_file


def test_env_table_stringifies_scalars(tmp_path: Path) -> None:
    """TOML numbers and booleans in env become the strings a container sees."""
    loaded = one_service(tmp_path, 'env = { A = "x", N = 3, F = 1.5, B = false }')
    assert loaded.spec.services["s"].env == {"A": "x", "N": "3", "F": "1.5", "B": "false"}


def test_env_list_form_and_passthrough(tmp_path: Path) -> None:
    """``["K=V", "NAME"]``: a bare NAME passes through from envd's own environment."""
    write_project(
        tmp_path, '[services.s]\nimage = "img"\nenv = ["A=1", "B=x=y", "PASS", "MISSING"]\n'
    )
    loaded = load(tmp_path, environ={"PASS": "from-shell"})
    assert loaded.spec.services["s"].env == {"A": "1", "B": "x=y", "PASS": None, "MISSING": None}
    assert loaded.variables["PASS"] == "from-shell"


def test_env_passthrough_reaches_container(tmp_path: Path) -> None:
    """A passed-through variable gets the process value; an unset one is left out."""
    from envd.core.desired import desire

    write_project(tmp_path, '[services.s]\nimage = "img"\nenv = ["PASS", "MISSING"]\n')
    loaded = load(tmp_path, environ={"PASS": "from-shell"})
    env = dict(desire(loaded, {}, keys=Keys(b"k")).services["s"].template.env)
    assert env == {"PASS": "from-shell"}


def test_env_file_merge_order(tmp_path: Path) -> None:
    """Later env_files override earlier ones, and ``env`` overrides them all."""
    from envd.core.desired import desire

    spec = """\
[services.s]
image = "img"
env_file = [".env.base", "config/.env.local"]
env = { B = "from-env" }
"""
    loaded = load_spec(
        tmp_path,
        spec,
        extra={
            ".env.base": "A=base\nB=base\nC=base\n",
            "config/.env.local": "C=local\nD=local\n",
        },
    )
    assert loaded.env_files["s"] == {"A": "base", "B": "base", "C": "local", "D": "local"}
    env = dict(desire(loaded, {}, keys=Keys(b"k")).services["s"].template.env)
    assert env == {"A": "base", "B": "from-env", "C": "local", "D": "local"}


def test_env_file_single_string(tmp_path: Path) -> None:
    """``env_file`` may be one path instead of a list."""
    loaded = load_spec(
        tmp_path, '[services.s]\nimage = "img"\nenv_file = ".env.s"\n', extra={".env.s": "K=v\n"}
    )
    assert loaded.spec.services["s"].env_file == [".env.s"]
    assert loaded.env_files["s"] == {"K": "v"}


# --------------------------------------------------------------------------- networks, labels, misc


def test_networks_list_and_table(tmp_path: Path) -> None:
    """Networks may be a list of names or a table with aliases."""
    spec = """\
[services.a]
image = "img"
networks = ["front", "back"]
[services.b]
image = "img"
networks = { back = { aliases = ["database"] }, default = {} }
[networks.front]
[networks.back]
internal = true
"""
    services = load_spec(tmp_path, spec).spec.services
    assert list(services["a"].networks) == ["front", "back"]
    assert services["b"].networks["back"].aliases == ["database"]
    assert "default" in services["b"].networks


def test_labels_caps_and_flags(tmp_path: Path) -> None:
    """Labels, capabilities, tmpfs, read_only and stop settings load as written."""
    loaded = one_service(
        tmp_path,
        'labels = { "com.example.team" = "core", tier = 1 }\n'
        'cap_add = ["NET_ADMIN"]\ncap_drop = ["ALL"]\ntmpfs = "/run"\nread_only = true\n'
        'stop_signal = "SIGINT"\nstop_grace_period = "1m30s"\nuser = "1000:1000"\n'
        'working_dir = "/app"\nreplicas = 3\npull = "never"',
    )
    svc = loaded.spec.services["s"]
    assert svc.labels == {"com.example.team": "core", "tier": "1"}
    assert (svc.cap_add, svc.cap_drop, svc.tmpfs) == (["NET_ADMIN"], ["ALL"], ["/run"])
    assert svc.read_only and svc.stop_signal == "SIGINT" and svc.stop_grace_period == 90.0
    assert (svc.user, svc.working_dir, svc.replicas, svc.pull) == ("1000:1000", "/app", 3, "never")


def test_watch_rules(tmp_path: Path) -> None:
    """Watch rules load from inline tables and from an array of tables."""
    spec = """\
[services.s]
image = "img"
build = "."
watch = [
  { path = "src", action = "sync", target = "/app/src", ignore = ["**/__pycache__"] },
]

[[services.t.watch]]
path = "requirements.txt"
action = "restart"

[services.t]
image = "img"
"""
    loaded = load_spec(tmp_path, spec, ["src/", "requirements.txt", "Dockerfile"])
    (rule,) = loaded.spec.services["s"].watch
    assert (rule.path, rule.action, rule.target, rule.ignore) == (
        "src",
        "sync",
        "/app/src",
        ["**/__pycache__"],
    )
    assert loaded.spec.services["t"].watch[0].action == "restart"


# --------------------------------------------------------------------------- project name and environments


def test_project_name_defaults_to_sanitised_directory(tmp_path: Path) -> None:
    """Without ``[project] name`` the project is the directory's name, sanitised."""
    root = tmp_path / "My Shop.v2"
    root.mkdir()
    loaded = load_spec(root, '[services.s]\nimage = "img"\n')
    assert loaded.project == "myshopv2"
    assert loaded.environment is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("Shop", "shop"), ("-_x", "x"), ("a b.c", "abc"), ("!!!", "default"), ("ok-1_2", "ok-1_2")],
)
def test_sanitize_project_name(raw: str, clean: str) -> None:
    """Directory names become valid project names (lowercase, no leading separators)."""
    assert sanitize_project_name(raw) == clean


OVERLAY_SPEC = """\
[project]
name = "shop"

[services.api]
image = "api:1"
ports = ["127.0.0.1:8000:8000"]
env = { A = "base", B = "base" }
restart = "unless-stopped"
healthcheck = { test = ["CMD", "true"], interval = "2s", retries = 5 }
command = ["serve", "--reload"]

[services.db]
image = "pg"

[environments.ci]
services.api.ports = []
services.api.restart = "no"
services.api.env = { B = "ci", C = "ci" }
services.api.healthcheck.interval = "1s"
services.api.command = ["serve"]

[environments.staging.services.api]
replicas = 2
image = "api:2"
ports = ["8000"]
"""


def test_environment_overlay_deep_merges(tmp_path: Path) -> None:
    """Overlay tables merge key by key; lists and scalars replace the base value."""
    loaded = load_spec(tmp_path, OVERLAY_SPEC, environment="ci")
    api = loaded.spec.services["api"]
    assert api.ports == []
    assert api.restart == "no"
    assert api.env == {"A": "base", "B": "ci", "C": "ci"}
    assert api.healthcheck is not None
    assert (api.healthcheck.interval, api.healthcheck.retries) == (1.0, 5)
    assert api.healthcheck.test == ["CMD", "true"]
    assert api.command == ["serve"]
    assert loaded.spec.services["db"].image == "pg"


def test_environment_changes_project_name(tmp_path: Path) -> None:
    """With an environment, the engine-side project is ``<name>-<env>``."""
    loaded = load_spec(tmp_path, OVERLAY_SPEC, environment="staging")
    assert loaded.project == "shop-staging"
    assert loaded.environment == "staging"
    assert loaded.spec.services["api"].replicas == 2
    assert loaded.spec.services["api"].image == "api:2"


def test_no_environment_keeps_base(tmp_path: Path) -> None:
    """Without ``--env`` the overlays are ignored and the project keeps its name."""
    loaded = load_spec(tmp_path, OVERLAY_SPEC)
    assert loaded.project == "shop"
    assert loaded.spec.services["api"].restart == "unless-stopped"
    assert set(loaded.spec.environments) == {"ci", "staging"}


@pytest.mark.parametrize(
    ("base", "overlay", "merged"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}, {"a": {"b": 1, "c": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": [1, 2]}, {"a": []}, {"a": []}),
        ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
        ({"a": {"b": 1}}, {"a": "scalar"}, {"a": "scalar"}),
        ({"a": "scalar"}, {"a": {"b": 1}}, {"a": {"b": 1}}),
        ({"a": {"b": {"c": 1, "d": 1}}}, {"a": {"b": {"d": 2}}}, {"a": {"b": {"c": 1, "d": 2}}}),
    ],
)
def test_deep_merge(base: dict[str, object], overlay: dict[str, object], merged: object) -> None:
    """deep_merge merges tables recursively and lets overlays replace anything else."""
    assert deep_merge(base, overlay) == merged


# --------------------------------------------------------------------------- profiles


PROFILES_SPEC = """\
[services.app]
image = "img"
[services.debug]
image = "img"
profiles = ["debug"]
[services.seed]
image = "img"
profiles = ["debug", "seed"]
"""


@pytest.mark.parametrize(
    ("profiles", "active"),
    [
        (frozenset(), {"app"}),
        (frozenset({"debug"}), {"app", "debug", "seed"}),
        (frozenset({"seed"}), {"app", "seed"}),
        (frozenset({"other"}), {"app"}),
    ],
)
def test_profiles_select_active_services(
    tmp_path: Path, profiles: frozenset[str], active: set[str]
) -> None:
    """Services without profiles always run; others only when one of their profiles is on."""
    loaded = load_spec(tmp_path, PROFILES_SPEC, profiles=profiles)
    assert set(loaded.active_services()) == active
    assert set(loaded.spec.services) == {"app", "debug", "seed"}


def test_profiled_services_may_share_a_port(tmp_path: Path) -> None:
    """Two services in profiles may publish one port: they are not meant to run together."""
    spec = """\
[services.a]
image = "img"
ports = ["8080:80"]
profiles = ["x"]
[services.b]
image = "img"
ports = ["8080:80"]
profiles = ["y"]
"""
    assert set(load_spec(tmp_path, spec).spec.services) == {"a", "b"}


def test_distinct_host_ips_may_share_a_port(tmp_path: Path) -> None:
    """One port on two distinct host addresses is no clash."""
    spec = """\
[services.a]
image = "img"
ports = ["127.0.0.1:8080:80"]
[services.b]
image = "img"
ports = ["127.0.0.2:8080:80", "8080:80/udp"]
"""
    assert set(load_spec(tmp_path, spec).spec.services) == {"a", "b"}


def test_find_cycle() -> None:
    """find_cycle returns the cycle as a closed path, or nothing for a DAG."""
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) == []
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["zzz"]}) == []


def test_missing_spec_file(tmp_path: Path) -> None:
    """A directory without envd.toml fails with a hint to create one or pass -f."""
    with pytest.raises(SpecError, match="no spec found"):
        load(tmp_path, environ={})


def test_explicit_file_and_project_dir(tmp_path: Path) -> None:
    """``file=`` picks another spec; relative paths resolve against the project directory."""
    (tmp_path / "other.toml").write_text('[services.s]\nimage = "img"\nenv_file = ".e"\n')
    (tmp_path / ".e").write_text("K=v\n")
    loaded = load(tmp_path, file="other.toml", environ={})
    assert loaded.file == tmp_path / "other.toml"
    assert loaded.project_dir == tmp_path
    assert loaded.env_files["s"] == {"K": "v"}


# --------------------------------------------------------------------------- broken specs


@dataclass(frozen=True)
class Broken:
    """A spec with exactly one problem, and where it must be reported."""

    id: str
    spec: str
    line: int
    column: int | None  # None: the column is not meaningful for this problem
    path: str
    fragment: str
    files: tuple[str, ...] = ()
    environment: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict)


SVC = '[services.api]\nimage = "img"\n'  # lines 1-2 of most rows

# fmt: off
BROKEN: list[Broken] = [
    Broken(
        "unknown-field",
        SVC + 'imagee = "x"\n',
        3, 1, "services.api.imagee", "unknown field 'imagee' (did you mean 'image'?)",
    ),
    Broken(
        "unknown-field-inline",
        SVC + 'healthcheck = { test = "true", intervall = "1s" }\n',
        3, 32, "services.api.healthcheck.intervall", "(did you mean 'interval'?)",
    ),
    Broken(
        "compose-synonym",
        SVC + 'environment = { A = "1" }\n',
        3, 1, "services.api.environment", "unknown field 'environment' (did you mean 'env'?)",
    ),
    Broken(
        "unknown-top-level-table",
        '[project]\nname = "x"\n\n[servics.api]\nimage = "img"\n',
        4, 1, "servics", "unknown field 'servics' (did you mean 'services'?)",
    ),
    Broken(
        "bad-enum-restart",
        SVC + 'restart = "alway"\n',
        3, 1, "services.api.restart", "invalid value 'alway': expected 'no', 'always'",
    ),
    Broken(
        "bad-enum-hint",
        SVC + 'pull = "allways"\n',
        3, 1, "services.api.pull", "(did you mean 'always'?)",
    ),
    Broken(
        "bad-dependency-condition",
        SVC + 'depends_on = { db = "healty" }\n[services.db]\nimage = "pg"\n',
        3, 16, "services.api.depends_on.db.condition", "(did you mean 'healthy'?)",
    ),
    Broken(
        "unknown-dependency",
        SVC + 'depends_on = ["dbb"]\n[services.db]\nimage = "pg"\n',
        3, 1, "services.api.depends_on.dbb",
        "depends on unknown service 'dbb' (did you mean 'db'?)",
    ),
    Broken(
        "dependency-cycle",
        '[services.a]\nimage = "i"\ndepends_on = ["b"]\n'
        '[services.b]\nimage = "i"\ndepends_on = ["c"]\n'
        '[services.c]\nimage = "i"\ndepends_on = { a = "healthy" }\n',
        3, 1, "services.a.depends_on", "dependency cycle: a -> b -> c -> a",
    ),
    Broken(
        "self-dependency",
        SVC + 'depends_on = ["api"]\n',
        3, 1, "services.api.depends_on", "service 'api' depends on itself",
    ),
    Broken(
        "undefined-volume",
        SVC + 'volumes = ["./site:/www", "dat:/data"]\n[volumes.data]\n',
        3, 27, "services.api.volumes[1]",
        "mounts undefined volume 'dat' (did you mean 'data'?)",
        files=("site/",),
    ),
    Broken(
        "undefined-secret",
        SVC + 'secrets = ["db_pw"]\n[secrets.db_pass]\nenv = "X"\n',
        3, 12, "services.api.secrets[0]", "uses undefined secret 'db_pw'",
    ),
    Broken(
        "undefined-network",
        SVC + 'networks = { backend = {} }\n[networks.back]\n',
        3, 14, "services.api.networks.backend",
        "joins undefined network 'backend' (did you mean 'back'?)",
    ),
    Broken(
        "missing-env-file",
        SVC + 'env_file = [".env.api", ".env.missing"]\n',
        3, 25, "services.api.env_file[1]", "env_file '.env.missing' does not exist",
        files=(".env.api",),
    ),
    Broken(
        "missing-secret-file",
        SVC + 'secrets = ["pw"]\n\n[secrets.pw]\nfile = "./secrets/pw.txt"\n',
        6, 1, "secrets.pw.file", "file './secrets/pw.txt' does not exist",
    ),
    Broken(
        "missing-build-context",
        '[services.api]\nbuild = { context = "app" }\n',
        2, 11, "services.api.build.context", "build context 'app' is not a directory",
    ),
    Broken(
        "missing-dockerfile",
        '[services.api]\nbuild = { context = "app", dockerfile = "Dockerfile.dev" }\n',
        2, 28, "services.api.build.dockerfile", "Dockerfile 'Dockerfile.dev' not found",
        files=("app/",),
    ),
    Broken(
        "invalid-service-name",
        '[services.ok]\nimage = "i"\n\n[services."-bad name"]\nimage = "i"\n',
        4, 1, 'services."-bad name"', "name '-bad name' is invalid",
    ),
    Broken(
        "neither-image-nor-build",
        '[services.ok]\nimage = "i"\n\n[services.api]\ncommand = "run"\n',
        4, 1, "services.api", "a service needs an 'image' or a 'build'",
    ),
    Broken(
        "bad-duration",
        SVC + 'stop_grace_period = "10 s"\n',
        3, 1, "services.api.stop_grace_period", "invalid duration '10 s'",
    ),
    Broken(
        "bad-duration-inline",
        SVC + 'healthcheck = { test = "true", interval = "fast" }\n',
        3, 32, "services.api.healthcheck.interval", "invalid duration 'fast'",
    ),
    Broken(
        "bad-port",
        SVC + 'ports = ["80:abc"]\n',
        3, 1, "services.api.ports", "invalid port 'abc'",
    ),
    Broken(
        "port-out-of-range-multiline",
        SVC + 'ports = [\n  "80",\n  # the admin port\n  "70000",\n]\n',
        6, 3, "services.api.ports[1].target", "less than or equal to 65535",
    ),
    Broken(
        "bad-volume-mode",
        SVC + 'volumes = [\n  "data:/data",\n  "./site:/www:rx",\n]\n[volumes.data]\n',
        5, 3, "services.api.volumes[1]", "invalid volume mode 'rx'",
    ),
    Broken(
        "relative-mount-target",
        SVC + 'volumes = [{ type = "volume", target = "data" }]\n',
        3, 31, "services.api.volumes[0].target", "must be an absolute path",
    ),
    Broken(
        "missing-bind-source-not-created",
        SVC
        + 'volumes = [{ type = "bind", source = "./nope", target = "/data",'
        + " create_host_path = false }]\n",
        3, 12, "services.api.volumes[0]", "binds './nope', which does not exist",
    ),
    Broken(
        "replicas-with-fixed-port",
        SVC + 'replicas = 3\nports = ["8080:80"]\n',
        4, 1, "services.api.ports", "has 3 replicas but publishes fixed host port 8080",
    ),
    Broken(
        "two-services-one-host-port",
        SVC + 'ports = ["127.0.0.1:8080:80"]\n[services.web]\nimage = "i"\nports = ["8080:81"]\n',
        6, 1, "services.web.ports", "services 'api' and 'web' both publish host port 8080",
    ),
    Broken(
        "toml-syntax-error",
        SVC + 'command = ["a", "b"\nrestart = "no"\n',
        4, 1, "", "invalid TOML: Unclosed array",
    ),
    Broken(
        "toml-unterminated-string",
        SVC + 'user = "root\n',
        3, 13, "", "invalid TOML",
    ),
    Broken(
        "toml-error-at-end",
        SVC + "ports = [80,\n",
        3, 13, "", "invalid TOML",
    ),
    Broken(
        "toml-duplicate-key",
        SVC + 'image = "other"\n',
        3, None, "", "invalid TOML",
    ),
    Broken(
        "unknown-environment",
        SVC + '[environments.ci]\nservices.api.restart = "no"\n',
        0, None, "", "unknown environment 'cii' (did you mean 'ci'?) (known: ci)",
        environment="cii",
    ),
    Broken(
        "interpolation-required",
        SVC + 'env = { TOKEN = "${API_TOKEN:?set API_TOKEN in .env}" }\n',
        3, 9, "services.api.env.TOKEN", "API_TOKEN: set API_TOKEN in .env",
    ),
    Broken(
        "interpolation-unclosed",
        SVC + 'command = ["echo", "${HOME"]\n',
        3, 20, "services.api.command[1]", "unclosed '${'",
    ),
    Broken(
        "reserved-label-prefix",
        SVC + 'labels = { "dev.envd.project" = "other" }\n',
        3, 1, "services.api.labels", "reserved prefix 'dev.envd.'",
    ),
    Broken(
        "bad-project-name",
        '[project]\nname = "My Shop"\n' + SVC,
        2, 1, "project.name", "project name 'My Shop' must be lowercase",
    ),
    Broken(
        "watch-sync-without-target",
        SVC
        + 'build = "."\nwatch = [\n  { path = "req.txt", action = "rebuild" },\n'
        '  { path = "src", action = "sync" },\n]\n',
        6, 3, "services.api.watch[1]", "a 'sync' watch rule needs a 'target'",
        files=("Dockerfile", "req.txt", "src/"),
    ),
    Broken(
        "watch-bad-action-array-of-tables",
        SVC + '\n[[services.api.watch]]\npath = "src"\naction = "sync"\ntarget = "/src"\n\n'
        '[[services.api.watch]]\npath = "src"\naction = "rebuil"\n',
        11, 1, "services.api.watch[1].action", "(did you mean 'rebuild'?)",
        files=("src/",),
    ),
    Broken(
        "watch-path-missing",
        SVC + 'watch = [{ path = "nope", action = "restart" }]\n',
        3, 10, "services.api.watch[0]", "watch path 'nope' does not exist",
    ),
    Broken(
        "rebuild-without-build",
        SVC + 'watch = [{ path = "src", action = "rebuild" }]\n',
        3, 10, "services.api.watch[0]", "a 'rebuild' watch rule needs a 'build' section",
        files=("src/",),
    ),
    Broken(
        "secret-two-sources",
        SVC + '[secrets.pw]\nfile = "pw.txt"\nenv = "PW"\n',
        3, 1, "secrets.pw", "exactly one of 'file', 'env' or 'command'",
        files=("pw.txt",),
    ),
    Broken(
        "secret-bad-uid",
        SVC + 'secrets = [{ source = "pw", uid = "root" }]\n[secrets.pw]\nenv = "PW"\n',
        3, 29, "services.api.secrets[0].uid", "'root' is not a numeric id",
    ),
    Broken(
        "healthcheck-without-test",
        SVC + "\n[services.api.healthcheck]\ninterval = \"1s\"\n",
        4, 1, "services.api.healthcheck", "a healthcheck needs a 'test'",
    ),
    Broken(
        "healthcheck-bad-kind",
        SVC + 'healthcheck = { test = ["RUN", "true"] }\n',
        3, 1, "services.api.healthcheck", "must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"",
    ),
    Broken(
        "wrong-type",
        SVC + "user = 1000\n",
        3, 1, "services.api.user", "valid string",
    ),
    Broken(
        "negative-replicas",
        SVC + "replicas = -1\n",
        3, 1, "services.api.replicas", "greater than or equal to 0",
    ),
    Broken(
        "bad-stop-signal",
        SVC + 'stop_signal = "TERM"\n',
        3, 1, "services.api.stop_signal", "should match pattern",
    ),
    Broken(
        "pull-build-without-build",
        SVC + 'pull = "build"\n',
        1, 1, "services.api", "pull = 'build' needs a 'build' section",
    ),
    Broken(
        "overlay-bad-value",
        SVC + 'restart = "always"\n\n[environments.ci]\nservices.api.restart = "nope"\n',
        6, 1, "services.api.restart", "invalid value 'nope'",
        environment="ci",
    ),
    Broken(
        "overlay-table-bad-value",
        SVC + '\n[environments.ci.services.api]\nreplicas = "two"\n',
        5, 1, "services.api.replicas", "valid integer",
        environment="ci",
    ),
    Broken(
        "base-error-with-overlay-active",
        SVC + 'restart = "nope"\n\n[environments.ci]\nservices.api.init = false\n',
        3, 1, "services.api.restart", "invalid value 'nope'",
        environment="ci",
    ),
    Broken(
        "overlay-adds-undefined-volume",
        SVC + '\n[environments.ci]\nservices.api.volumes = ["cache:/cache"]\n',
        5, 25, "services.api.volumes[0]", "mounts undefined volume 'cache'",
        environment="ci",
    ),
]
# fmt: on


@pytest.mark.parametrize("case", BROKEN, ids=[c.id for c in BROKEN])
def test_broken_spec_is_located(tmp_path: Path, case: Broken) -> None:
    """Each broken spec yields one problem at the exact file:line:col, with its field path."""
    write_project(tmp_path, case.spec, case.files)
    with pytest.raises(SpecError) as info:
        load(tmp_path, environment=case.environment, environ=case.environ)
    problems = info.value.problems
    assert len(problems) == 1, [p.render() for p in problems]
    (problem,) = problems
    assert case.fragment in problem.message, problem.render()
    assert problem.path == case.path, problem.render()
    assert Path(problem.file).resolve() == (tmp_path / "envd.toml").resolve()
    if case.column is None:
        assert problem.line == case.line, problem.render()
    else:
        assert (problem.line, problem.column) == (case.line, case.column), problem.render()


def test_broken_table_is_large_enough() -> None:
    """The table of broken specs covers at least 25 distinct failure modes."""
    assert len(BROKEN) >= 25
    assert len({c.id for c in BROKEN}) == len(BROKEN)


def test_all_problems_reported_together_in_file_order(tmp_path: Path) -> None:
    """Every problem found in one pass is reported, sorted by position."""
    spec = """\
[services.b]
image = "i"
depends_on = ["nope"]

[services.a]
image = "i"
restart = "sometimes"
imagee = "x"
"""
    write_project(tmp_path, spec)
    with pytest.raises(SpecError) as info:
        load(tmp_path, environ={})
    lines = [p.line for p in info.value.problems]
    # Validation problems come first (cross checks run on a valid model only).
    assert lines == [7, 8]
    assert str(info.value).count("\n") == 1


def test_problem_render_format(tmp_path: Path) -> None:
    """A problem renders as ``file:line:col: path: message``, as ``envd validate`` prints it."""
    problem = SpecProblem("unknown field 'x'", "envd.toml", 3, 5, "services.api.x")
    assert problem.render() == "envd.toml:3:5: services.api.x: unknown field 'x'"
    assert SpecProblem("no spec found").render() == "envd.toml: no spec found"


def test_cross_checks_report_every_problem(tmp_path: Path) -> None:
    """Cross-reference problems are all collected, not just the first."""
    spec = SVC + 'volumes = ["v:/v"]\nsecrets = ["s"]\ndepends_on = ["x"]\n'
    write_project(tmp_path, spec)
    with pytest.raises(SpecError) as info:
        load(tmp_path, environ={})
    paths = {p.path for p in info.value.problems}
    assert paths == {
        "services.api.volumes[0]",
        "services.api.secrets[0]",
        "services.api.depends_on.x",
    }


# --------------------------------------------------------------------------- the locator itself


LOCATOR_TEXT = '''\
#:schema x
[project]
name = "p"   # c

[services.api]
image = "x"
command = """
fake = 1
[services.fake]
"""
ports = [
  "80",  # comment, with [brackets]
  { target = 81, published = 8081 },
  "8080-8081:80-81/udp",
]
env = { A = "1", "B.C" = "x,}", nested.key = 2 }
healthcheck.test = ["CMD", "true"]

[[services.api.watch]]
path = "src"
action = "sync"

[[services.api.watch]]
path = "req"
action = "rebuild"

[services."db.x"]
image = 'y'
'''


@pytest.mark.parametrize(
    ("path", "position", "placed"),
    [
        (("project", "name"), (3, 1), 2),
        (("services", "api", "command"), (7, 1), 3),
        (("services", "fake"), (5, 1), 1),  # inside a multi-line string: not a table
        (("services", "api", "ports", 0), (12, 3), 4),
        (("services", "api", "ports", 1), (13, 3), 4),
        (("services", "api", "ports", 1, "published"), (13, 18), 5),
        (("services", "api", "ports", 2), (14, 3), 4),
        (("services", "api", "ports", 3), (11, 1), 3),
        (("services", "api", "env", "B.C"), (16, 18), 4),
        (("services", "api", "env", "nested", "key"), (16, 33), 5),
        (("services", "api", "healthcheck", "test", 1), (17, 28), 5),
        (("services", "api", "watch"), (19, 1), 3),
        (("services", "api", "watch", 1), (23, 1), 4),
        (("services", "api", "watch", 1, "action"), (25, 1), 5),
        (("services", "api", "watch", 0, "path"), (20, 1), 5),
        (("services", "db.x", "image"), (28, 1), 3),
        (("services", "api", "missing"), (5, 1), 2),
        (("nope",), (0, 0), 0),
    ],
)
def test_locator_positions(
    path: tuple[str | int, ...], position: tuple[int, int], placed: int
) -> None:
    """The locator finds keys, array elements and inline-table keys, even across lines."""
    assert Locator(LOCATOR_TEXT).find(path) == (position, placed)


def test_locator_handles_crlf_line_endings() -> None:
    """A spec saved with Windows line endings is located just the same."""
    text = LOCATOR_TEXT.replace("\n", "\r\n")
    locator = Locator(text)
    assert locator.find(("services", "api", "watch", 1, "action")) == ((25, 1), 5)
    assert locator.find(("services", "api", "ports", 2)) == ((14, 3), 4)
