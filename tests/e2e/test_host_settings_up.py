"""Container-level host settings (issue 12) through `envd up` on the real
engine: the running container has the limits, sysctl, host entry, ulimit and
log driver of the spec, and changing one recreates only what it should."""

from __future__ import annotations

import json
from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe

pytestmark = pytest.mark.usefixtures("busybox_image")

Cli = Callable[..., CompletedProcess[str]]

# nproc is given with nofile: rootful Podman raises a limit the spec leaves out to
# 1048576, which fails without CAP_SYS_RESOURCE (docs/compatibility.md, Podman).
SPEC = f"""
[services.web]
image = "{BUSYBOX}"
command = ["sh", "-c", "echo marker-from-a-tty; exec sleep 100000"]
stop_signal = "SIGKILL"
cpus = 0.5
mem_limit = "MEMORY"
pids_limit = 64
shm_size = "16m"
ulimits = {{ nofile = {{ soft = 1000, hard = 2000 }}, nproc = {{ soft = 16384, hard = 32768 }} }}
sysctls = {{ "net.core.somaxconn" = "300" }}
extra_hosts = ["api.internal=10.9.8.7"]
dns_search = ["corp.example"]
logging = {{ driver = "json-file", options = {{ max-size = "1m" }} }}
tty = true

[services.other]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
"""


def ok(proc: CompletedProcess[str]) -> CompletedProcess[str]:
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    return proc


def inspect(client: Any, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = client.api.inspect_container(name)
    return doc


def test_up_runs_the_service_with_its_host_settings(
    project_dir: Any,
    project_name: str,
    envd_cli: Cli,
    docker_client: Any,
    engine_is_podman: bool,
) -> None:
    """`up --once` creates the container with the spec's limits, sysctl, host entry, ulimit, DNS
    search, log driver and tty (whose output `logs` reads); a changed mem_limit recreates that
    service only."""
    project_dir.write(SPEC.replace("MEMORY", "64m"))
    ok(envd_cli("up", "--once", "--timeout", "60"))
    web = inspect(docker_client, f"{project_name}-web-1")
    host = web["HostConfig"]
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["PidsLimit"] == 64
    assert host["ShmSize"] == 16 * 1024 * 1024
    # Podman names them as the kernel does: RLIMIT_NOFILE.
    ulimits = [{**u, "Name": u["Name"].removeprefix("RLIMIT_").lower()} for u in host["Ulimits"]]
    assert sorted(ulimits, key=lambda u: u["Name"]) == [
        {"Name": "nofile", "Soft": 1000, "Hard": 2000},
        {"Name": "nproc", "Soft": 16384, "Hard": 32768},
    ]
    # Podman's inspect has no Sysctls; the exec below reads the value in effect.
    assert host.get("Sysctls") == (None if engine_is_podman else {"net.core.somaxconn": "300"})
    assert host["ExtraHosts"] == ["api.internal:10.9.8.7"]
    assert host["DnsSearch"] == ["corp.example"]
    # Podman's inspect reports the log driver without its options.
    log_options = None if engine_is_podman else {"max-size": "1m"}
    assert host["LogConfig"] == {"Type": "json-file", "Config": log_options}
    assert web["Config"]["Tty"] is True
    assert web["State"]["Running"] is True

    seen = ok(
        envd_cli(
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            # The limit of the container's own process: Podman's exec sessions run
            # with the soft nofile raised to the hard one.
            "cat /proc/sys/net/core/somaxconn; awk '/Max open files/ {print $4}' /proc/1/limits;"
            " grep api.internal /etc/hosts",
        )
    )
    assert seen.stdout.split()[:4] == ["300", "1000", "10.9.8.7", "api.internal"]

    # A tty container's output is not multiplexed: logs still read it.
    logs = ok(envd_cli("logs", "web", "--tail", "5"))
    assert "marker-from-a-tty" in logs.stdout

    other_id = inspect(docker_client, f"{project_name}-other-1")["Id"]
    project_dir.write(SPEC.replace("MEMORY", "96m"))
    plan = json.loads(ok(envd_cli("plan", "--json")).stdout)
    changed = [a for a in plan["actions"] if a["action"] == "recreate"]
    assert [a["name"] for a in changed] == [f"{project_name}-web-1"]
    assert "mem_limit" in changed[0]["reason"]
    ok(envd_cli("up", "--once", "--timeout", "60"))
    assert inspect(docker_client, f"{project_name}-web-1")["HostConfig"]["Memory"] == 96 * 1024**2
    assert inspect(docker_client, f"{project_name}-other-1")["Id"] == other_id
    status = json.loads(ok(envd_cli("status", "--json")).stdout)
    assert all(s["in_sync"] for s in status["services"]), status
