"""Round trips that keep meaning: interpolation before splitting and typing, ``$$`` escapes,
``COMPOSE_*`` variables from .env, bind relabel/propagation modes, and the small Compose
forms that used to be dropped (``healthcheck.disable: false``, ``depends_on.*.restart``)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from envd.engine.docker import payloads
from envd.interop.compose_export import to_compose
from envd.interop.compose_import import ImportResult, import_compose, import_files
from envd.interop.render import render_yaml
from envd.spec.load import LoadedSpec, load
from envd.values.errors import SpecError
from envd.values.types import ContainerCreate, Mount

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def project(tmp_path: Path, compose: str, dotenv: str = "") -> Path:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(compose))
    if dotenv:
        (tmp_path / ".env").write_text(dotenv)
    return tmp_path


def imported(tmp_path: Path, env_files: tuple[str, ...] = ()) -> ImportResult:
    return import_files([], env_files, environ={}, cwd=tmp_path)


def loaded(tmp_path: Path, result: ImportResult) -> LoadedSpec:
    (tmp_path / "envd.toml").write_text(result.toml)
    return load(tmp_path, environ={})


def toml(result: ImportResult) -> dict[str, Any]:
    return tomllib.loads(result.toml)


def test_a_short_volume_is_split_after_interpolation(tmp_path: Path) -> None:
    """`${DIR:-.}/dags:/opt/app/dags` keeps its target; the text stays as written for envd to resolve."""
    project(
        tmp_path, "services:\n  app:\n    image: x\n    volumes: ['${DIR:-.}/dags:/opt/app/dags']\n"
    )
    (tmp_path / "dags").mkdir()
    result = imported(tmp_path)
    assert toml(result)["services"]["app"]["volumes"] == ["${DIR:-.}/dags:/opt/app/dags"]
    assert result.notes == []
    [mount] = loaded(tmp_path, result).spec.services["app"].volumes
    assert (mount.type, mount.source, mount.target) == ("bind", "./dags", "/opt/app/dags")


def test_a_variable_in_a_number_is_resolved_from_dotenv(tmp_path: Path) -> None:
    """`retries: $HEALTHCHECK_RETRIES` with the value in .env imports as the number."""
    project(
        tmp_path,
        """\
        services:
          db:
            image: postgres
            healthcheck: {test: ["CMD", "true"], retries: $HEALTHCHECK_RETRIES}
        """,
        "HEALTHCHECK_RETRIES=7\n",
    )
    assert toml(imported(tmp_path))["services"]["db"]["healthcheck"]["retries"] == 7


def test_an_unset_variable_in_a_number_is_one_located_sentence(tmp_path: Path) -> None:
    """Without a value the typed field is refused in one sentence naming file and field."""
    project(tmp_path, "services:\n  db:\n    image: x\n    scale: ${N}\n")
    with pytest.raises(SpecError) as info:
        imported(tmp_path)
    message = str(info.value)
    assert message.startswith("compose.yaml: services.db.scale: expected an integer")
    assert "\n" not in message


def test_a_required_variable_names_the_file_and_field(tmp_path: Path) -> None:
    """`${X:?message}` unset: the Compose error, located, exit 2 (a SpecError)."""
    project(tmp_path, "services:\n  db:\n    image: ${IMAGE:?set IMAGE}\n")
    with pytest.raises(SpecError, match=r"compose.yaml: services.db.image: IMAGE: set IMAGE"):
        imported(tmp_path)


def test_env_file_values_are_resolved_and_dollars_escaped(tmp_path: Path) -> None:
    """--env-file: values are written into the spec (envd reads .env only), a `$` in them escaped."""
    project(tmp_path, "services:\n  db:\n    image: x\n    environment: {PW: '${PW}'}\n")
    (tmp_path / "prod.env").write_text("PW='pa$word'\n")
    result = imported(tmp_path, ("prod.env",))
    assert toml(result)["services"]["db"]["env"] == {"PW": "pa$$word"}
    assert any("--env-file" in n for n in result.notes)
    assert loaded(tmp_path, result).spec.services["db"].env == {"PW": "pa$word"}


def test_dollar_escapes_survive_import_and_export(tmp_path: Path) -> None:
    """`$${POSTGRES_DB}` stays an escape in envd.toml, is the literal in envd, and comes back escaped."""
    project(
        tmp_path,
        """\
        services:
          db:
            image: postgres
            healthcheck:
              test: pg_isready -d $${POSTGRES_DB}
        """,
    )
    result = imported(tmp_path)
    assert toml(result)["services"]["db"]["healthcheck"]["test"] == "pg_isready -d $${POSTGRES_DB}"
    spec = loaded(tmp_path, result)
    hc = spec.spec.services["db"].healthcheck
    assert hc is not None and list(hc.test) == ["CMD-SHELL", "pg_isready -d ${POSTGRES_DB}"]
    exported = render_yaml(to_compose(spec))
    assert "pg_isready -d $${POSTGRES_DB}" in exported
    assert toml(import_compose(exported))["services"]["db"]["healthcheck"]["test"] == [
        "CMD-SHELL",
        "pg_isready -d $${POSTGRES_DB}",
    ]


def test_compose_variables_from_dotenv_are_honoured(tmp_path: Path) -> None:
    """COMPOSE_PROJECT_NAME names the project; COMPOSE_PROFILES' services import always on."""
    project(
        tmp_path,
        """\
        name: fromfile
        services:
          web: {image: x}
          admin: {image: x, profiles: [tools]}
          debug: {image: x, profiles: [debug]}
        """,
        "COMPOSE_PROJECT_NAME=Shop\nCOMPOSE_PROFILES=tools\n",
    )
    result = imported(tmp_path)
    spec = toml(result)
    assert spec["project"]["name"] == "shop"
    assert "profiles" not in spec["services"]["admin"]
    assert spec["services"]["debug"]["profiles"] == ["debug"]
    assert any(n.startswith("COMPOSE_PROFILES: tools enables admin") for n in result.notes)
    assert set(loaded(tmp_path, result).active_services()) == {"web", "admin"}


@pytest.mark.parametrize("mode", ["z,ro", "ro,z", "ro,z,rshared", "rslave,Z"])
def test_bind_modes_in_any_order_are_kept(tmp_path: Path, mode: str) -> None:
    """Relabel and propagation modes import in any order Compose takes and reach the model."""
    project(tmp_path, f"services:\n  app:\n    image: x\n    volumes: ['./d:/d:{mode}']\n")
    (tmp_path / "d").mkdir()
    result = imported(tmp_path)
    assert result.notes == []
    [mount] = loaded(tmp_path, result).spec.services["app"].volumes
    words = set(mode.split(","))
    assert mount.read_only == ("ro" in words)
    assert mount.selinux == ({"z", "Z"} & words or {None}).pop()
    assert mount.propagation == (words - {"z", "Z", "ro"} or {None}).pop()


def test_long_bind_options_are_kept_and_exported(tmp_path: Path) -> None:
    """`bind: {selinux: Z, propagation: rshared}` maps to the mount and back to Compose."""
    project(
        tmp_path,
        """\
        services:
          app:
            image: x
            volumes:
              - {type: bind, source: ./d, target: /d, bind: {selinux: Z, propagation: rshared}}
        """,
    )
    (tmp_path / "d").mkdir()
    spec = loaded(tmp_path, imported(tmp_path))
    [mount] = spec.spec.services["app"].volumes
    assert (mount.selinux, mount.propagation) == ("Z", "rshared")
    assert "./d:/d:Z,rshared" in render_yaml(to_compose(spec))


def test_a_relabelled_bind_goes_through_binds_and_propagation_through_bind_options() -> None:
    """The create payload: relabel as a `Binds` entry, propagation as `BindOptions`."""
    body = payloads.create_body(
        ContainerCreate(
            name="a",
            image="x",
            labels={},
            mounts=(
                Mount("bind", "/r", "/host/r", read_only=True, selinux="z", propagation="rslave"),
                Mount("bind", "/p", "/host/p", propagation="private"),
            ),
        )
    )
    host = body["HostConfig"]
    assert host["Binds"] == ["/host/r:/r:ro,z,rslave"]
    assert host["Mounts"] == [
        {
            "Type": "bind",
            "Target": "/p",
            "ReadOnly": False,
            "Source": "/host/p",
            "BindOptions": {"Propagation": "private"},
        }
    ]


def test_a_named_volume_may_be_relabelled_but_not_propagated(tmp_path: Path) -> None:
    """`data:/d:Z` (docker-elk's elasticsearch) relabels the volume as Compose and the engine
    do, through `Binds`; a propagation on a volume is still one located sentence."""
    (tmp_path / "envd.toml").write_text(
        '[services.a]\nimage = "x"\nvolumes = ["data:/d:Z"]\n[volumes.data]\n'
    )
    loaded = load(tmp_path, environ={})
    assert loaded.spec.services["a"].volumes[0].selinux == "Z"
    body = payloads.create_body(
        ContainerCreate(
            name="a", image="x", labels={}, mounts=(Mount("volume", "/d", "p_data", selinux="Z"),)
        )
    )
    assert body["HostConfig"]["Binds"] == ["p_data:/d:rw,Z"]
    (tmp_path / "envd.toml").write_text(
        '[services.a]\nimage = "x"\nvolumes = ["data:/d:rshared"]\n[volumes.data]\n'
    )
    with pytest.raises(SpecError, match=r"invalid volume mode 'rshared'.*only for bind mounts"):
        load(tmp_path, environ={})


def test_an_unknown_bind_mode_is_refused_by_envd(tmp_path: Path) -> None:
    """envd's own short syntax names the bad mode word."""
    (tmp_path / "d").mkdir()
    (tmp_path / "envd.toml").write_text('[services.a]\nimage = "x"\nvolumes = ["./d:/d:ro,zz"]\n')
    with pytest.raises(SpecError, match="invalid volume mode 'zz'"):
        load(tmp_path, environ={})


def test_healthcheck_disable_false_alone_is_no_override(tmp_path: Path) -> None:
    """`healthcheck: {disable: false}` imports as no healthcheck (the image's own), without a note."""
    project(tmp_path, "services:\n  app:\n    image: x\n    healthcheck: {disable: false}\n")
    result = imported(tmp_path)
    assert "healthcheck" not in toml(result)["services"]["app"]
    assert result.notes == []


def test_depends_on_restart_is_imported(tmp_path: Path) -> None:
    """`depends_on.db.restart: true` reaches envd's depends_on and comes back in the export."""
    project(
        tmp_path,
        """\
        services:
          db: {image: x}
          api:
            image: x
            depends_on: {db: {condition: service_started, restart: true}}
        """,
    )
    spec = loaded(tmp_path, imported(tmp_path))
    assert spec.spec.services["api"].depends_on["db"].restart is True
    assert "restart: true" in render_yaml(to_compose(spec))


def test_bind_options_in_stack_and_kubernetes_exports(tmp_path: Path) -> None:
    """Propagation becomes mountPropagation in Kubernetes; relabel is noted where it cannot go."""
    from envd.interop.k8s_export import to_k8s
    from envd.interop.stack_export import to_stack

    (tmp_path / "d").mkdir()
    (tmp_path / "envd.toml").write_text(
        '[services.a]\nimage = "x"\nvolumes = ["./d:/d:ro,Z,rslave"]\n'
    )
    spec = load(tmp_path, environ={})
    k8s = to_k8s(spec)
    assert "mountPropagation: HostToContainer" in render_yaml(k8s)
    assert any("SELinux relabel Z of /d" in n for n in k8s.notes)
    stack = to_stack(spec, "vip")
    assert "./d:/d:ro,Z,rslave" in render_yaml(stack)
    assert any("SELinux relabel Z of /d" in n for n in stack.notes)


def test_a_command_string_stops_at_a_shell_operator_as_compose_does(tmp_path: Path) -> None:
    """`command: a up && a finish` runs `a up` under Compose v2 (its shell-word split ends at
    `&&`; docker-kong's migrations): envd imports the same argv and says so; quoted
    operators inside `sh -c "…"` are kept."""
    project(
        tmp_path,
        "services:\n  m:\n    image: x\n    command: kong migrations up && kong migrations finish\n"
        '  s:\n    image: x\n    command: sh -c "a && b"\n',
    )
    result = imported(tmp_path)
    services = toml(result)["services"]
    assert services["m"]["command"] == ["kong", "migrations", "up"]
    assert services["s"]["command"] == 'sh -c "a && b"'
    assert any("services.m.command" in n and "'&&'" in n for n in result.notes)


def test_a_dotenv_value_may_use_variables_defined_above_it(tmp_path: Path) -> None:
    """As Compose reads a project's `.env` on import: `B=${A}/x` expands A from earlier (the
    OpenTelemetry demo's OTEL_RESOURCE_ATTRIBUTES); a single-quoted value stays literal."""
    from envd.spec.interpolate import parse_dotenv

    text = "A=one\nB=${A}/x\nC=\"${A}-${MISSING:-d}\"\nD='${A}'\n"
    assert parse_dotenv(text, expand=True) == {"A": "one", "B": "one/x", "C": "one-d", "D": "${A}"}
    # Without expand (env_file files): the text as written.
    assert parse_dotenv(text)["B"] == "${A}/x"
