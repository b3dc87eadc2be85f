"""Fixtures shared by every envd test.

* Tests under ``tests/integration`` and ``tests/e2e`` get the ``docker`` marker
  automatically. A ``docker`` test is skipped when no engine answers, or fails
  when ``ENVD_REQUIRE_DOCKER=1`` (as ``scripts/test.sh`` and CI set it).
* Tests under ``tests/unit`` never talk to Docker: ``DOCKER_HOST`` points at a
  socket that does not exist while they run, and asking for ``docker_client``
  (or carrying the ``docker`` marker) there is an error.
* ``project_name`` gives a unique project and removes every container, network,
  volume and image labelled ``dev.envd.project=<name>`` afterwards, even when
  the test fails; ``project_dir`` also stops an envd daemon left running in it.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# `from tests.helpers import ...` must work however pytest was started.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.helpers import (  # noqa: E402
    BUSYBOX,
    DEBIAN,
    no_engine,
    project_cleanup,
    run_envd,
)

DOCKER_DIRS = frozenset({"integration", "e2e", "daemon", "registry"})
UNIT_DOCKER_HOST = "unix:///nonexistent/envd-unit-tests-must-not-use-docker.sock"


def _area(item: pytest.Item) -> str:
    """The top directory under tests/ an item lives in ("unit", "e2e", ...)."""
    try:
        return Path(item.path).resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _area(item) in DOCKER_DIRS and item.get_closest_marker("docker") is None:
            item.add_marker(pytest.mark.docker)


# --- the engine -------------------------------------------------------------

_engine: dict[str, Any] = {}


def _engine_problem() -> str | None:
    """None when a Docker engine answers, else why not (asked once per session)."""
    if "problem" not in _engine:
        try:
            import docker

            client = docker.from_env(timeout=30)
            client.ping()
        except Exception as exc:
            _engine["problem"] = f"{type(exc).__name__}: {exc}"
        else:
            _engine["client"] = client
            _engine["problem"] = None
    problem: str | None = _engine["problem"]
    return problem


_no_engine = no_engine


@pytest.fixture(scope="session", autouse=True)
def _envd_from_this_checkout() -> Iterator[None]:
    """``python -m envd`` in any test's subprocess imports this checkout, installed or not."""
    repo = str(Path(__file__).resolve().parents[1])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
        yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    fixtures = getattr(item, "fixturenames", ())
    if _area(item) == "unit":
        if "docker_client" in fixtures or item.get_closest_marker("docker") is not None:
            pytest.fail(
                "tests/unit must not use Docker; move this test to tests/integration",
                pytrace=False,
            )
        return
    if item.get_closest_marker("docker") is not None or "docker_client" in fixtures:
        problem = _engine_problem()
        if problem is not None:
            _no_engine(problem)
        _check_engine_capabilities(item)


@pytest.fixture(autouse=True)
def _unit_tests_stay_off_docker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point DOCKER_HOST nowhere while a unit test runs, so a stray call fails fast."""
    if _area(request.node) == "unit":
        monkeypatch.setenv("DOCKER_HOST", UNIT_DOCKER_HOST)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A ``docker.DockerClient`` connected to an engine that answered a ping."""
    problem = _engine_problem()
    if problem is not None:
        _no_engine(problem)
    yield _engine["client"]


def _require_image(client: Any, image: str) -> str:
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        _no_engine(f"image {image} is missing; run scripts/build-test-images.sh")
    return image


@pytest.fixture(scope="session")
def busybox_image(docker_client: Any) -> str:
    """``envd-local/busybox:latest``, checked present (sh, httpd, nc, wget, sleep)."""
    return _require_image(docker_client, BUSYBOX)


@pytest.fixture(scope="session")
def debian_image(docker_client: Any) -> str:
    """``envd-local/debian:bookworm``, checked present (postgres 15, redis, python3)."""
    return _require_image(docker_client, DEBIAN)


# --- what the engine can do -------------------------------------------------
#
# The same e2e and contract tests run on Docker and on Podman (scripts/test.sh).
# A test that needs what an engine cannot do here carries a marker naming it;
# scripts/test.sh deselects that marker in the Podman run, and running such a
# test on an engine that lacks it fails at once, saying so (never a skip).
# docs/compatibility.md (Podman) explains each marker.


@pytest.fixture(scope="session")
def engine_is_podman(docker_client: Any) -> bool:
    """Whether the engine is Podman's Docker API (its /version names a Podman component)."""
    version = docker_client.version()
    names = [str(c.get("Name", "")) for c in version.get("Components") or []]
    return any("podman" in n.lower() for n in names)


def _probe_healthchecks(client: Any) -> bool:
    """Whether a container with a 1 s healthcheck becomes healthy within 20 s.

    Podman 4.3 runs healthchecks from systemd timers, so without systemd the
    probe stays "starting" for ever; 20 s is many intervals on a busy machine.
    """
    from tests.helpers import WaitTimeout, wait_for

    container = client.containers.run(
        BUSYBOX,
        ["sleep", "60"],
        detach=True,
        labels={"dev.envd.project": f"t-probe-{secrets.token_hex(4)}"},
        healthcheck={"test": ["CMD", "true"], "interval": 10**9, "timeout": 10**9, "retries": 1},
    )
    try:

        def healthy() -> bool:
            container.reload()
            return bool(container.attrs["State"].get("Health", {}).get("Status") == "healthy")

        try:
            wait_for(healthy, timeout=20, interval=0.25)
        except WaitTimeout:
            return False
        return True
    finally:
        container.remove(force=True)


def _probe_swarm(client: Any) -> bool:
    """Whether the engine can be a swarm manager: Docker can, Podman has no swarm."""
    version = client.version()
    names = [str(c.get("Name", "")) for c in version.get("Components") or []]
    return not any("podman" in n.lower() for n in names)


# marker -> (what it needs, the probe answering whether this engine has it)
ENGINE_CAPABILITIES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "needs_engine_healthchecks": ("engine_runs_healthchecks", _probe_healthchecks),
    "needs_swarm": ("engine_has_swarm", _probe_swarm),
}


def engine_can(what: str) -> bool:
    """The answer of the probe named ``what`` for this session's engine (asked once)."""
    key = f"can:{what}"
    if key not in _engine:
        [probe] = [p for name, p in ENGINE_CAPABILITIES.values() if name == what]
        _engine[key] = probe(_engine["client"])
    return bool(_engine[key])


@pytest.fixture(scope="session")
def engine_runs_healthchecks(docker_client: Any) -> bool:
    """Whether the engine runs healthchecks (Podman 4.3 without systemd does not)."""
    return engine_can("engine_runs_healthchecks")


def _check_engine_capabilities(item: pytest.Item) -> None:
    """Fail (not skip) a test whose marker names a capability this engine lacks."""
    for marker, (what, _) in ENGINE_CAPABILITIES.items():
        if item.get_closest_marker(marker) is not None and not engine_can(what):
            pytest.fail(
                f"this engine lacks what @{marker} needs ({what} is false); deselect it "
                f'with -m "not {marker}" (docs/compatibility.md, Podman)',
                pytrace=False,
            )


# --- projects ---------------------------------------------------------------


def _client_or_none() -> Any | None:
    """The session's Docker client, or None when no engine answers."""
    return _engine["client"] if _engine_problem() is None else None


@pytest.fixture
def project_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique valid project name (``t-<8 hex>``); its Docker objects are removed after."""
    name = f"t-{secrets.token_hex(4)}"
    # A unit test cannot have created anything (and must not ask the engine).
    client = (lambda: None) if _area(request.node) == "unit" else _client_or_none
    with project_cleanup(name, client):
        yield name


class ProjectDir(type(Path())):  # type: ignore[misc]
    """A project directory: a ``Path`` plus :meth:`write` for spec and other files."""

    def write(self, spec_text: str, name: str = "envd.toml") -> Path:
        """Write ``spec_text`` (dedented, leading newline dropped) to ``name``; return its path."""
        path = Path(self, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = textwrap.dedent(spec_text)
        path.write_text(text[1:] if text.startswith("\n") else text)
        return path


def _stop_daemons(directory: Path, timeout: float = 15.0) -> None:
    """Stop envd daemons a test left running for ``directory``.

    They are found by their pid files: ``.envd/daemon.pid``, and
    ``.envd/env-<name>/daemon.pid`` for environments.
    """
    for pid_file in [directory / ".envd" / "daemon.pid", *directory.glob(".envd/*/daemon.pid")]:
        try:
            pid = int(pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if b"envd" in cmdline:  # else the pid was reused by something else
            _terminate(pid, timeout)


def _terminate(pid: int, timeout: float) -> None:
    def gone() -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        return stat.rsplit(")", 1)[-1].split()[0] == "Z"

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if gone():
                return
            time.sleep(0.05)


@pytest.fixture
def project_dir(tmp_path: Path, project_name: str) -> Iterator[ProjectDir]:
    """An empty directory named after ``project_name`` (so that is the default project).

    ``project_dir.write(spec_text)`` writes ``envd.toml``; ``write(text, ".env")``
    any other file. A daemon started in it is stopped afterwards, before the
    project's Docker objects are removed.
    """
    path = ProjectDir(tmp_path / project_name)
    path.mkdir()
    try:
        yield path
    finally:
        _stop_daemons(path)


@pytest.fixture
def envd_cli(project_dir: ProjectDir) -> Callable[..., CompletedProcess[str]]:
    """Run ``envd ARGS...`` as a subprocess in ``project_dir`` (``NO_COLOR=1``).

    ``envd_cli("up", "--once", timeout=120, env={...}, check=True, cwd=...)``
    returns a ``CompletedProcess`` with text ``stdout``/``stderr``.
    """

    def run(
        *args: str | os.PathLike[str],
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 120.0,
        env: dict[str, str] | None = None,
        input: str | None = None,
        check: bool = False,
    ) -> CompletedProcess[str]:
        return run_envd(
            args,
            cwd=project_dir if cwd is None else cwd,
            timeout=timeout,
            env=env,
            input=input,
            check=check,
        )

    return run
