"""Level-triggered sync, sync+exec and lifecycle hooks on the real Docker engine.

`envd up` is driven as a user drives it; the daemon is stopped with SIGTERM
(it leaves the environment running, as it does for a user) to edit the tree
while nothing watches. The assertions right after `envd up` read the
container at once, without polling: the files must be there when it returns.
Every other wait polls with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, describe, run_envd, run_to_end, wait_for

pytestmark = [pytest.mark.docker]

ENV = {"PYTHONPATH": str(REPO)}
BUSYBOX = "envd-local/busybox:latest"

# The image's own file under the target: the command writes it when the
# container starts, so it is content envd never copied.
SYNC_SPEC = f"""\
[secrets.pw]
file = "secrets/pw.txt"

[services.web]
image = "{BUSYBOX}"
command = ["sh", "-c", "mkdir -p /app/src && echo image > /app/src/from_image.txt && exec sleep 3600"]
stop_grace_period = "1s"
secrets = ["pw"]
watch = [{{ path = ".", action = "sync", target = "/app", ignore = ["*.log", "envd.toml"] }}]
"""

HOOKS_SPEC = f"""\
[volumes.hooklog]

[services.web]
image = "{BUSYBOX}"
command = ["sleep", "3600"]
stop_grace_period = "1s"
volumes = ["hooklog:/log"]
post_start = [{{ command = ["sh", "-c", "echo started:$$WHO >> /log/events"], environment = {{ WHO = "post" }} }}]
pre_stop = [{{ command = "sh -c 'echo stopping >> /log/events'", user = "root" }}]
watch = [
  {{ path = "deps.txt", action = "sync+exec", target = "/app/deps.txt", exec = {{ command = ["sh", "-c", "cp /app/deps.txt /app/installed.txt"], working_dir = "/app" }} }},
]
"""


def envd(project_dir: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return run_envd(args, cwd=project_dir, env=ENV, timeout=timeout)


def up(project_dir: Path) -> None:
    proc = envd(project_dir, "up")
    assert proc.returncode == 0, describe(proc)


def cat_in(client: Any, name: str, path: str) -> str | None:
    code, out = client.containers.get(name).exec_run(["cat", path])
    return out.decode() if code == 0 else None


def stop_daemon(project_dir: Path) -> None:
    """SIGTERM the project's daemon and wait for it to exit; the containers keep running."""
    pid = int((project_dir / ".envd" / "daemon.pid").read_text().split()[0])
    os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            return True
        return state == "Z"

    wait_for(gone, timeout=20, interval=0.05, message="the daemon to exit after SIGTERM")


def write(project_dir: Path, rel: str, text: str) -> Path:
    path = project_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_edits_made_while_the_daemon_was_stopped_are_in_the_container_when_up_returns(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """Level-triggered sync: up → the tree is in the container; edits, additions and deletions
    made with no daemon running are applied before the next `envd up` returns; the image's own
    file is never deleted; ignored files, the secret file and .env are never copied."""
    write(project_dir, "src/a.txt", "v1")
    write(project_dir, "src/old.txt", "old")
    write(project_dir, "src/debug.log", "noise")
    write(project_dir, "secrets/pw.txt", "hunter2")
    write(project_dir, ".env", "TOKEN=s3cr3t\n")
    project_dir.write(SYNC_SPEC)
    up(project_dir)
    web = f"{project_name}-web-1"
    # No polling: `up` returned after the first sync.
    assert cat_in(docker_client, web, "/app/src/a.txt") == "v1"
    assert cat_in(docker_client, web, "/app/src/old.txt") == "old"
    container_id = docker_client.containers.get(web).id

    stop_daemon(project_dir)
    write(project_dir, "src/a.txt", "v2")
    write(project_dir, "src/new/b.txt", "b")
    (project_dir / "src" / "old.txt").unlink()
    up(project_dir)
    assert docker_client.containers.get(web).id == container_id  # adopted, not recreated
    assert cat_in(docker_client, web, "/app/src/a.txt") == "v2"
    assert cat_in(docker_client, web, "/app/src/new/b.txt") == "b"
    assert cat_in(docker_client, web, "/app/src/old.txt") is None
    assert cat_in(docker_client, web, "/app/src/from_image.txt") == "image\n"
    assert cat_in(docker_client, web, "/app/src/debug.log") is None
    assert cat_in(docker_client, web, "/app/secrets/pw.txt") is None
    assert cat_in(docker_client, web, "/app/.env") is None
    assert cat_in(docker_client, web, "/run/secrets/pw") == "hunter2"  # the secret, as a secret

    # The running daemon's event path deletes only what envd copied as well.
    (project_dir / "src" / "a.txt").unlink()
    wait_for(
        lambda: cat_in(docker_client, web, "/app/src/a.txt") is None,
        timeout=10,
        interval=0.05,
        message="a.txt removed from the container",
    )
    assert cat_in(docker_client, web, "/app/src/from_image.txt") == "image\n"

    log = (project_dir / ".envd" / "daemon.log").read_text()
    assert '"initial-sync"' in log and "container started" in log


def test_sync_exec_and_lifecycle_hooks_run_in_the_container(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """post_start runs when envd starts the container, sync+exec after the first sync and after
    each edit, and pre_stop before `envd down` stops it (its write lands in a named volume)."""
    write(project_dir, "deps.txt", "flask==1\n")
    project_dir.write(HOOKS_SPEC)
    up(project_dir)
    web = f"{project_name}-web-1"
    assert cat_in(docker_client, web, "/log/events") == "started:post\n"
    assert cat_in(docker_client, web, "/app/installed.txt") == "flask==1\n"

    write(project_dir, "deps.txt", "flask==2\n")
    wait_for(
        lambda: cat_in(docker_client, web, "/app/installed.txt") == "flask==2\n",
        timeout=10,
        interval=0.05,
        message="sync+exec to copy the edited deps.txt",
    )
    proc = envd(project_dir, "down")
    assert proc.returncode == 0, describe(proc)
    out = run_to_end(
        docker_client,
        BUSYBOX,
        ["cat", "/log/events"],
        volumes={f"{project_name}_hooklog": {"bind": "/log", "mode": "ro"}},
    )
    assert out.decode() == "started:post\nstopping\n"
    log = (project_dir / ".envd" / "daemon.log").read_text()
    assert '"post_start"' in log and '"sync-exec"' in log


def test_a_failing_post_start_hook_fails_up_once_naming_it(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """As with Compose, `envd up --once` exits 1 when a post_start hook exits non-zero, naming
    the hook and its status; the container it ran in keeps running."""
    project_dir.write(
        f"""\
        [services.web]
        image = "{BUSYBOX}"
        command = ["sleep", "3600"]
        stop_grace_period = "1s"
        post_start = [{{ command = ["sh", "-c", "echo no database >&2; exit 7"] }}]
        """
    )
    proc = envd(project_dir, "up", "--once", "--timeout", "60")
    assert proc.returncode == 1, describe(proc)
    assert (
        "post_start hook `sh -c echo no database >&2; exit 7` exited with status 7" in proc.stderr
    )
    assert "no database" in proc.stderr
    assert docker_client.containers.get(f"{project_name}-web-1").status == "running"


def test_a_container_recreated_by_a_spec_edit_gets_the_tree_before_the_pass_ends(
    project_dir: Any, project_name: str, docker_client: Any
) -> None:
    """A spec edit recreates the container; by the end of that pass the new container holds the
    synced tree, including a file edited just before, with no file event for it."""
    from envd.daemon.client import DaemonClient

    write(project_dir, "src/a.txt", "v1")
    write(project_dir, "secrets/pw.txt", "pw")
    spec = SYNC_SPEC.replace("[services.web]", '[services.web]\nenv = { GEN = "GEN" }')
    project_dir.write(spec.replace('"GEN"', '"1"'))
    up(project_dir)
    web = f"{project_name}-web-1"
    old = docker_client.containers.get(web).id
    stop_daemon(project_dir)  # so the edit below reaches the new container by the level sync only
    write(project_dir, "src/a.txt", "v2")
    project_dir.write(spec.replace('"GEN"', '"2"'))
    up(project_dir)
    assert docker_client.containers.get(web).id != old
    assert cat_in(docker_client, web, "/app/src/a.txt") == "v2"
    status = DaemonClient(project_dir / ".envd" / "daemon.sock").status()
    assert status["daemon"]["last_result"] == "ok"
