"""The ``envd`` command as a user runs it, on small busybox-only projects.

Every project is named after its test's ``project_name`` (the directory's name
is the default project name), so the fixture removes whatever it created.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe, project_cleanup, run_envd, wait_for

pytestmark = pytest.mark.usefixtures("busybox_image")

Cli = Callable[..., CompletedProcess[str]]

# A long-running service that prints a marker, one with a named volume, and a
# dependent: SIGKILL as stop signal keeps `down` instant.
SPEC = f"""
[services.web]
image = "{BUSYBOX}"
command = ["sh", "-c", "echo hello-from-web; exec sleep 100000"]
volumes = ["data:/data"]
stop_signal = "SIGKILL"

[services.worker]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
depends_on = {{ web = "started" }}
stop_signal = "SIGKILL"

[volumes.data]
"""


def labelled(project: str) -> dict[str, str]:
    return {"label": f"dev.envd.project={project}"}


def containers(client: Any, project: str) -> dict[str, dict[str, Any]]:
    """name → inspect document of every container of ``project``."""
    out = {}
    for c in client.api.containers(all=True, filters=labelled(project)):
        info = client.api.inspect_container(c["Id"])
        out[info["Name"].lstrip("/")] = info
    return out


def networks(client: Any, project: str) -> list[str]:
    return sorted(n["Name"] for n in client.api.networks(filters=labelled(project)))


def volumes(client: Any, project: str) -> list[str]:
    found = client.api.volumes(filters=labelled(project)).get("Volumes") or []
    return sorted(v["Name"] for v in found)


def nanos(timestamp: str) -> int:
    """An engine timestamp (RFC 3339, up to nanoseconds, trailing zeros trimmed) in ns."""
    whole, _, frac = timestamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp()
    return int(seconds) * 10**9 + int((frac + "000000000")[:9])


def ok(proc: CompletedProcess[str]) -> CompletedProcess[str]:
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    return proc


# --------------------------------------------------------------------------- a shared running project


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Path]:
    """A project brought up once for the read-only commands (status, logs, exec, run)."""
    name = f"t-{secrets.token_hex(4)}"
    directory = tmp_path_factory.mktemp("cli") / name
    directory.mkdir()
    (directory / "envd.toml").write_text(SPEC)
    with project_cleanup(name, lambda: docker_client):
        ok(run_envd(["up", "--once", "--timeout", "60"], cwd=directory))
        yield directory


def envd_in(directory: Path, *args: str, **kwargs: Any) -> CompletedProcess[str]:
    return run_envd(list(args), cwd=directory, **kwargs)


# --------------------------------------------------------------------------- validate and plan


def test_validate_accepts_a_valid_spec_and_rejects_a_broken_one(
    project_dir: Any, envd_cli: Cli
) -> None:
    """`validate` exits 0 on a valid spec and 2 with file:line:col on an invalid one."""
    project_dir.write(SPEC)
    good = ok(envd_cli("validate"))
    assert "is valid" in good.stdout
    project_dir.write(
        SPEC.replace(
            'stop_signal = "SIGKILL"\n\n[services.worker]',
            'stop_signal = "SIGKILL"\nrestart = "sometimes"\n\n[services.worker]',
        )
    )
    bad = envd_cli("validate")
    assert bad.returncode == 2, describe(bad)
    assert re.search(r"envd\.toml:\d+:\d+: services\.web\.restart: ", bad.stderr), describe(bad)
    assert "Traceback" not in bad.stdout + bad.stderr


def test_plan_json_on_an_empty_engine_lists_creates_and_changes_nothing(
    project_dir: Any, project_name: str, envd_cli: Cli, docker_client: Any
) -> None:
    """`plan --json` lists a create per network, volume and container, and creates none of them."""
    project_dir.write(SPEC)
    doc = json.loads(ok(envd_cli("plan", "--json")).stdout)
    kinds = {(a["action"], a.get("name")) for a in doc["actions"]}
    assert kinds == {
        ("create-network", f"{project_name}_default"),
        ("create-volume", f"{project_name}_data"),
        ("create", f"{project_name}-web-1"),
        ("create", f"{project_name}-worker-1"),
    }
    assert doc["changes"] == 4 and doc["problems"] == []
    assert all(a["reason"] for a in doc["actions"])
    assert containers(docker_client, project_name) == {}
    assert networks(docker_client, project_name) == []
    assert volumes(docker_client, project_name) == []


# --------------------------------------------------------------------------- up, status, logs, exec, run


def test_up_once_then_status_json_reports_every_service_running_and_in_sync(
    running: Path, docker_client: Any
) -> None:
    """After `up --once`, `status --json` shows each service running, in sync, with its container id."""
    project = running.name
    doc = json.loads(ok(envd_in(running, "status", "--json")).stdout)
    assert doc["project"] == project and doc["in_sync"] is True and doc["orphans"] == []
    actual = containers(docker_client, project)
    by_name = {s["name"]: s for s in doc["services"]}
    assert sorted(by_name) == ["web", "worker"]
    for service, s in by_name.items():
        assert s["running"] == 1 and s["drift"] == [], s
        [c] = s["containers"]
        info = actual[f"{project}-{service}-1"]
        assert info["Id"].startswith(c["id"]) and info["State"]["Running"], (c, info["State"])


def test_logs_prefix_each_line_with_the_container_name(running: Path) -> None:
    """`logs` prints each container's output prefixed by its container name."""
    project = running.name
    pattern = re.compile(rf"^{re.escape(project)}-web-1\s* \| hello-from-web$", re.M)

    def logged() -> bool:
        return bool(pattern.search(ok(envd_in(running, "logs")).stdout))

    wait_for(logged, timeout=15, interval=0.2, message="the web container's marker in `envd logs`")
    only_worker = ok(envd_in(running, "logs", "worker"))
    assert "hello-from-web" not in only_worker.stdout


def test_exec_runs_in_the_live_container_and_returns_its_exit_code(running: Path) -> None:
    """`exec SERVICE -- CMD` runs in the service's container and exits with the command's code."""
    assert ok(envd_in(running, "exec", "web", "--", "echo", "hi")).stdout == "hi\n"
    host = ok(envd_in(running, "exec", "web", "--", "cat", "/etc/hostname")).stdout.strip()
    web_id = containers_by_service(running)["web"]
    assert web_id.startswith(host)
    failed = envd_in(running, "exec", "web", "--", "sh", "-c", "exit 7")
    assert failed.returncode == 7, describe(failed)


def containers_by_service(directory: Path) -> dict[str, str]:
    doc = json.loads(ok(envd_in(directory, "status", "--json")).stdout)
    return {s["name"]: s["containers"][0]["id"] for s in doc["services"]}


def one_offs(client: Any, project: str) -> list[str]:
    return [
        c["Names"][0]
        for c in client.api.containers(
            all=True, filters={"label": [f"dev.envd.project={project}", "dev.envd.one-off=1"]}
        )
    ]


def test_run_starts_a_one_off_container_and_removes_it(running: Path, docker_client: Any) -> None:
    """`run SERVICE -- CMD` exits with the command's code, leaves no container and touches the service."""
    project = running.name
    before = {n: i["Id"] for n, i in containers(docker_client, project).items()}
    proc = envd_in(running, "run", "web", "--", "sh", "-c", "test -d /data && exit 5")
    assert proc.returncode == 5, describe(proc)
    assert one_offs(docker_client, project) == []
    assert {n: i["Id"] for n, i in containers(docker_client, project).items()} == before


def test_run_prints_the_one_off_commands_output(running: Path, docker_client: Any) -> None:
    """`run SERVICE -- echo hi` prints the command's output, even with stdin at EOF as in CI."""
    proc = ok(envd_in(running, "run", "web", "--", "echo", "hi"))
    assert proc.stdout == "hi\n", describe(proc)
    assert one_offs(docker_client, running.name) == []


# --------------------------------------------------------------------------- down


def test_down_keeps_named_volumes_and_down_v_removes_them(
    project_dir: Any, project_name: str, envd_cli: Cli, docker_client: Any
) -> None:
    """`down` removes containers and networks but keeps named volumes; `down -v` removes those too."""
    project_dir.write(SPEC)
    ok(envd_cli("up", "--once", "--timeout", "60"))
    assert len(containers(docker_client, project_name)) == 2
    ok(envd_cli("exec", "web", "--", "sh", "-c", "echo kept > /data/marker"))

    ok(envd_cli("down"))
    assert containers(docker_client, project_name) == {}
    assert networks(docker_client, project_name) == []
    assert volumes(docker_client, project_name) == [f"{project_name}_data"]

    ok(envd_cli("up", "--once", "--timeout", "60"))
    assert ok(envd_cli("exec", "web", "--", "cat", "/data/marker")).stdout == "kept\n"

    ok(envd_cli("down", "-v"))
    assert containers(docker_client, project_name) == {}
    assert networks(docker_client, project_name) == []
    assert volumes(docker_client, project_name) == []


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("command", [["up", "--once"], ["status"], ["down"]])
def test_unreachable_engine_exits_3_with_one_sentence(
    project_dir: Any, envd_cli: Cli, command: list[str]
) -> None:
    """With DOCKER_HOST on a missing socket, commands exit 3 with one sentence naming the engine."""
    project_dir.write(SPEC)
    host = "unix:///nonexistent/envd-e2e/docker.sock"
    proc = envd_cli(*command, env={"DOCKER_HOST": host})
    assert proc.returncode == 3, describe(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, describe(proc)
    assert host in lines[0] and "not reachable" in lines[0], describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_service_that_exits_non_zero_fails_up_and_shows_its_logs(
    project_dir: Any, envd_cli: Cli
) -> None:
    """A service exiting non-zero makes `up --once` exit 1, naming it and printing its last log lines."""
    project_dir.write(f"""
        [services.bad]
        image = "{BUSYBOX}"
        command = ["sh", "-c", "echo boom; exit 3"]
        restart = "no"

        # Depends on `bad` having started; its healthcheck keeps `up` waiting a moment.
        [services.web]
        image = "{BUSYBOX}"
        command = ["sleep", "100000"]
        depends_on = {{ bad = "started" }}
        healthcheck = {{ test = ["CMD", "true"], interval = "1s", retries = 3 }}
        stop_signal = "SIGKILL"
        """)
    proc = envd_cli("up", "--once", "--timeout", "60")
    assert proc.returncode == 1, describe(proc)
    assert re.search(r"service 'bad' exited with code 3", proc.stderr), describe(proc)
    assert re.search(r"^\s*bad \| boom$", proc.stderr, re.M), describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr


def test_timeout_on_a_never_healthy_service_exits_1_naming_it(
    project_dir: Any, envd_cli: Cli
) -> None:
    """`up --once --timeout` gives up on a service that never becomes healthy: exit 1, naming it."""
    project_dir.write(f"""
        [services.stuck]
        image = "{BUSYBOX}"
        command = ["sleep", "100000"]
        healthcheck = {{ test = ["CMD", "false"], interval = "1s", retries = 1000 }}
        stop_signal = "SIGKILL"
        """)
    started = time.monotonic()
    proc = envd_cli("up", "--once", "--timeout", "3")
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, describe(proc)
    assert re.search(r"service 'stuck' timed out", proc.stderr), describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert elapsed < 30, f"--timeout 3 took {elapsed:.1f}s"


def test_completed_dependency_lets_its_dependent_start_on_every_up(
    project_dir: Any, project_name: str, envd_cli: Cli, docker_client: Any
) -> None:
    """A one-shot exiting 0 satisfies `completed`: the dependent starts after it, also on a second `up` (Compose #10596)."""
    project_dir.write(f"""
        [services.migrate]
        image = "{BUSYBOX}"
        command = ["sh", "-c", "sleep 1; echo migrated"]

        [services.app]
        image = "{BUSYBOX}"
        command = ["sleep", "100000"]
        depends_on = {{ migrate = "completed" }}
        stop_signal = "SIGKILL"
        """)
    ok(envd_cli("up", "--once", "--timeout", "60"))
    first = containers(docker_client, project_name)
    migrate = first[f"{project_name}-migrate-1"]["State"]
    app = first[f"{project_name}-app-1"]["State"]
    assert migrate["Status"] == "exited" and migrate["ExitCode"] == 0, migrate
    assert app["Running"], app
    assert nanos(app["StartedAt"]) > nanos(migrate["FinishedAt"]), (app, migrate)

    # A second `up` neither re-runs the one-shot nor refuses to start the dependent.
    ok(envd_cli("up", "--once", "--timeout", "60"))
    plan = json.loads(ok(envd_cli("plan", "--json")).stdout)
    assert plan["changes"] == 0, plan
    second = containers(docker_client, project_name)
    assert {n: (i["Id"], i["State"]["StartedAt"]) for n, i in second.items()} == {
        n: (i["Id"], i["State"]["StartedAt"]) for n, i in first.items()
    }


@pytest.mark.needs_engine_healthchecks
def test_up_once_returns_soon_after_the_service_turns_healthy(
    project_dir: Any, project_name: str, envd_cli: Cli, docker_client: Any
) -> None:
    """`up --once` follows the engine's events: it returns within a fraction of a
    second of the healthcheck passing, not a poll interval (or more) later."""
    project_dir.write(f"""
        [services.slow]
        image = "{BUSYBOX}"
        command = ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 100000"]
        healthcheck = {{ test = ["CMD", "test", "-f", "/tmp/ready"], interval = "250ms", retries = 100 }}
        stop_signal = "SIGKILL"
        """)
    since = int(time.time()) - 1
    proc = ok(envd_cli("up", "--once", "--timeout", "60"))
    returned = time.time_ns()
    (info,) = containers(docker_client, project_name).values()
    assert info["State"]["Health"]["Status"] == "healthy", describe(proc)
    events = docker_client.api.events(
        since=since,
        until=int(time.time()) + 1,
        filters={"container": info["Id"], "event": "health_status"},
        decode=True,
    )
    healthy_at = min(int(e["timeNano"]) for e in events if e["Action"] == "health_status: healthy")
    # The process's own exit (interpreter, printing) is inside this margin too.
    late = (returned - healthy_at) / 1e9
    assert late < 1.0, f"returned {late:.2f}s after turning healthy\n{describe(proc)}"
