"""The Docker CLI accepts what envd exports: ``docker-compose config`` on every
Compose export and ``docker stack config`` on every stack export of the corpus.

These shell out to docker, so they live here rather than in tests/unit (the
corpus, its import and the offline checks stay in tests/unit/test_export_import.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from envd.interop.export import render_yaml, to_compose, to_stack
from tests.unit.test_export_import import CORPUS, CORPUS_IDS, _import_and_load

DOCKER_COMPOSE = shutil.which("docker-compose")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own, so binds like ~/.ssh resolve inside the test's directory."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose is not installed")
@pytest.mark.parametrize("path", CORPUS, ids=CORPUS_IDS)
def test_exported_compose_passes_docker_compose_config(
    path: Path, tmp_path: Path, home: Path
) -> None:
    """`docker-compose -f FILE config` (1.29) accepts every exported Compose file."""
    loaded = _import_and_load(path.read_text(), tmp_path)
    out = tmp_path / "docker-compose.yml"
    out.write_text(render_yaml(to_compose(loaded)))
    proc = subprocess.run(
        [str(DOCKER_COMPOSE), "-f", str(out), "config", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def _stack_config_available() -> bool:
    if shutil.which("docker") is None:
        return False
    proc = subprocess.run(
        ["docker", "stack", "config", "--help"], capture_output=True, timeout=30, check=False
    )
    return proc.returncode == 0


@pytest.mark.parametrize("path", CORPUS, ids=CORPUS_IDS)
def test_exported_stack_passes_docker_stack_config(path: Path, tmp_path: Path, home: Path) -> None:
    """`docker stack config` accepts every exported stack file (skipped without a docker CLI that has it)."""
    if not _stack_config_available():
        pytest.skip("no `docker stack config` here")
    loaded = _import_and_load(path.read_text(), tmp_path)
    out = tmp_path / "stack.yml"
    out.write_text(render_yaml(to_stack(loaded)))
    proc = subprocess.run(
        ["docker", "stack", "config", "-c", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
