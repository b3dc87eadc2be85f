"""How envd stops services: stop_signal, stop_grace_period and init on the real engine.

Each service is a busybox shell that records the signals it gets in a file in a
bind-mounted directory of the project (``./out`` → ``/out``), after writing
``/out/ready`` once its traps are set. The stop itself is measured twice: with
``time.monotonic`` around the envd call, and from the engine's own ``kill`` and
``die`` events of the stopped container (with the exit code it died with).

Calls whose duration is asserted tightly run the CLI in this process
(``run_cli``), so that interpreter start-up on a busy machine does not count;
the others run ``python -m envd`` as a user would.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe, run_envd, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("busybox_image")]

REPO = Path(__file__).resolve().parents[2]

# A shell that exits 0 on SIGTERM and on SIGUSR1, saying which one it got and
# in which generation ($GEN) of the service; `sleep & wait` lets a trap run at once.
TRAPPING = (
    "trap 'echo TERM $GEN >>/out/signals; exit 0' TERM; "
    "trap 'echo USR1 $GEN >>/out/signals; exit 0' USR1; "
    "echo $GEN >/out/ready; "
    "while :; do sleep 1 & wait $!; done"
)
# A shell, as PID 1 without an init, that ignores SIGTERM: only SIGKILL stops it.
IGNORING = "trap '' TERM; echo $GEN >/out/ready; while :; do sleep 1; done"


def toml_str(text: str) -> str:
    """``text`` as a TOML basic string, ``$`` escaped from envd's interpolation."""
    return json.dumps(text.replace("$", "$$"))


def service(name: str, script: str | None = None, gen: str = "1", **fields: str) -> str:
    """A ``[services.NAME]`` table: busybox running ``script`` (or ``fields['command']``)."""
    lines = [
        f"[services.{name}]",
        f'image = "{BUSYBOX}"',
        f'env = {{ GEN = "{gen}" }}',
        'volumes = ["./out:/out"]',
    ]
    if script is not None:
        lines.append(f'command = ["sh", "-c", {toml_str(script)}]')
    lines += [f"{key} = {value}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def run_inprocess(project: Path, *args: str) -> int:
    """``envd -C PROJECT ARGS`` through the CLI's entry function, in this process."""
    from envd.cli.app import run_cli

    return run_cli(["-C", str(project), *args])


@pytest.fixture(scope="module", autouse=True)
def _warm_imports() -> None:
    """Import what the CLI imports lazily, so a timed call measures envd's work, not imports."""


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def up(project: Path) -> None:
    proc = run_envd(["up", "--once", "--timeout", "60"], cwd=project)
    assert proc.returncode == 0, describe(proc)


def wait_ready(out: Path, gen: str = "1") -> None:
    """Wait until generation ``gen`` of the service has set its traps."""
    wait_for(
        lambda: (out / "ready").read_text().strip() == gen,
        timeout=30,
        ignore=(FileNotFoundError,),
        message=f"the service (generation {gen}) to write /out/ready",
    )


def signals(out: Path) -> list[str]:
    path = out / "signals"
    return path.read_text().splitlines() if path.exists() else []


def container_id(client: Any, project: str, service_name: str) -> str:
    found = client.api.containers(
        all=True,
        filters={"label": [f"dev.envd.project={project}", f"dev.envd.service={service_name}"]},
    )
    assert len(found) == 1, found
    return str(found[0]["Id"])


def stop_events(client: Any, cid: str, since: float, podman: bool = False) -> dict[str, Any]:
    """The engine's view of how ``cid`` was stopped since ``since`` (epoch seconds).

    ``signals``: the signals of its ``kill`` events in order; ``seconds``: from
    the first ``kill`` to ``die``; ``exit_code``: what it died with. Podman sends
    no ``kill`` event when it stops a container (docs/compatibility.md, Podman):
    there ``signals`` and ``seconds`` are None, and the tests read the signal the
    service got from its own record and the time from the envd call.
    """
    if podman:
        # Podman answers nothing to a fractional `until` or to this container filter:
        # whole seconds, and the container picked here.
        found = client.events(
            since=math.floor(since), until=math.ceil(time.time()) + 1, decode=True
        )
    else:
        found = client.events(
            since=since, until=time.time(), filters={"container": cid}, decode=True
        )
    events = [e for e in found if (e.get("Actor") or {}).get("ID") == cid]
    kills = [e for e in events if e["Action"] == "kill"]
    dies = [e for e in events if e["Action"] == "die"]
    assert len(dies) == 1 and (podman or kills), events
    assert not (podman and kills), events  # Podman started sending them: drop the branch
    return {
        "signals": None if podman else [int(e["Actor"]["Attributes"]["signal"]) for e in kills],
        "seconds": None if podman else (dies[0]["timeNano"] - kills[0]["timeNano"]) / 1e9,
        "exit_code": int(dies[0]["Actor"]["Attributes"]["exitCode"]),
        "events": [(e["Action"], e["timeNano"], e["Actor"]["Attributes"]) for e in events],
    }


def check_stop(
    stop: dict[str, Any], signals: list[int], exit_code: int, seconds: tuple[float, float]
) -> None:
    """The stop's exit code, and where the engine reports kill events, its signals and the
    time from the first kill to die within ``seconds``."""
    assert stop["exit_code"] == exit_code, stop
    if stop["signals"] is not None:
        assert stop["signals"] == signals, stop
        low, high = seconds
        assert low <= stop["seconds"] < high, stop


def measured(what: str, elapsed: float, stop: dict[str, Any]) -> None:
    """Print the figures (shown with ``pytest -s``): the envd call and the engine's kill->die."""
    print(
        f"measured: {what}: envd call {elapsed:.2f}s, kill->die {stop['seconds']}s,"
        f" signals {stop['signals']}, exit {stop['exit_code']}"
    )


@pytest.fixture
def out(project_dir: Path) -> Path:
    """The project's ``./out``, bind-mounted at ``/out`` in every service."""
    path = project_dir / "out"
    path.mkdir()
    return path


# A trapping service stops in its own time; if the signal did not reach it, the
# engine would wait this long before SIGKILL.
LONG_GRACE = '"30s"'


def test_recreate_sends_sigterm_and_takes_the_services_own_time(
    project_dir: Any, project_name: str, out: Path, docker_client: Any, engine_is_podman: bool
) -> None:
    """A recreate stops the old container with SIGTERM, which it handles and exits 0 at once."""
    project_dir.write(service("app", TRAPPING, gen="1", stop_grace_period=LONG_GRACE))
    up(project_dir)
    wait_ready(out, "1")
    old = container_id(docker_client, project_name, "app")
    project_dir.write(service("app", TRAPPING, gen="2", stop_grace_period=LONG_GRACE))
    since = time.time()
    _, elapsed = timed(lambda: up(project_dir))
    wait_ready(out, "2")
    assert signals(out) == ["TERM 1"]
    stop = stop_events(docker_client, old, since, engine_is_podman)
    measured("recreate, SIGTERM trapped", elapsed, stop)
    check_stop(stop, [15], 0, (0.0, 2.0))
    assert elapsed < 10.0, f"the recreate took {elapsed:.1f}s"


def test_down_sends_sigterm_and_takes_the_services_own_time(
    project_dir: Any, project_name: str, out: Path, docker_client: Any, engine_is_podman: bool
) -> None:
    """`envd down` stops a service with SIGTERM, which it handles and exits 0 at once."""
    project_dir.write(service("app", TRAPPING, stop_grace_period=LONG_GRACE))
    up(project_dir)
    wait_ready(out)
    cid = container_id(docker_client, project_name, "app")
    since = time.time()
    proc, elapsed = timed(lambda: run_envd(["down"], cwd=project_dir))
    assert proc.returncode == 0, describe(proc)
    assert signals(out) == ["TERM 1"]
    stop = stop_events(docker_client, cid, since, engine_is_podman)
    measured("down, SIGTERM trapped", elapsed, stop)
    check_stop(stop, [15], 0, (0.0, 2.0))
    assert elapsed < 10.0, f"down took {elapsed:.1f}s"


def test_stop_signal_is_the_signal_the_service_receives(
    project_dir: Any, project_name: str, out: Path, docker_client: Any, engine_is_podman: bool
) -> None:
    """With stop_signal = "SIGUSR1" the service gets SIGUSR1 (through Docker's init), not SIGTERM."""
    project_dir.write(
        service("app", TRAPPING, stop_signal='"SIGUSR1"', stop_grace_period=LONG_GRACE)
    )
    up(project_dir)
    wait_ready(out)
    cid = container_id(docker_client, project_name, "app")
    # Podman reports the stop signal by number.
    signal = "10" if engine_is_podman else "SIGUSR1"
    assert docker_client.api.inspect_container(cid)["Config"]["StopSignal"] == signal
    since = time.time()
    proc, elapsed = timed(lambda: run_envd(["down"], cwd=project_dir))
    assert proc.returncode == 0, describe(proc)
    assert signals(out) == ["USR1 1"]
    stop = stop_events(docker_client, cid, since, engine_is_podman)
    measured("down, SIGUSR1 trapped", elapsed, stop)
    check_stop(stop, [10], 0, (0.0, 30.0))
    assert elapsed < 10.0, f"down took {elapsed:.1f}s"


GRACE = 2.0


def test_a_service_ignoring_sigterm_is_killed_after_exactly_its_grace_period(
    project_dir: Any, project_name: str, out: Path, docker_client: Any, engine_is_podman: bool
) -> None:
    """Without an init, a shell PID 1 that ignores SIGTERM is SIGKILLed once the grace period is over."""
    project_dir.write(service("app", IGNORING, init="false", stop_grace_period=f'"{GRACE:g}s"'))
    up(project_dir)
    wait_ready(out)
    cid = container_id(docker_client, project_name, "app")
    # Podman leaves Init out of the inspect when it is false.
    assert docker_client.api.inspect_container(cid)["HostConfig"].get("Init", False) is False
    since = time.time()
    code, elapsed = timed(lambda: run_inprocess(project_dir, "down"))
    assert code == 0
    assert GRACE <= elapsed < GRACE + 1.5, f"down took {elapsed:.2f}s, grace {GRACE:g}s"
    stop = stop_events(docker_client, cid, since, engine_is_podman)
    measured(f"down, SIGTERM ignored, no init, grace {GRACE:g}s", elapsed, stop)
    check_stop(stop, [15, 9], 137, (GRACE - 0.1, GRACE + 1.0))
    assert signals(out) == []


def test_removing_a_service_from_the_spec_stops_it_with_its_own_grace_period(
    project_dir: Any, project_name: str, out: Path, docker_client: Any, engine_is_podman: bool
) -> None:
    """An orphan (its service left the spec) is stopped with the grace period it was created with."""
    kept = service("kept", command='["sleep", "100000"]', stop_signal='"SIGKILL"')
    project_dir.write(
        kept + service("gone", IGNORING, init="false", stop_grace_period=f'"{GRACE:g}s"')
    )
    up(project_dir)
    wait_ready(out)
    cid = container_id(docker_client, project_name, "gone")
    project_dir.write(kept)
    since = time.time()
    code, elapsed = timed(lambda: run_inprocess(project_dir, "up", "--once", "--timeout", "60"))
    assert code == 0
    stop = stop_events(docker_client, cid, since, engine_is_podman)
    measured(f"orphan removed by up, SIGTERM ignored, grace {GRACE:g}s", elapsed, stop)
    check_stop(stop, [15, 9], 137, (GRACE - 0.1, GRACE + 1.0))
    assert elapsed < GRACE + 5.0, f"up took {elapsed:.2f}s"


@pytest.mark.parametrize(
    ("init", "grace", "seconds", "exit_code"),
    [
        pytest.param("true", "10s", (0.0, 1.5), 143, id="init-forwards-sigterm"),
        pytest.param("false", f"{GRACE:g}s", (GRACE, GRACE + 1.5), 137, id="no-init-waits-grace"),
    ],
)
def test_a_plain_sleep_stops_promptly_only_with_an_init(
    project_dir: Any,
    project_name: str,
    docker_client: Any,
    engine_is_podman: bool,
    init: str,
    grace: str,
    seconds: tuple[float, float],
    exit_code: int,
) -> None:
    """`sleep` has no SIGTERM handler: with init = true Docker's init forwards SIGTERM and it dies at once; as PID 1 it is immune and waits out the grace period."""
    project_dir.write(
        f"""
        [services.app]
        image = "{BUSYBOX}"
        command = ["sleep", "100000"]
        init = {init}
        stop_grace_period = "{grace}"
        """
    )
    up(project_dir)
    cid = container_id(docker_client, project_name, "app")
    host = docker_client.api.inspect_container(cid)["HostConfig"]
    assert host.get("Init", False) is (init == "true")  # Podman leaves a false one out
    since = time.time()
    code, elapsed = timed(lambda: run_inprocess(project_dir, "down"))
    assert code == 0
    low, high = seconds
    assert low <= elapsed < high, f"down took {elapsed:.2f}s (expected {low:g}..{high:g}s)"
    stop = stop_events(docker_client, cid, since, engine_is_podman)
    measured(f"down, sleep, init = {init}, grace {grace}", elapsed, stop)
    assert stop["exit_code"] == exit_code, stop
