"""envd init as PID 1 of a real container (needs a Docker engine and the Debian test image).

The repository's ``envd/`` is bind-mounted read-only into ``envd-local/debian:bookworm``
(built by scripts/build-test-images.sh) and run with the image's own
``python3 -m envd.init``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
LABEL = "dev.envd.test=init-pid1"
DEADLINE = 30.0  # seconds, for anything the engine does; polled, never slept through


def docker(*args: str, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def start(debian_image: str) -> Iterator[Callable[..., str]]:
    """Start ``python3 -m envd.init INIT_ARGS -- CMD`` detached; remove it at teardown.

    ``debian_image`` (tests/conftest.py) skips when the image is not built, or fails
    when ENVD_REQUIRE_DOCKER=1 as in CI.
    """
    names: list[str] = []

    def run(command: list[str], init_args: tuple[str, ...] = ()) -> str:
        name = f"envd-init-test-{uuid.uuid4().hex[:10]}"
        names.append(name)
        created = docker(
            "run", "-d", "--name", name, "--label", LABEL,
            "-v", f"{REPO / 'envd'}:/opt/envd/envd:ro", "-e", "PYTHONPATH=/opt/envd",
            "--entrypoint", "python3", debian_image, "-m", "envd.init", *init_args, "--", *command,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        return name

    yield run
    if names:
        docker("rm", "-f", *names)


def logs(name: str) -> str:
    result = docker("logs", name)
    return result.stdout + result.stderr


def wait_for_log(name: str, pattern: str) -> str:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        text = logs(name)
        if re.search(pattern, text):
            return text
        state = inspect(name)["State"]
        if not state["Running"]:
            raise AssertionError(f"{name} exited ({state['ExitCode']}) without {pattern!r}: {text}")
    raise AssertionError(f"no {pattern!r} in {name}'s logs within {DEADLINE}s: {logs(name)}")


def inspect(name: str) -> dict[str, dict[str, object]]:
    result = docker("inspect", name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]  # type: ignore[no-any-return]


def wait_exit(name: str) -> int:
    result = docker("wait", name)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo ready; exec sleep infinity", 128 + 15),  # dies of SIGTERM: 128+15
        ("trap 'exit 0' TERM; echo ready; while :; do sleep 0.1; done", 0),  # handles it
    ],
    ids=["default-action", "trapped"],
)
def test_docker_stop_is_prompt_and_clean(
    start: Callable[..., str], script: str, expected: int
) -> None:
    """``docker stop`` reaches the command through the init at once, with its exit code."""
    name = start(["sh", "-c", script])
    wait_for_log(name, r"(?m)^ready$")
    pid1 = docker("exec", name, "cat", "/proc/1/cmdline").stdout.replace("\0", " ")
    assert "-m envd.init" in pid1
    began = time.monotonic()
    stopped = docker("stop", "-t", "20", name)
    elapsed = time.monotonic() - began
    assert stopped.returncode == 0, stopped.stderr
    assert elapsed < 10, f"docker stop took {elapsed:.1f}s: SIGTERM was not forwarded"
    assert inspect(name)["State"]["ExitCode"] == expected


def test_exit_code_of_the_command_is_the_container_s(start: Callable[..., str]) -> None:
    """The container exits with the command's own exit code."""
    assert wait_exit(start(["sh", "-c", "exit 7"])) == 7


ORPHANS = r"""
import os, time
parent = os.getppid()
assert parent == 1, parent
read_end, write_end = os.pipe()
for _ in range(5):
    middle = os.fork()
    if middle == 0:
        orphan = os.fork()
        if orphan == 0:
            deadline = time.monotonic() + 10
            while os.getppid() != 1 and time.monotonic() < deadline:
                pass  # exit only once orphaned and re-parented to PID 1
            os._exit(0)
        os.write(write_end, f"{orphan}\n".encode())
        os._exit(0)
    os.waitpid(middle, 0)
os.close(write_end)
orphans = [int(line) for line in os.read(read_end, 4096).split()]
assert len(orphans) == 5, orphans

def alive(pid):
    # A zombie still has /proc/PID: gone means PID 1 has reaped it.
    return os.path.exists(f"/proc/{pid}")

# Waiting on the orphans' own PIDs, not on a count of zombies: an orphan still
# spinning towards its exit is no zombie yet, and a count read then says 0 too early.
deadline = time.monotonic() + 10
while any(alive(pid) for pid in orphans) and time.monotonic() < deadline:
    time.sleep(0.01)
print("zombies left:", sum(alive(pid) for pid in orphans), flush=True)
"""


def test_orphaned_zombies_are_reaped_in_the_container(start: Callable[..., str]) -> None:
    """Orphans that die inside the container are reaped by the init as PID 1."""
    name = start(["python3", "-c", ORPHANS], init_args=("-w",))
    assert wait_exit(name) == 0, logs(name)
    text = logs(name)
    assert "zombies left: 0" in text
    assert len(re.findall(r"Reaped zombie process with pid=\d+", text)) == 5
    assert "not running as PID 1" not in text
