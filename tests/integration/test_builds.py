"""Builds only when needed (issue 5 §3): the build context digest honours ``.dockerignore``.

A build service is rebuilt, and its containers recreated, exactly when its
filtered context (files not ignored, the Dockerfile, build args) changes:
editing an ignored file, or touching a file without changing it, does nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.conftest import ProjectDir
from tests.helpers import BUSYBOX, describe

pytestmark = pytest.mark.docker

Cli = Callable[..., CompletedProcess[str]]


def _spec(arg: str = "one") -> str:
    return f"""
    [services.web]
    build = {{ context = "web", args = {{ FLAVOUR = "{arg}" }} }}
    command = ["sleep", "3600"]

    [services.side]
    build = {{ context = "side" }}
    command = ["sleep", "3600"]

    [services.other]
    image = "{BUSYBOX}"
    command = ["sleep", "3600"]
    """


@pytest.fixture
def built(project_dir: ProjectDir, busybox_image: str) -> ProjectDir:
    """Two build services (``web`` with a .dockerignore and a build arg, ``side``) and a pulled one."""
    project_dir.write(
        f"""
        FROM {BUSYBOX}
        ARG FLAVOUR=none
        COPY hello.txt /hello.txt
        RUN echo "$FLAVOUR" > /flavour
        """,
        "web/Dockerfile",
    )
    project_dir.write("hello v1\n", "web/hello.txt")
    project_dir.write("notes, not part of the image\n", "web/notes.md")
    project_dir.write("scratch data\n", "web/tmp/cache.bin")
    project_dir.write("notes.md\ntmp/\n", "web/.dockerignore")
    project_dir.write(f"FROM {BUSYBOX}\nCOPY side.txt /side.txt\n", "side/Dockerfile")
    project_dir.write("side v1\n", "side/side.txt")
    project_dir.write(_spec())
    return project_dir


def _plan(cli: Cli) -> dict[str, Any]:
    proc = cli("plan", "--json")
    assert proc.returncode == 0, describe(proc)
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _changes(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (a["action"], a.get("service", ""), a["reason"])
        for a in plan["actions"]
        if a["action"] not in ("ok",)
    ]


def _state(client: Any, project: str) -> dict[str, tuple[str, str]]:
    """Per service: (container id, image id)."""
    flt = {"label": f"dev.envd.project={project}"}
    return {
        c.labels["dev.envd.service"]: (c.id, c.attrs["Image"])
        for c in client.containers.list(all=True, filters=flt)
    }


def _up(cli: Cli) -> None:
    proc = cli("up", "--once", timeout=300)
    assert proc.returncode == 0, describe(proc)


def _cat(client: Any, project: str, service: str, path: str) -> str:
    code, out = client.containers.get(f"{project}-{service}-1").exec_run(["cat", path])
    assert code == 0, out
    return str(out.decode())


def test_ignored_file_edit_builds_and_recreates_nothing(
    built: ProjectDir, project_name: str, envd_cli: Cli, docker_client: Any
) -> None:
    """Editing a .dockerignore'd file (or only touching a context file) plans no build and recreates nothing."""
    _up(envd_cli)
    before = _state(docker_client, project_name)
    assert _changes(_plan(envd_cli)) == []
    image = docker_client.images.get(f"{project_name}-web:envd")
    digest = image.labels["dev.envd.context-digest"]

    (built / "web" / "notes.md").write_text("edited notes\n")
    (built / "web" / "tmp" / "new-file").write_text("more scratch\n")
    hello = built / "web" / "hello.txt"
    st = hello.stat()
    os.utime(hello, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched, same bytes
    plan = _plan(envd_cli)
    assert plan["changes"] == 0 and _changes(plan) == [], plan
    _up(envd_cli)
    assert _state(docker_client, project_name) == before
    assert docker_client.images.get(f"{project_name}-web:envd").id == image.id
    # The cached fingerprint in .envd/ was refreshed, the digest is the same.
    cache = json.loads((built / ".envd" / "build-digests.json").read_text())
    assert cache[str((built / "web").resolve())]["digest"] == digest


def test_context_edit_rebuilds_and_recreates_only_that_service(
    built: ProjectDir, project_name: str, envd_cli: Cli, docker_client: Any
) -> None:
    """Editing a file in one build context rebuilds that image and recreates that service only."""
    _up(envd_cli)
    before = _state(docker_client, project_name)
    (built / "web" / "hello.txt").write_text("hello v2\n")
    assert _changes(_plan(envd_cli)) == [
        ("build", "web", "build context changed"),
        ("pending", "web", "waiting for its image"),
    ]
    _up(envd_cli)
    after = _state(docker_client, project_name)
    assert after["side"] == before["side"] and after["other"] == before["other"]
    assert after["web"][0] != before["web"][0] and after["web"][1] != before["web"][1]
    assert _cat(docker_client, project_name, "web", "/hello.txt") == "hello v2\n"
    assert _changes(_plan(envd_cli)) == []

    # The Dockerfile is part of the context too.
    dockerfile = built / "side" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "ENV SIDE=2\n")
    assert [c[:2] for c in _changes(_plan(envd_cli))] == [("build", "side"), ("pending", "side")]
    _up(envd_cli)
    final = _state(docker_client, project_name)
    assert final["web"] == after["web"] and final["other"] == after["other"]
    assert final["side"][1] != after["side"][1]


def test_build_arg_change_rebuilds(
    built: ProjectDir, project_name: str, envd_cli: Cli, docker_client: Any
) -> None:
    """Changing a build arg rebuilds the service's image with the new value."""
    _up(envd_cli)
    before = _state(docker_client, project_name)
    assert _cat(docker_client, project_name, "web", "/flavour") == "one\n"
    built.write(_spec(arg="two"))
    assert _changes(_plan(envd_cli))[0] == ("build", "web", "build context changed")
    _up(envd_cli)
    after = _state(docker_client, project_name)
    assert after["web"][1] != before["web"][1]
    assert after["side"] == before["side"] and after["other"] == before["other"]
    assert _cat(docker_client, project_name, "web", "/flavour") == "two\n"


def test_digest_follows_dockerignore_rules(tmp_path: Path) -> None:
    """The context digest ignores what .dockerignore excludes (with ! exceptions) and sees everything else."""
    from envd.inputs.buildctx import context_digest

    ctx = tmp_path / "ctx"
    (ctx / "logs").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    (ctx / "app.py").write_text("print(1)\n")
    (ctx / "logs" / "a.log").write_text("a\n")
    (ctx / "logs" / "keep.log").write_text("keep\n")
    (ctx / ".dockerignore").write_text("logs/*.log\n!logs/keep.log\n")
    base = context_digest(ctx)
    (ctx / "logs" / "a.log").write_text("changed\n")
    assert context_digest(ctx) == base
    (ctx / "logs" / "keep.log").write_text("changed\n")
    kept = context_digest(ctx)
    assert kept != base
    (ctx / "app.py").write_text("print(2)\n")
    assert context_digest(ctx) != kept
    assert context_digest(ctx, args={"A": "1"}) != context_digest(ctx, args={"A": "2"})
