"""``envd import`` on a Compose file with values of the wrong kind: a located error, never an internal one."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.interop.compose_import import import_compose
from envd.values.errors import SpecError

SERVICE = "services:\n  a:\n    image: x\n"

# (Compose text, the path and message the error must name)
BAD = [
    ("services:\n  a: [1]\n", "services.a: expected a mapping, got a list"),
    (SERVICE + "    ports: 80\n", "services.a.ports: expected a list, got the number 80"),
    (SERVICE + "    ports: [{published: 80}]\n", "services.a.ports[0]: 'target' is required"),
    (SERVICE + "    ports: [{target: web}]\n", "services.a.ports[0].target: expected an integer"),
    (SERVICE + "    volumes: ./a:/a\n", "services.a.volumes: expected a list"),
    (
        SERVICE + "    volumes: [{type: tmpfs, target: /t, tmpfs: 5}]\n",
        "services.a.volumes[0].tmpfs:",
    ),
    (SERVICE + "    depends_on: b\n", "services.a.depends_on: expected a mapping"),
    (SERVICE + "    depends_on: {b: [1]}\n", "services.a.depends_on.b: expected a mapping"),
    (SERVICE + "    healthcheck: [1]\n", "services.a.healthcheck: expected a mapping"),
    (
        SERVICE + "    healthcheck: {test: [CMD, x], retries: many}\n",
        "services.a.healthcheck.retries: expected an integer",
    ),
    (SERVICE + "    secrets: [{target: t}]\n", "services.a.secrets[0]: 'source' is required"),
    (
        SERVICE + "    secrets: [{source: s, mode: rw}]\n",
        "services.a.secrets[0].mode: expected an octal",
    ),
    (SERVICE + "    scale: many\n", "services.a.scale: expected an integer"),
    (SERVICE + "    deploy: {replicas: many}\n", "services.a.deploy.replicas: expected an integer"),
    (SERVICE + "    deploy: [1]\n", "services.a.deploy: expected a mapping"),
    (SERVICE + "    networks: front\n", "services.a.networks: expected a mapping"),
    (SERVICE + "    networks: {front: [1]}\n", "services.a.networks.front: expected a mapping"),
    (SERVICE + "    cap_add: NET_ADMIN\n", "services.a.cap_add: expected a list"),
    (SERVICE + "    profiles: debug\n", "services.a.profiles: expected a list"),
    (SERVICE + "    develop: {watch: [x]}\n", "services.a.develop.watch[0]: expected a mapping"),
    (SERVICE + "    develop: {watch: [{action: sync}]}\n", "services.a.develop.watch[0]: 'path'"),
    ("services: {}\nvolumes: [a]\n", "volumes: expected a mapping, got a list"),
    ("services: {}\nvolumes:\n  a: str\n", "volumes.a: expected a mapping"),
    ("services: {}\nnetworks: [a]\n", "networks: expected a mapping"),
    ("services: {}\nsecrets:\n  a: str\n", "secrets.a: expected a mapping"),
    (SERVICE + "x-envd: {services: {a: [1]}}\n", "x-envd.services.a: expected a mapping"),
]

# Shapes that crashed the importer or were imported as garbage (str() of a list, "None", "True").
SHAPES = [
    ("services:\n  a: 5\n", "services.a: expected a mapping, got the number 5"),
    ("services:\n  a: web\n", "services.a: expected a mapping, got 'web'"),
    (
        SERVICE + "    volumes: [{type: volume, source: v, target: /v, read_only: rw}]\n",
        "services.a.volumes[0].read_only: expected true or false, got 'rw'",
    ),
    (
        SERVICE + "    develop: {watch: [{action: rebuild, ignore: [x]}]}\n",
        "services.a.develop.watch[0]: 'path' is required",
    ),
    (
        SERVICE + "    develop: {watch: [{path: ., action: rebuild, ignore: x}]}\n",
        "services.a.develop.watch[0].ignore: expected a list",
    ),
    (SERVICE + "    develop: [1]\n", "services.a.develop: expected a mapping"),
    (SERVICE + "x-envd: {services: {a: {watch: 5}}}\n", "x-envd.services.a.watch: expected a list"),
    (
        SERVICE + "x-envd: {services: {a: {watch: [1]}}}\n",
        "x-envd.services.a.watch[0]: expected a mapping",
    ),
    (
        SERVICE + "    depends_on: [b]\nx-envd: {services: {a: {optional_depends_on: 5}}}\n",
        "x-envd.services.a.optional_depends_on: expected a list",
    ),
    (SERVICE + "x-envd: 5\n", "x-envd: expected a mapping"),
    (SERVICE + "x-envd: {project: [1]}\n", "x-envd.project: expected a string, got a list"),
    (SERVICE + "name: [1]\n", "name: expected a string, got a list"),
    ("services:\n  a:\n    image: true\n", "services.a.image: expected a string, got a boolean"),
    ("services:\n  a:\n    image: [x]\n", "services.a.image: expected a string, got a list"),
    (SERVICE + "    user: {a: 1}\n", "services.a.user: expected a string, got a mapping"),
    (SERVICE + "    command: {a: 1}\n", "services.a.command: expected a string, got a mapping"),
    (SERVICE + "    command: [[a]]\n", "services.a.command[0]: expected a string, got a list"),
    (SERVICE + "    entrypoint: [~]\n", "services.a.entrypoint[0]: expected a string, got nothing"),
    (SERVICE + "    environment: 5\n", "services.a.environment: expected a mapping or a list"),
    (SERVICE + "    environment: [[A]]\n", "services.a.environment[0]: expected a string"),
    (SERVICE + "    environment: {A: [1]}\n", "services.a.environment.A: expected a string"),
    (SERVICE + "    labels: true\n", "services.a.labels: expected a mapping or a list"),
    (SERVICE + "    env_file: [{path: ~}]\n", "services.a.env_file[0].path: expected a string"),
    (SERVICE + "    env_file: [[a]]\n", "services.a.env_file[0]: expected a string"),
    (SERVICE + "    tmpfs: [{a: 1}]\n", "services.a.tmpfs: expected a string"),
    (SERVICE + "    build: [.]\n", "services.a.build: expected a mapping, got a list"),
    (SERVICE + "    build: {context: [.]}\n", "services.a.build.context: expected a string"),
    (SERVICE + "    build: {args: 5}\n", "services.a.build.args: expected a mapping or a list"),
    (SERVICE + "    ports: [true]\n", "services.a.ports[0]: expected a mapping, got a boolean"),
    (SERVICE + "    ports: [[80]]\n", "services.a.ports[0]: expected a mapping, got a list"),
    (
        SERVICE + "    ports: [{target: 80, protocol: [udp]}]\n",
        "ports[0].protocol: expected a string",
    ),
    (SERVICE + "    ports: [{target: 999999}]\n", "ports[0].target: 999999 is out of range"),
    (SERVICE + "    ports: [{target: 80, published: -1}]\n", "ports[0].published: -1 is out"),
    (SERVICE + "    volumes: [{type: bind, source: .}]\n", "volumes[0]: 'target' is required"),
    (SERVICE + "    volumes: [5]\n", "services.a.volumes[0]: expected a mapping, got the number"),
    (SERVICE + "    volumes: [{target: /a, bind: [1]}]\n", "volumes[0].bind: expected a mapping"),
    (SERVICE + "    healthcheck: {test: {a: 1}}\n", "healthcheck.test: expected a string"),
    (SERVICE + "    healthcheck: {test: []}\n", "healthcheck.test: expected a command"),
    (SERVICE + "    healthcheck: {test: [CMD], interval: [1]}\n", "healthcheck.interval: expected"),
    (
        SERVICE + "    healthcheck: {disable: maybe}\n",
        "healthcheck.disable: expected true or false",
    ),
    (SERVICE + "    depends_on: [{b: 1}]\n", "services.a.depends_on[0]: expected a string"),
    (SERVICE + "    depends_on: {b: {condition: [1]}}\n", "depends_on.b.condition: expected a"),
    (SERVICE + "    depends_on: {b: {required: maybe}}\n", "depends_on.b.required: expected true"),
    (SERVICE + "    networks: [{a: 1}]\n", "services.a.networks[0]: expected a string"),
    (SERVICE + "    secrets: [{source: s, uid: [1]}]\n", "secrets[0].uid: expected a string"),
    (SERVICE + "    secrets: [{source: s, mode: 99999}]\n", "secrets[0].mode: 99999 is out of"),
    (SERVICE + "    secrets: [{source: s, mode: '0999'}]\n", "secrets[0].mode: expected an octal"),
    (SERVICE + "    restart: [1]\n", "services.a.restart: expected a string, got a list"),
    (SERVICE + "    deploy: {restart_policy: 5}\n", "deploy.restart_policy: expected a mapping"),
    (SERVICE + "    init: 'no'\n", "services.a.init: expected true or false, got 'no'"),
    (SERVICE + "    read_only: [1]\n", "services.a.read_only: expected true or false"),
    (SERVICE + "    cap_add: [[a]]\n", "services.a.cap_add[0]: expected a string"),
    (SERVICE + "    profiles: [{a: 1}]\n", "services.a.profiles[0]: expected a string"),
    (SERVICE + "    pull_policy: [1]\n", "services.a.pull_policy: expected a string"),
    (SERVICE + "    scale: -3\n", "services.a.scale: -3 is out of range"),
    (
        SERVICE + "    scale: 99999999999999999999\n",
        "services.a.scale: 99999999999999999999 is out",
    ),
    (SERVICE + "    scale: '\u00b2'\n", "services.a.scale: expected an integer"),
    (SERVICE + "    scale: '" + "9" * 5000 + "'\n", "services.a.scale: expected an integer"),
    ("services: {}\nvolumes: {v: {external: {name: [1]}}}\n", "external.name: expected a"),
    ("services: {}\nvolumes: {v: {driver_opts: 5}}\n", "volumes.v.driver_opts: expected a"),
    ("services: {}\nvolumes: {v: {external: maybe}}\n", "volumes.v.external: expected true"),
    ("services: {}\nnetworks: {n: {internal: [1]}}\n", "networks.n.internal: expected true"),
    ("services: {}\nsecrets: {s: {file: ~}}\n", "secrets.s.file: expected a string, got nothing"),
    ("services: {}\nsecrets: {s: {environment: [1]}}\n", "secrets.s.environment: expected a"),
    (
        "services: {}\nsecrets: {s: {file: f}}\nx-envd: {secrets: {s: {env: [1]}}}\n",
        "x-envd.secrets.s.env: expected a string",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_a_value_of_the_wrong_kind_is_a_located_spec_error(text: str, message: str) -> None:
    """Each wrong kind of value raises SpecError naming the file and the field's path."""
    with pytest.raises(SpecError) as info:
        import_compose(text, source="compose.yml")
    assert f"compose.yml: {message}" in str(info.value)


@pytest.mark.parametrize(("text", "message"), SHAPES, ids=[m.split(":")[0] for _, m in SHAPES])
def test_every_shape_mismatch_is_a_located_spec_error(text: str, message: str) -> None:
    """Nulls, booleans, lists, mappings and huge numbers where they do not belong are exit 2 with the path."""
    with pytest.raises(SpecError) as info:
        import_compose(text, source="compose.yml")
    [problem] = info.value.problems
    assert problem.render().startswith("compose.yml: ")
    assert message in problem.render()


def test_control_characters_in_keys_print_as_escapes() -> None:
    """A key holding a terminal escape or a line break is shown escaped in notes and errors."""
    result = import_compose(SERVICE + '    "x\\e[2J\\nfake": 1\n')
    [note] = result.notes
    assert "\x1b" not in note and "\n" not in note and "\\x1b[2J\\nfake" in note
    with pytest.raises(SpecError) as info:
        import_compose('services:\n  "a\\e[31m": 5\n', source="compose.yml")
    assert "\x1b" not in str(info.value) and "\\x1b[31m" in str(info.value)


def test_a_del_character_is_written_as_valid_toml() -> None:
    """A DEL character in a value is escaped, so the TOML written is TOML."""
    toml = import_compose('services:\n  a:\n    image: "a\\x7fb"\n').toml
    assert 'image = "a\\u007fb"' in toml


def test_values_compose_accepts_in_either_form_still_import() -> None:
    """Digit strings, octal mode strings and empty bodies are read as Compose reads them."""
    text = (
        "services:\n  a:\n    image: x\n    scale: '2'\n"
        "    ports: [{target: '80'}]\n"
        "    secrets: [{source: s, mode: '0440'}]\n"
        "    volumes: [{type: tmpfs, target: /t, tmpfs: {size: 1024, mode: '1777'}}]\n"
        "    depends_on: {b: }\n"
        "  b:\n"
        "secrets:\n  s:\n    file: ./s\n"
        "volumes:\n  v:\n"
    )
    toml = import_compose(text).toml
    assert "replicas = 2" in toml
    assert "target = 80" in toml
    assert "mode = 0o440" in toml
    assert '"/t:size=1024,mode=1777"' in toml
    assert 'b = "started"' in toml


def test_import_command_exits_2_with_the_path(tmp_path: Path) -> None:
    """`envd import` on such a file is a usage error (exit 2) with the path, not an internal error."""
    from tests.helpers import run_envd

    (tmp_path / "compose.yml").write_text(SERVICE + "    ports: 80\n")
    proc = run_envd(["import", "compose.yml"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "services.a.ports: expected a list" in proc.stderr
    assert "internal error" not in proc.stderr
