"""The committed JSON Schema, the shipped examples and the documented example spec."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from envd.spec import models
from envd.spec.interpolate import interpolate_tree
from envd.spec.load import load
from envd.spec.schema import json_schema, render
from envd.values.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

try:
    import jsonschema
except ImportError:  # pragma: no cover - depends on the machine
    jsonschema = None

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "schemas" / "envd.schema.json"
EXAMPLE = REPO / "envd.toml.example"
SHIPPED = sorted(REPO.glob("examples/*/envd.toml"))
EXAMPLES = [*SHIPPED, EXAMPLE]

# Files envd.toml.example refers to, created in a scratch project directory.
EXAMPLE_FILES = {
    ".env.api": "export API_DEBUG=0\n",
    "Dockerfile": "FROM scratch\n",
    "requirements.txt": "",
    "src/app.py": "",
    "db/init/00-schema.sql": "",
    "secrets/db_password.txt": "example-password\n",
}


def _raw(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _schema_problems(data: dict[str, Any]) -> list[str]:
    """Problems with raw TOML data: by the JSON Schema, or the models without jsonschema."""
    if jsonschema is not None:
        validator = jsonschema.Draft202012Validator(json_schema())
        return [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(data)
        ]
    try:  # pragma: no cover - only without jsonschema
        # The models see values after interpolation (defaults, empty environment).
        models.Spec.model_validate(interpolate_tree(data, {}))
    except ValidationError as exc:  # pragma: no cover
        return [str(exc)]
    return []  # pragma: no cover


def test_committed_schema_is_current() -> None:
    """schemas/envd.schema.json matches the models; regenerate with `python -m envd schema`."""
    assert SCHEMA_FILE.is_file(), "run: python -m envd schema > schemas/envd.schema.json"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), (
        "schemas/envd.schema.json is stale: run python -m envd schema > schemas/envd.schema.json"
    )


def test_schema_is_valid_draft_2020_12() -> None:
    """The schema is itself valid JSON Schema and forbids unknown fields, as the loader does."""
    schema = json.loads(render())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Service"]["additionalProperties"] is False
    if jsonschema is not None:
        jsonschema.Draft202012Validator.check_schema(schema)
    # Every $ref points at a definition that exists.
    refs = set(re.findall(r'"\$ref": "#/\$defs/([^"]+)"', render()))
    assert refs <= set(schema["$defs"])


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(REPO)) for p in EXAMPLES])
def test_examples_validate_against_schema(path: Path) -> None:
    """Every shipped example spec passes the JSON Schema editors check it with."""
    assert _schema_problems(_raw(path)) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(REPO)) for p in EXAMPLES])
def test_examples_point_editors_at_the_schema(path: Path) -> None:
    """Each example's first line is a ``#:schema`` directive reaching the committed schema."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("#:schema ")
    assert (path.parent / first.split(" ", 1)[1]).resolve() == SCHEMA_FILE


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"services": {"api": {"imagee": "x"}}}, "imagee"),
        ({"services": {"api": {"image": "x", "restart": "sometimes"}}}, "restart"),
        ({"services": {"api": {"image": "x", "stop_grace_period": "10 s"}}}, "stop_grace_period"),
        ({"services": {"api": {"image": "x", "ports": [{"target": 80, "x": 1}]}}}, "ports"),
        ({"volumes": {"v": {"drivr": "local"}}}, "drivr"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(data: dict[str, Any], fragment: str) -> None:
    """Unknown fields, bad enums, bad durations and bad long forms fail schema validation too."""
    problems = _schema_problems(data)
    assert problems, data
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(REPO)) for p in SHIPPED])
def test_shipped_examples_load(path: Path) -> None:
    """Each example project under examples/ loads as shipped, in every environment it defines."""
    for environment in [None, *sorted(_raw(path).get("environments", {}))]:
        loaded = load(path.parent, environment=environment, environ={})
        assert loaded.spec.services


# --------------------------------------------------------------------------- envd.toml.example


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    for name, text in EXAMPLE_FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_example_spec_loads(example_dir: Path) -> None:
    """envd.toml.example is a valid spec, loaded from the repository root into a scratch project."""
    loaded = load(example_dir, file=EXAMPLE, environ={"LOG_LEVEL": "debug"})
    assert loaded.project == "shop"
    assert set(loaded.spec.services) == {
        "db", "cache", "migrate", "api", "worker", "adminer", "api-debug"
    }  # fmt: skip
    assert set(loaded.active_services()) == {"db", "cache", "migrate", "api", "worker"}
    api = loaded.spec.services["api"]
    assert api.env["LOG_LEVEL"] == "debug"
    assert api.env["GREETING"] == "${NOT_INTERPOLATED}"
    assert loaded.env_files["api"] == {"API_DEBUG": "0"}


@pytest.mark.parametrize("environment", ["ci", "staging"])
def test_example_spec_environments_load(example_dir: Path, environment: str) -> None:
    """Every overlay of envd.toml.example loads, under ``<name>-<env>``."""
    loaded = load(example_dir, file=EXAMPLE, environment=environment, environ={})
    assert loaded.project == f"shop-{environment}"
    assert set(_raw(EXAMPLE)["environments"]) == {"ci", "staging"}


def test_example_spec_with_profile(example_dir: Path) -> None:
    """The debug profile of envd.toml.example switches its extra service on."""
    loaded = load(example_dir, file=EXAMPLE, environ={}, profiles=frozenset({"debug"}))
    assert "adminer" in loaded.active_services()


def test_example_spec_needs_its_files(tmp_path: Path) -> None:
    """Loaded without its neighbour files, the example reports each missing one (sanity check)."""
    with pytest.raises(SpecError) as info:
        load(tmp_path, file=EXAMPLE, environ={})
    paths = {p.path for p in info.value.problems}
    assert "secrets.db_password.file" in paths
    assert "services.api.env_file[0]" in paths


def _spec_models() -> list[type[BaseModel]]:
    return [
        obj
        for obj in vars(models).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == models.__name__
        and not obj.__name__.startswith("_")
    ]


def test_example_documents_every_field() -> None:
    """Every field of every spec model is named in envd.toml.example (as a key or in a comment)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    missing = sorted(
        f"{model.__name__}.{name}"
        for model in _spec_models()
        for name in model.model_fields
        if name not in words
    )
    assert missing == []


def test_example_shows_every_documented_choice() -> None:
    """The example names each enum value the contract documents (restart, pull, conditions...)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for value in [
        "no", "always", "on-failure", "unless-stopped",  # restart
        "missing", "never", "build",  # pull
        "started", "healthy", "completed",  # depends_on
        "sync", "sync+restart", "restart", "rebuild",  # watch actions
        "volume", "bind", "tmpfs",  # mount types
        "tcp", "udp", "sctp",  # protocols
        "CMD", "CMD-SHELL",  # healthcheck tests
    ]:  # fmt: skip
        assert f'"{value}"' in text, value
