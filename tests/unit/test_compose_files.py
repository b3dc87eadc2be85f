"""``envd import`` over several Compose files: -f order, merge rules, override discovery,
COMPOSE_FILE, ``!reset``/``!override``, ``extends`` and ``include``."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from envd.cli.app import run_cli
from envd.interop.compose_import import ImportResult, import_files
from envd.values.errors import SpecError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def spec(result: ImportResult) -> dict[str, Any]:
    return tomllib.loads(result.toml)


def imported(tmp_path: Path, *files: str, env_files: tuple[str, ...] = ()) -> ImportResult:
    return import_files(list(files), env_files, environ={}, cwd=tmp_path)


BASE = """\
services:
  web:
    image: nginx
    command: ["serve", "--verbose"]
    ports: ["8080:80", "9000:9000"]
    volumes: ["./data:/data", "cache:/cache"]
    environment: {A: "1", B: "base"}
    labels: [team=web]
    depends_on: [db]
  db:
    image: postgres
"""

OVERRIDE = """\
services:
  web:
    command: ["serve"]
    ports: ["8081:80"]
    volumes: ["./data2:/data"]
    environment: [B=override, C=new]
    labels: !reset []
    depends_on:
      db: {condition: service_healthy, restart: true}
  db:
    ports: !override ["5433:5432"]
"""


def test_files_merge_in_order_by_composes_rules(tmp_path: Path) -> None:
    """-f a -f b: command replaced, ports appended, volumes by target, env merged, !reset clears."""
    write(tmp_path / "a.yml", BASE)
    write(tmp_path / "b.yml", OVERRIDE)
    web = spec(imported(tmp_path, "a.yml", "b.yml"))["services"]["web"]
    assert web["command"] == ["serve"]
    assert web["ports"] == ["8080:80", "9000:9000", "8081:80"]
    assert web["volumes"] == ["./data2:/data", "cache:/cache"]
    assert web["env"] == {"A": "1", "B": "override", "C": "new"}
    assert "labels" not in web
    assert web["depends_on"] == {"db": {"condition": "healthy", "restart": True}}


def test_override_replaces_a_list_whole(tmp_path: Path) -> None:
    """`!override` replaces the earlier files' list instead of appending to it."""
    write(
        tmp_path / "a.yml",
        BASE.replace("image: postgres", "image: postgres\n    ports: ['5432:5432']"),
    )
    write(tmp_path / "b.yml", OVERRIDE)
    db = spec(imported(tmp_path, "a.yml", "b.yml"))["services"]["db"]
    assert db["ports"] == ["5433:5432"]


def test_without_f_compose_yaml_and_its_override_are_read(tmp_path: Path) -> None:
    """No -f: compose.yaml and compose.override.yml beside it are read and merged, as Compose does."""
    write(tmp_path / "compose.yaml", BASE)
    write(tmp_path / "compose.override.yml", OVERRIDE)
    result = imported(tmp_path)
    assert spec(result)["services"]["web"]["command"] == ["serve"]
    assert result.toml.startswith("# Imported by envd from compose.yaml, compose.override.yml.")


def test_the_compose_file_is_found_in_a_parent_directory(tmp_path: Path) -> None:
    """No -f in a subdirectory: the nearest parent's docker-compose.yml is read."""
    write(tmp_path / "docker-compose.yml", BASE)
    (tmp_path / "src" / "deep").mkdir(parents=True)
    result = import_files([], environ={}, cwd=tmp_path / "src" / "deep")
    assert set(spec(result)["services"]) == {"web", "db"}


def test_no_compose_file_is_a_usage_error(tmp_path: Path) -> None:
    """No -f and no Compose file up the tree: one sentence naming the names looked for."""
    with pytest.raises(UsageError, match=r"no Compose file found .*compose\.yaml"):
        imported(tmp_path)


def test_compose_file_from_dotenv_with_its_separator(tmp_path: Path) -> None:
    """COMPOSE_FILE and COMPOSE_PATH_SEPARATOR in .env pick and order the files."""
    write(tmp_path / "base.yml", BASE)
    write(tmp_path / "dev.yml", OVERRIDE)
    write(tmp_path / "compose.yaml", "services: {other: {image: x}}\n")
    write(tmp_path / ".env", "COMPOSE_FILE=base.yml;dev.yml\nCOMPOSE_PATH_SEPARATOR=;\n")
    result = imported(tmp_path)
    assert set(spec(result)["services"]) == {"web", "db"}
    assert spec(result)["services"]["web"]["command"] == ["serve"]


def test_one_f_leaves_the_override_out_with_a_note(tmp_path: Path) -> None:
    """-f compose.yaml reads that file only (as Compose) and says the override beside it was not read."""
    write(tmp_path / "compose.yaml", BASE)
    write(tmp_path / "compose.override.yml", OVERRIDE)
    result = imported(tmp_path, "compose.yaml")
    assert spec(result)["services"]["web"]["command"] == ["serve", "--verbose"]
    assert any("compose.override.yml was not read" in n for n in result.notes)


def test_extends_in_the_same_file_and_from_another(tmp_path: Path) -> None:
    """extends merges the base under the service; a base from another directory has its paths rebased."""
    write(
        tmp_path / "common" / "base.yml",
        """\
        services:
          app:
            image: python
            env_file: app.env
            volumes: ["./src:/src"]
            environment: {TZ: utc, PORT: "80"}
        """,
    )
    write(tmp_path / "common" / "app.env", "X=1\n")
    write(
        tmp_path / "compose.yaml",
        """\
        services:
          base:
            image: busybox
            user: root
          worker:
            extends: base
            command: ["work"]
          api:
            extends: {file: common/base.yml, service: app}
            environment: {PORT: "8080"}
        """,
    )
    services = spec(imported(tmp_path))["services"]
    assert services["worker"]["user"] == "root" and services["worker"]["image"] == "busybox"
    api = services["api"]
    assert api["env"] == {"TZ": "utc", "PORT": "8080"}
    assert api["volumes"] == ["./common/src:/src"]
    assert api["env_file"] == ["./common/app.env"]


def test_an_extends_cycle_is_refused_in_one_sentence(tmp_path: Path) -> None:
    """a extends b extends a: one located sentence naming the cycle."""
    write(
        tmp_path / "compose.yaml",
        "services:\n  a: {extends: b, image: x}\n  b: {extends: a}\n",
    )
    with pytest.raises(SpecError) as info:
        imported(tmp_path)
    message = str(info.value)
    assert "extends cycle" in message and message.startswith("compose.yaml")
    assert "\n" not in message.strip()


def test_include_short_and_long_with_their_own_directory_and_env(tmp_path: Path) -> None:
    """include: the included project's paths and .env are its own; env_file and project_directory are honoured."""
    write(
        tmp_path / "db" / "compose.yaml",
        """\
        services:
          db:
            image: "postgres:${PGVER}"
            volumes: ["./init:/docker-entrypoint-initdb.d"]
        """,
    )
    write(tmp_path / "db" / ".env", "PGVER=16\n")
    write(
        tmp_path / "cache" / "cache.yml",
        """\
        services:
          cache:
            image: "redis:${REDIS}"
            build: ./ctx
        """,
    )
    write(tmp_path / "cache" / "vars.env", "REDIS=7\n")
    write(
        tmp_path / "compose.yaml",
        """\
        include:
          - db/compose.yaml
          - path: cache/cache.yml
            project_directory: cache
            env_file: cache/vars.env
        services:
          web:
            image: nginx
            depends_on: [db, cache]
        """,
    )
    services = spec(imported(tmp_path))["services"]
    assert services["db"]["image"] == "postgres:16"
    assert services["db"]["volumes"] == ["./db/init:/docker-entrypoint-initdb.d"]
    assert services["cache"]["image"] == "redis:7"
    assert services["cache"]["build"] == {"context": "./cache/ctx"}


def test_an_include_cycle_is_refused_in_one_sentence(tmp_path: Path) -> None:
    """compose.yaml includes a.yml includes compose.yaml: refused, naming the chain."""
    write(tmp_path / "compose.yaml", "include: [a.yml]\nservices: {web: {image: x}}\n")
    write(tmp_path / "a.yml", "include: [compose.yaml]\nservices: {a: {image: x}}\n")
    with pytest.raises(SpecError) as info:
        imported(tmp_path)
    message = str(info.value)
    assert "include cycle: compose.yaml includes a.yml includes compose.yaml" in message
    assert "\n" not in message.strip()


def test_a_file_outside_the_project_is_read_with_a_note(tmp_path: Path) -> None:
    """An included file outside the project directory is read, as Compose does, and a note says so."""
    write(tmp_path / "shared" / "compose.yaml", "services: {shared: {image: x}}\n")
    write(tmp_path / "proj" / "compose.yaml", "include: [../shared/compose.yaml]\nservices: {}\n")
    result = import_files([], environ={}, cwd=tmp_path / "proj")
    assert "shared" in spec(result)["services"]
    assert any("outside the project directory" in n for n in result.notes)


def test_limits_hold_for_an_included_file(tmp_path: Path) -> None:
    """An alias bomb in an included file is refused naming that file and line."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 8):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
    write(tmp_path / "bomb.yml", bomb)
    write(tmp_path / "compose.yaml", "include: [bomb.yml]\nservices: {}\n")
    with pytest.raises(SpecError) as info:
        imported(tmp_path)
    assert str(info.value).startswith("bomb.yml:")
    assert "nodes" in str(info.value)


def test_a_bad_override_file_is_named_with_its_line(tmp_path: Path) -> None:
    """Broken YAML in the second -f file: exit 2 and one line naming that file and line."""
    write(tmp_path / "a.yml", BASE)
    write(tmp_path / "b.yml", "services:\n  web: [\n")
    with pytest.raises(SpecError) as info:
        imported(tmp_path, "a.yml", "b.yml")
    assert str(info.value).startswith("b.yml:3:")


def test_cli_takes_several_f_and_exits_2_on_a_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`envd import -f a -f b` merges; a missing file is one sentence and exit 2."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.yml", BASE)
    write(tmp_path / "b.yml", OVERRIDE)
    assert run_cli(["import", "-f", "a.yml", "-f", "b.yml", "-o", "envd.toml"]) == 0
    assert tomllib.loads((tmp_path / "envd.toml").read_text())["services"]["web"]["command"] == [
        "serve"
    ]
    capsys.readouterr()
    assert run_cli(["import", "-f", "a.yml", "-f", "missing.yml"]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.yml" in err and "\n" not in err and "Traceback" not in err


def test_compose_file_from_an_env_file_replaces_dotenv(tmp_path: Path) -> None:
    """--env-file replaces .env for COMPOSE_FILE too, as Compose's --env-file does."""
    write(tmp_path / "base.yml", BASE)
    write(tmp_path / "other.yml", "services: {other: {image: x}}\n")
    write(tmp_path / ".env", "COMPOSE_FILE=other.yml\n")
    write(tmp_path / "ci.env", "COMPOSE_FILE=base.yml\n")
    result = imported(tmp_path, env_files=("ci.env",))
    assert set(spec(result)["services"]) == {"web", "db"}
