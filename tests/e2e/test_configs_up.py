"""Configs through `envd up` on the real engine: delivered with content, owner and mode; new content recreates."""

from __future__ import annotations

from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe, wait_for

pytestmark = pytest.mark.usefixtures("busybox_image")

Cli = Callable[..., CompletedProcess[str]]

SPEC = f"""
[services.web]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
configs = ["app.conf", {{ source = "motd", target = "/etc/app/motd", uid = "1000", gid = "1001", mode = 0o440 }}]

[configs."app.conf"]
file = "app.conf"

[configs.motd]
content = "hello ${{WHO:-world}}"
"""


def ok(proc: CompletedProcess[str]) -> CompletedProcess[str]:
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    return proc


def web_id(client: Any, project: str) -> str:
    (c,) = client.api.containers(filters={"label": f"dev.envd.project={project}"})
    return str(c["Id"])


def test_up_delivers_configs_and_recreates_on_a_changed_file(
    project_dir: Any, project_name: str, envd_cli: Cli, docker_client: Any
) -> None:
    """`up --once` puts each config in the container; after the file changes, the next `up` recreates it with the new content."""
    project_dir.write(SPEC)
    project_dir.write("listen = 80\n", "app.conf")
    ok(envd_cli("up", "--once", "--timeout", "60"))
    first = web_id(docker_client, project_name)
    stat = ok(envd_cli("exec", "web", "--", "stat", "-c", "%a %u %g", "/app.conf", "/etc/app/motd"))
    assert stat.stdout.split("\n")[:2] == ["444 0 0", "440 1000 1001"]
    assert ok(envd_cli("exec", "web", "--", "cat", "/app.conf")).stdout == "listen = 80\n"
    assert ok(envd_cli("exec", "web", "--", "cat", "/etc/app/motd")).stdout == "hello world"

    project_dir.write("listen = 8080\n", "app.conf")
    plan = ok(envd_cli("plan"))
    assert "web" in plan.stdout and "configs" in plan.stdout, plan.stdout
    ok(envd_cli("up", "--once", "--timeout", "60"))
    assert web_id(docker_client, project_name) != first
    assert ok(envd_cli("exec", "web", "--", "cat", "/app.conf")).stdout == "listen = 8080\n"


def test_the_daemon_redelivers_a_changed_config(project_dir: Any, envd_cli: Cli) -> None:
    """With the daemon `up` leaves running, editing a config file reaches the container within seconds."""
    project_dir.write(SPEC)
    project_dir.write("v1\n", "app.conf")
    ok(envd_cli("up", "--timeout", "60"))
    try:
        project_dir.write("v2\n", "app.conf")

        def delivered() -> bool:
            proc = envd_cli("exec", "web", "--", "cat", "/app.conf")
            return proc.returncode == 0 and proc.stdout == "v2\n"

        wait_for(
            delivered, timeout=30, interval=0.5, message="the daemon never delivered the new config"
        )
    finally:
        ok(envd_cli("down"))
