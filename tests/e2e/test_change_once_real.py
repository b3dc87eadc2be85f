"""``envd up --once`` after a spec edit, on the real engine: one service replaced, names kept.

A recreate stops the old container, renames it aside (``envd.core.plan.aside_name``),
creates and starts the new one under the freed name and removes the old one
meanwhile. These tests check what the engine holds afterwards, and that a
container an interrupted recreate left aside is removed by the next run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from envd.core.plan import aside_name
from tests.helpers import BUSYBOX, describe, run_envd

pytestmark = pytest.mark.usefixtures("busybox_image")

SPEC = """
[services.web]
image = "{image}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
env = {{ GEN = "{gen}" }}

[services.db]
image = "{image}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
container_name = "{name}-the-db"
env = {{ GEN = "{gen}" }}

[services.other]
image = "{image}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
"""


def _spec(name: str, web: int, db: int) -> str:
    text = SPEC.format(image=BUSYBOX, gen=web, name=name)
    # db's GEN is the second one
    head, _, tail = text.partition("[services.db]")
    return head + "[services.db]" + tail.replace(f'GEN = "{web}"', f'GEN = "{db}"', 1)


def _up(directory: Path) -> Any:
    return run_envd(["-C", str(directory), "up", "--once", "--timeout", "60"], timeout=120)


def _containers(docker_client: Any, project: str) -> dict[str, Any]:
    found = docker_client.containers.list(
        all=True, filters={"label": f"dev.envd.project={project}"}
    )
    return {c.name: c for c in found}


def test_an_env_edit_replaces_only_that_container_under_its_own_name(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """Editing one service's env (generated name, then container_name) replaces exactly that
    container under the same name, leaves the others alone, and leaves nothing set aside."""
    project_dir.write(_spec(project_name, 0, 0))
    assert (first := _up(project_dir)).returncode == 0, describe(first)
    before = {n: c.id for n, c in _containers(docker_client, project_name).items()}
    names = {f"{project_name}-web-1", f"{project_name}-the-db", f"{project_name}-other-1"}
    assert set(before) == names

    for web, db, changed in ((1, 0, f"{project_name}-web-1"), (1, 1, f"{project_name}-the-db")):
        project_dir.write(_spec(project_name, web, db))
        done = _up(project_dir)
        assert done.returncode == 0, describe(done)
        assert f"Project {project_name} is up: 3 service(s) ready." in done.stderr
        now = _containers(docker_client, project_name)
        assert set(now) == names  # the old one is gone, not left aside
        assert {n for n in names if now[n].id != before[n]} == {changed}
        assert now[changed].status == "running"
        want = web if changed.endswith("web-1") else db
        assert f"GEN={want}" in now[changed].attrs["Config"]["Env"]
        before = {n: c.id for n, c in now.items()}


def test_a_container_an_interrupted_recreate_set_aside_is_removed_by_the_next_run(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """A recreate cut off after renaming the old container aside (before its successor
    exists) is repaired by the next `up --once`: the leftover removed, the service created."""
    project_dir.write(_spec(project_name, 0, 0))
    assert (first := _up(project_dir)).returncode == 0, describe(first)
    web = docker_client.containers.get(f"{project_name}-web-1")
    web.stop(timeout=0)
    web.rename(aside_name(web.name, web.id))
    plan = run_envd(["-C", str(project_dir), "plan"], timeout=60)
    assert plan.returncode == 0, describe(plan)
    assert "left over from an interrupted change" in plan.stdout
    assert (again := _up(project_dir)).returncode == 0, describe(again)
    now = _containers(docker_client, project_name)
    assert set(now) == {
        f"{project_name}-web-1",
        f"{project_name}-the-db",
        f"{project_name}-other-1",
    }
    assert now[f"{project_name}-web-1"].id != web.id
    assert now[f"{project_name}-web-1"].status == "running"

    # Cut off later: the new container runs, the old one (exited 143) was not removed yet.
    new = now[f"{project_name}-web-1"]
    left = docker_client.containers.run(
        BUSYBOX, ["sh", "-c", "exit 143"], labels=new.labels, detach=True
    )
    left.wait(timeout=60)
    left.rename(aside_name(new.name, left.id))
    assert (third := _up(project_dir)).returncode == 0, describe(third)
    assert "left over from an interrupted change" in third.stderr, describe(third)
    after = _containers(docker_client, project_name)
    assert set(after) == set(now) and after[new.name].id == new.id
