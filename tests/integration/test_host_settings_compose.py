"""Container-level host settings (issue 12) handed to Docker's own Compose
tools: the Compose export passes docker-compose 1.29 and Compose v2, the
stack export passes `docker stack config`, and Compose v2's resolved view of
the export imports back to the same desired containers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from envd.core.desired import desire
from envd.interop.compose_export import to_compose
from envd.interop.compose_import import import_compose
from envd.interop.render import render_yaml
from envd.interop.stack_export import to_stack
from envd.spec.load import load
from envd.values.keys import Keys

COMPOSE_V2 = Path("/opt/envd-bench/compose-v2/docker-compose")
KEYS = Keys(b"integration-hash-key")

SPEC = """
[services.web]
image = "busybox"
cpus = "1.5"
mem_limit = "1.5g"
mem_reservation = "128m"
memswap_limit = "2g"
pids_limit = 100
shm_size = "256m"
ulimits = { nofile = { soft = 1024, hard = 2048 }, nproc = 512 }
sysctls = ["net.core.somaxconn=1024"]
extra_hosts = ["a.local=10.0.0.1", "b.local:fd00::1", "gw:host-gateway"]
dns = "1.1.1.1"
dns_search = "corp.example"
dns_opt = ["ndots:2"]
devices = ["/dev/fuse", "/dev/a:/dev/b:r"]
domainname = "example.com"
platform = "linux/amd64"
runtime = "runc"
tty = true
stdin_open = true
security_opt = ["no-new-privileges", "label=disable"]
pid = "host"
ipc = "shareable"
logging = { driver = "json-file", options = { max-size = "1m", max-file = "3" } }
gpus = [{ driver = "nvidia", count = 1, capabilities = ["gpu"] }]
healthcheck = { test = "true", start_interval = "2s" }
"""


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_exports_pass_docker_compose_tools_and_round_trip(tmp_path: Path) -> None:
    """Compose 1.29, Compose v2 and `docker stack config` accept the exports, and import of
    Compose v2's resolved view gives back the same host settings, healthcheck, tty and stdin."""
    assert COMPOSE_V2.is_file(), f"Compose v2 is expected at {COMPOSE_V2}"
    src = tmp_path / "src"
    src.mkdir()
    (src / "envd.toml").write_text(SPEC)
    loaded = load(src, environ={})
    (src / "compose.yml").write_text(render_yaml(to_compose(loaded)))
    (src / "stack.yml").write_text(render_yaml(to_stack(loaded)))

    v1 = _run("docker-compose", "-f", "compose.yml", "config", "-q", cwd=src)
    assert v1.returncode == 0, v1.stderr
    stack = _run("docker", "stack", "config", "-c", "stack.yml", cwd=src)
    assert stack.returncode == 0, stack.stderr
    v2 = _run(str(COMPOSE_V2), "-f", "compose.yml", "config", "--format", "json", cwd=src)
    assert v2.returncode == 0, v2.stderr

    back = tmp_path / "back"
    back.mkdir()
    (back / "envd.toml").write_text(import_compose(v2.stdout, "compose.json").toml)
    first = desire(loaded, {}, keys=KEYS).services["web"].template
    second = desire(load(back, environ={}), {}, keys=KEYS).services["web"].template
    assert second.host == first.host
    assert second.healthcheck == first.healthcheck
    assert (second.tty, second.stdin_open) == (True, True)
