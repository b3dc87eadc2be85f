"""Anonymous volumes on the real engine, through the CLI, as a Compose user expects.

A service whose image declares ``VOLUME /data`` (built here from busybox, the
postgres case) and whose spec has an anonymous ``"/cache"``: data written into
both survives a recreate (an env change), a read-only service's secret volume
does not move, ``down -v`` removes the volumes and a plain ``down`` keeps them.
Anonymous volumes carry no project label, so the test removes every one it saw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.conftest import ProjectDir
from tests.helpers import BUSYBOX, describe, remove_project_objects

pytestmark = pytest.mark.docker

Cli = Callable[..., CompletedProcess[str]]


def _spec(gen: str) -> str:
    return f"""
    [services.db]
    build = {{ context = "db" }}
    command = ["sleep", "3600"]
    stop_grace_period = "1s"
    env = {{ GEN = "{gen}" }}
    volumes = ["/cache"]

    [services.ro]
    image = "{BUSYBOX}"
    command = ["sleep", "3600"]
    stop_grace_period = "1s"
    env = {{ GEN = "{gen}" }}
    read_only = true
    secrets = ["pw"]

    [secrets.pw]
    file = "pw.txt"
    """


@pytest.fixture
def anon_volumes(docker_client: Any, project_name: str) -> Iterator[set[str]]:
    """Names of anonymous volumes the test saw; removed afterwards with the project."""
    seen: set[str] = set()
    yield seen
    import docker

    remove_project_objects(docker_client, project_name)  # containers first: they hold them
    for name in seen:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.volumes.get(name).remove(force=True)


def _mounts(client: Any, container: str) -> dict[str, str]:
    """Destination → volume name of a container's volume mounts."""
    doc = client.api.inspect_container(container)
    return {m["Destination"]: m["Name"] for m in doc["Mounts"] if m["Type"] == "volume"}


def _volume_exists(client: Any, name: str) -> bool:
    import docker

    try:
        client.volumes.get(name)
    except docker.errors.NotFound:
        return False
    return True


def _up(envd_cli: Cli) -> CompletedProcess[str]:
    proc = envd_cli("up", "--once", "--timeout", "120", timeout=180)
    assert proc.returncode == 0, describe(proc)
    return proc


def test_anonymous_volumes_survive_recreate_and_go_with_down_v(
    project_dir: ProjectDir,
    project_name: str,
    envd_cli: Cli,
    docker_client: Any,
    busybox_image: str,
    anon_volumes: set[str],
) -> None:
    """Write into the image's VOLUME and a spec anonymous volume, change env: the files are still there; down -v removes the volumes, down keeps them."""
    project_dir.write(f"FROM {busybox_image}\nVOLUME /data\n", "db/Dockerfile")
    project_dir.write("hunter2", "pw.txt")
    project_dir.write(_spec("1"))
    db, ro = f"{project_name}-db-1", f"{project_name}-ro-1"

    _up(envd_cli)
    first = _mounts(docker_client, db)
    first_ro = _mounts(docker_client, ro)
    anon_volumes.update(first.values(), first_ro.values())
    assert set(first) == {"/data", "/cache"} and set(first_ro) == {"/run/secrets"}
    old_id = docker_client.containers.get(db).id
    # The adapter reports the image's VOLUME paths: what a hand-over may serve.
    from envd.engine.docker.client import DockerEngine

    built = DockerEngine().inspect_image(f"{project_name}-db:envd")
    assert built is not None and built.volumes == ("/data",)
    write = envd_cli(
        "exec", "db", "--", "sh", "-c", "echo kept > /data/f && echo cached > /cache/f"
    )
    assert write.returncode == 0, describe(write)

    # A config change recreates both services.
    project_dir.write(_spec("2"))
    up = _up(envd_cli)
    assert "keeping anonymous volume(s) at /cache, /data" in up.stdout + up.stderr
    assert docker_client.containers.get(db).id != old_id
    second = _mounts(docker_client, db)
    second_ro = _mounts(docker_client, ro)
    anon_volumes.update(second.values(), second_ro.values())
    assert second == first, "the anonymous volumes were not handed over"
    read = envd_cli("exec", "db", "--", "cat", "/data/f", "/cache/f")
    assert (read.returncode, read.stdout) == (0, "kept\ncached\n"), describe(read)
    # envd's secret volume is not handed over: a fresh one, the old one gone.
    assert second_ro["/run/secrets"] != first_ro["/run/secrets"]
    assert not _volume_exists(docker_client, first_ro["/run/secrets"])

    down = envd_cli("down", "-v")
    assert down.returncode == 0, describe(down)
    for path, name in second.items():
        assert not _volume_exists(docker_client, name), f"down -v left the volume at {path}"
    assert not _volume_exists(docker_client, second_ro["/run/secrets"])

    # A plain down keeps anonymous volumes (but not secret ones).
    _up(envd_cli)
    third = _mounts(docker_client, db)
    third_ro = _mounts(docker_client, ro)
    anon_volumes.update(third.values(), third_ro.values())
    assert not set(third.values()) & set(second.values())  # fresh: nothing to hand over
    down = envd_cli("down")
    assert down.returncode == 0, describe(down)
    assert docker_client.containers.list(all=True, filters={"name": db}) == []
    for path, name in third.items():
        assert _volume_exists(docker_client, name), f"down removed the volume at {path}"
    assert not _volume_exists(docker_client, third_ro["/run/secrets"])
