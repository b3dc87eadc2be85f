"""The committed Compose corpus (tests/fixtures/compose) and how the interop tests load it.

Shared by the unit tests of import/export and the integration tests that hand
the exports to ``docker-compose config`` and ``docker stack config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from envd.interop.compose_import import import_compose
from envd.spec.load import LoadedSpec, load

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "compose"
CORPUS = sorted(FIXTURES.glob("*.yml"))
CORPUS_IDS = [p.stem for p in CORPUS]


def materialize(directory: Path, doc: dict[str, Any]) -> None:
    """Create the files a Compose file refers to (build contexts, env files, secrets, binds)."""

    def touch(rel: str, is_file: bool | None = None) -> None:
        path = Path(rel).expanduser() if rel.startswith("~") else directory / rel
        name = path.name
        if is_file is None:
            is_file = "." in name.lstrip(".")
        if is_file:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text("KEY=value\n" if name.endswith(".env") else "x\n")
        else:
            path.mkdir(parents=True, exist_ok=True)

    for svc in (doc.get("services") or {}).values():
        build = svc.get("build")
        if build is not None:
            ctx = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = (
                "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            )
            touch(ctx, is_file=False)
            touch(f"{ctx}/{dockerfile}", is_file=True)
        for item in svc.get("env_file") or []:
            touch(item["path"] if isinstance(item, dict) else item, is_file=True)
        for vol in svc.get("volumes") or []:
            src = vol.split(":")[0] if isinstance(vol, str) and ":" in vol else ""
            if isinstance(vol, dict) and vol.get("type") == "bind":
                src = vol["source"]
            if src.startswith((".", "~")):
                touch(src)
        for rule in (svc.get("develop") or {}).get("watch") or []:
            touch(rule["path"])
    for section in ("secrets", "configs"):
        for sdef in (doc.get(section) or {}).values():
            if isinstance(sdef, dict) and isinstance(sdef.get("file"), str):
                touch(sdef["file"], is_file=True)


def import_and_load(
    text: str, directory: Path, profiles: frozenset[str] = frozenset()
) -> LoadedSpec:
    """Import Compose text into ``directory/envd.toml`` and load it with envd's loader."""
    directory.mkdir(parents=True, exist_ok=True)
    materialize(directory, yaml.safe_load(text))
    result = import_compose(text)
    (directory / "envd.toml").write_text(result.toml)
    return load(directory, environ={}, profiles=profiles)


def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own, so binds like ~/.ssh resolve inside the test's directory."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path
