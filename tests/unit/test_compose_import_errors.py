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


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_a_value_of_the_wrong_kind_is_a_located_spec_error(text: str, message: str) -> None:
    """Each wrong kind of value raises SpecError naming the file and the field's path."""
    with pytest.raises(SpecError) as info:
        import_compose(text, source="compose.yml")
    assert f"compose.yml: {message}" in str(info.value)


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
