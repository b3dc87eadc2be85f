"""``envd lock`` / ``up --frozen`` against a real local registry (contract §6).

A tag is pushed to the registry, locked, then moved (a different image pushed
to the same tag): ``up`` keeps running the locked digest, pulled by digest;
``envd lock`` picks up the moved tag, even when the local copy of the tag is
stale; ``--frozen`` refuses a spec that drifted from the lock, and a corrupt
or missing lock, with exit 2 and nothing touched.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import tomllib

from tests.conftest import ProjectDir
from tests.helpers import BUSYBOX, describe, project_cleanup

pytestmark = pytest.mark.docker

Cli = Callable[..., CompletedProcess[str]]


def _lock(project_dir: Path) -> dict[str, Any]:
    return tomllib.loads((project_dir / "envd.lock").read_text())


def _events(proc: CompletedProcess[str]) -> list[dict[str, Any]]:
    out = []
    for line in proc.stdout.splitlines():
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if isinstance(doc, dict) and "event" in doc:
                out.append(doc["event"])
    return out


def _container(docker_client: Any, name: str) -> Any:
    return docker_client.containers.get(name)


@pytest.fixture
def ci_cleanup(project_name: str, docker_client: Any) -> Iterator[str]:
    """The ``<project>-ci`` project (environment ci) is removed afterwards too."""
    with project_cleanup(f"{project_name}-ci", lambda: docker_client):
        yield f"{project_name}-ci"


@pytest.fixture
def built_images(docker_client: Any) -> Iterator[list[str]]:
    """Ids of images a test builds; removed (forced) afterwards."""
    import docker

    ids: list[str] = []
    yield ids
    for image_id in ids:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            docker_client.images.remove(image_id, force=True)


def _build_moved(docker_client: Any, tmp_path: Path, marker: str) -> str:
    """A one-layer image FROM the busybox test image, with ``/marker`` added; its id."""
    ctx = tmp_path / f"moved-{marker}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BUSYBOX}\nCOPY marker /marker\n")
    (ctx / "marker").write_text(marker)
    image, _ = docker_client.images.build(path=str(ctx), rm=True)
    return str(image.id)


def test_lock_pins_registry_digest_and_survives_a_moved_tag(
    registry: Any,
    project_dir: ProjectDir,
    project_name: str,
    envd_cli: Cli,
    docker_client: Any,
    built_images: list[str],
    tmp_path: Path,
) -> None:
    """The lock pins the registry's manifest digest; a moved tag changes nothing until `envd lock` runs again."""
    repo = "envd/busybox"
    first = registry.push(BUSYBOX, repo)
    assert first == registry.manifest_digest(repo)
    busybox_id = docker_client.images.get(BUSYBOX).id
    tag = registry.ref(repo)
    project_dir.write(
        f"""
        [services.app]
        image = "{tag}"
        command = ["sleep", "3600"]
        """
    )
    locked = envd_cli("lock", check=True)
    assert "wrote envd.lock" in locked.stdout
    pinned = _lock(project_dir)["environments"]["default"]["services"]["app"]
    assert pinned["image"] == tag
    assert pinned["resolved"] == f"{registry.host}/{repo}@{first}"
    assert pinned["image_id"] == busybox_id
    text = (project_dir / "envd.lock").read_text()
    assert envd_cli("lock", check=True).returncode == 0
    assert (project_dir / "envd.lock").read_text() == text, "envd lock is not stable"

    # Move the tag: a different image pushed under the same name.
    moved_id = _build_moved(docker_client, tmp_path, "moved-1")
    built_images.append(moved_id)
    second = registry.push(moved_id, repo)
    assert second != first and registry.manifest_digest(repo) == second

    # Nothing local may satisfy the locked reference: up must pull it by digest.
    registry.untag_all()
    up = envd_cli("up", "--once", "--json", timeout=180)
    assert up.returncode == 0, describe(up)
    pulls = [e for e in _events(up) if e["kind"] == "pull"]
    assert pulls and all(f"@{first}" in e["resource"] for e in pulls), pulls
    app = _container(docker_client, f"{project_name}-app-1")
    assert app.attrs["Image"] == busybox_id == pinned["image_id"]
    assert app.attrs["Image"] != moved_id

    # A second up: the moved tag still changes nothing.
    again = envd_cli("plan", "--json", check=True)
    assert json.loads(again.stdout)["changes"] == 0, again.stdout
    assert envd_cli("lock", "--check").returncode == 0

    # The local copy of the tag is stale (it names the old image), yet
    # `envd lock` pins what the registry serves now.
    docker_client.images.get(BUSYBOX).tag(tag)
    envd_cli("lock", check=True)
    repinned = _lock(project_dir)["environments"]["default"]["services"]["app"]
    assert repinned["resolved"] == f"{registry.host}/{repo}@{second}"
    assert repinned["image_id"] == moved_id
    plan = json.loads(envd_cli("plan", "--json", check=True).stdout)
    assert [(a["action"], a["reason"]) for a in plan["actions"]] == [
        ("recreate", "changed: image")
    ], plan
    envd_cli("up", "--once", check=True, timeout=180)
    assert _container(docker_client, f"{project_name}-app-1").attrs["Image"] == moved_id


def _frozen_project(project_dir: ProjectDir, tag: str, ci_command: str = "3600") -> None:
    project_dir.write(
        f"""
        [services.app]
        image = "{tag}"
        command = ["sleep", "3600"]

        [services.web]
        image = "{tag}"
        command = ["sleep", "3600"]

        [environments.ci]
        services.app.command = ["sleep", "{ci_command}"]
        services.app.env = {{ MODE = "ci" }}
        """
    )


def test_frozen_up_passes_when_locked_and_refuses_drift(
    registry: Any,
    project_dir: ProjectDir,
    project_name: str,
    ci_cleanup: str,
    envd_cli: Cli,
    docker_client: Any,
    tmp_path: Path,
) -> None:
    """`up --once --frozen --env ci` runs when the lock matches and exits 2 with a readable diff when the spec drifted."""
    repo = f"envd/frozen-{project_name}"
    digest = registry.push(BUSYBOX, repo)
    _frozen_project(project_dir, registry.ref(repo))
    envd_cli("lock", check=True)
    lock = _lock(project_dir)
    assert sorted(lock["environments"]) == ["ci", "default"]
    for env in ("ci", "default"):
        for svc in ("app", "web"):
            assert lock["environments"][env]["services"][svc]["resolved"].endswith(digest)

    up = envd_cli("up", "--once", "--frozen", "--env", "ci", timeout=180)
    assert up.returncode == 0, describe(up)
    app = _container(docker_client, f"{ci_cleanup}-app-1")
    assert app.labels["dev.envd.environment"] == "ci"
    assert "MODE=ci" in app.attrs["Config"]["Env"]
    before = {
        c.name: c.id
        for c in docker_client.containers.list(
            all=True, filters={"label": f"dev.envd.project={ci_cleanup}"}
        )
    }

    # The same envd.toml + envd.lock in another checkout directory: still in sync.
    other = tmp_path / "another-checkout"
    other.mkdir()
    for name in ("envd.toml", "envd.lock"):
        shutil.copy(project_dir / name, other / name)
    assert envd_cli("lock", "--check", cwd=other).returncode == 0

    # The ci overlay drifts: frozen refuses, naming the service and field.
    _frozen_project(project_dir, registry.ref(repo), ci_command="60")
    refused = envd_cli("up", "--once", "--frozen", "--env", "ci")
    assert refused.returncode == 2, describe(refused)
    assert refused.stderr.splitlines() == [
        "envd: envd.lock does not match the spec (--frozen):",
        "the resolved spec of environment 'ci' changed since envd.lock was written",
        "  ~ service 'app': changed command",
        "Run `envd lock` and commit the result, or drop --frozen.",
    ], refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""
    after = {
        c.name: c.id
        for c in docker_client.containers.list(
            all=True, filters={"label": f"dev.envd.project={ci_cleanup}"}
        )
    }
    assert after == before, "a refused --frozen up touched containers"
    check = envd_cli("lock", "--check")
    assert check.returncode == 2 and "~ service 'app': changed command" in check.stdout
    # The base environment did not drift: it still passes.
    assert envd_cli("up", "--once", "--frozen", timeout=180).returncode == 0

    # An image reference edited in the spec is drift too.
    project_dir.write(
        (project_dir / "envd.toml").read_text().replace(registry.ref(repo), BUSYBOX, 1)
    )
    refused = envd_cli("up", "--once", "--frozen")
    assert refused.returncode == 2
    assert f"  ~ service 'app': image '{registry.ref(repo)}' → '{BUSYBOX}'" in refused.stderr


@pytest.mark.parametrize(
    "content",
    [
        "version = 1\n[environments.default\n",
        "not toml at all {{{",
        "version = 99\n",
        "version = 2\n[environments.default.services.app]\nimage = 1\n",
    ],
    ids=["broken-table", "garbage", "future-version", "missing-keys"],
)
def test_frozen_with_corrupt_lock_is_a_clear_error(
    registry: Any,
    project_dir: ProjectDir,
    project_name: str,
    envd_cli: Cli,
    docker_client: Any,
    content: str,
) -> None:
    """A corrupt envd.lock under --frozen exits 2 with one sentence naming the file, and creates nothing."""
    repo = f"envd/corrupt-{project_name}"
    registry.push(BUSYBOX, repo)
    _frozen_project(project_dir, registry.ref(repo))
    (project_dir / "envd.lock").write_text(content)
    proc = envd_cli("up", "--once", "--frozen")
    assert proc.returncode == 2, describe(proc)
    assert proc.stderr.startswith("envd: envd.lock is corrupt"), proc.stderr
    assert "regenerate it with `envd lock`" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    flt = {"label": f"dev.envd.project={project_name}"}
    assert docker_client.containers.list(all=True, filters=flt) == []
    assert docker_client.networks.list(filters=flt) == []


def test_frozen_without_lock_is_a_clear_error(
    registry: Any, project_dir: ProjectDir, project_name: str, envd_cli: Cli, docker_client: Any
) -> None:
    """--frozen with no envd.lock exits 2, says to run `envd lock`, and creates nothing."""
    repo = f"envd/nolock-{project_name}"
    registry.push(BUSYBOX, repo)
    _frozen_project(project_dir, registry.ref(repo))
    for args in (("up", "--once", "--frozen"), ("up", "--once", "--frozen", "--env", "ci")):
        proc = envd_cli(*args)
        assert proc.returncode == 2, describe(proc)
        assert f"no envd.lock in {project_dir}; run `envd lock` and commit it" in proc.stderr
        assert "Traceback" not in proc.stderr
    check = envd_cli("lock", "--check")
    assert check.returncode == 2 and "no envd.lock" in check.stdout
    assert not (project_dir / "envd.lock").exists()
    flt = {"label": f"dev.envd.project={project_name}"}
    assert docker_client.containers.list(all=True, filters=flt) == []


def test_lock_check_is_json_and_changes_nothing(
    registry: Any, project_dir: ProjectDir, project_name: str, envd_cli: Cli
) -> None:
    """`envd lock --check --json` reports sync state per environment and never rewrites the lock."""
    repo = f"envd/check-{project_name}"
    registry.push(BUSYBOX, repo)
    _frozen_project(project_dir, registry.ref(repo))
    envd_cli("lock", check=True)
    text = (project_dir / "envd.lock").read_text()
    ok = envd_cli("lock", "--check", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"in_sync": True, "problems": []}
    _frozen_project(project_dir, registry.ref(repo), ci_command="5")
    drift = envd_cli("lock", "--check", "--json")
    assert drift.returncode == 2
    doc = json.loads(drift.stdout)
    assert doc["in_sync"] is False and len(doc["problems"]) == 1
    assert "environment 'ci'" in doc["problems"][0]
    assert (project_dir / "envd.lock").read_text() == text


def test_lock_needs_no_secret_values(
    registry: Any, project_dir: ProjectDir, project_name: str, envd_cli: Cli
) -> None:
    """`envd lock` pins images without reading any secret (an unset secret variable is fine)."""
    repo = f"envd/secretless-{project_name}"
    digest = registry.push(BUSYBOX, repo)
    project_dir.write(
        f"""
        [services.app]
        image = "{registry.ref(repo)}"
        command = ["sleep", "3600"]
        secrets = ["token"]

        [secrets.token]
        env = "ENVD_TEST_UNSET_SECRET_{project_name.replace("-", "_").upper()}"
        """
    )
    proc = envd_cli("lock")
    assert proc.returncode == 0, describe(proc)
    pinned = _lock(project_dir)["environments"]["default"]["services"]["app"]
    assert pinned["resolved"] == f"{registry.host}/{repo}@{digest}"


def test_lock_pins_services_of_every_profile(
    registry: Any, project_dir: ProjectDir, project_name: str, envd_cli: Cli
) -> None:
    """`envd lock` pins services behind profiles too, so `--profile X --frozen` works from the same lock."""
    repo = f"envd/profiles-{project_name}"
    digest = registry.push(BUSYBOX, repo)
    project_dir.write(
        f"""
        [services.app]
        image = "{BUSYBOX}"
        command = ["sleep", "3600"]

        [services.debug]
        image = "{registry.ref(repo)}"
        command = ["sleep", "3600"]
        profiles = ["debug"]
        """
    )
    envd_cli("lock", check=True)
    services = _lock(project_dir)["environments"]["default"]["services"]
    assert sorted(services) == ["app", "debug"]
    assert services["debug"]["resolved"] == f"{registry.host}/{repo}@{digest}"
    for args in (("lock", "--check"), ("lock", "--check", "--profile", "debug")):
        proc = envd_cli(*args)
        assert proc.returncode == 0, describe(proc)
    up = envd_cli("up", "--once", "--frozen", "--profile", "debug", timeout=180)
    assert up.returncode == 0, describe(up)
