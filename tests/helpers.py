"""Helpers shared by envd's tests (import as ``tests.helpers`` or ``helpers``).

Nothing here sleeps for a fixed time to wait for something: :func:`wait_for`
polls with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]

# Built locally by scripts/build-test-images.sh (no registry is reachable).
BUSYBOX = "envd-local/busybox:latest"
DEBIAN = "envd-local/debian:bookworm"

PROJECT_LABEL = "dev.envd.project"


class WaitTimeout(AssertionError):
    """A condition polled by :func:`wait_for` did not come true before its deadline."""


def no_engine(reason: str) -> None:
    """Skip a Docker test for ``reason``, or fail it when ENVD_REQUIRE_DOCKER=1 (CI)."""
    import pytest

    if os.environ.get("ENVD_REQUIRE_DOCKER", "") == "1":
        pytest.fail(f"no Docker engine, and ENVD_REQUIRE_DOCKER=1: {reason}", pytrace=False)
    pytest.skip(f"no Docker engine: {reason}")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] | None = None,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Polls every ``interval`` seconds for at most ``timeout`` seconds (measured
    on the monotonic clock; the predicate is always tried at least once, and
    once more at the deadline). Exceptions of the types in ``ignore`` count as
    "not yet" (e.g. ``ConnectionRefusedError`` while a server starts); any
    other exception propagates at once. On timeout raises :class:`WaitTimeout`
    (an ``AssertionError``) saying what was awaited and the last value or
    exception seen. ``message`` may be a callable, evaluated only on failure,
    to describe the state at that moment (e.g. the container's logs).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    last_exc: BaseException | None = None
    while True:
        final = time.monotonic() >= deadline
        try:
            value = predicate()
        except ignore as exc:
            last_exc = exc
        else:
            if value:
                return value
            last, last_exc = value, None
        if final:
            break
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
    what = message() if callable(message) else message
    name = getattr(predicate, "__name__", repr(predicate))
    seen = f"last error: {last_exc!r}" if last_exc is not None else f"last value: {last!r}"
    raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what or name} ({seen})")


def remaining_project_objects(client: Any, project: str) -> list[str]:
    """Every container, network, volume and image labelled ``dev.envd.project=<project>``."""
    flt = {"label": f"{PROJECT_LABEL}={project}"}
    return [
        *(f"container {c.name}" for c in client.containers.list(all=True, filters=flt)),
        *(f"network {n.name}" for n in client.networks.list(filters=flt)),
        *(f"volume {v.name}" for v in client.volumes.list(filters=flt)),
        *(f"image {i.short_id}" for i in client.images.list(all=True, filters=flt)),
    ]


def remove_project_objects(client: Any, project: str, timeout: float = 60.0) -> None:
    """Remove everything labelled ``dev.envd.project=<project>``, retrying until none is left.

    ``client`` is a ``docker.DockerClient``. Containers go first (forced, with
    their anonymous volumes) so that networks and volumes are free to go; a
    sweep is repeated while something remains (a removal still in progress, a
    container recreated meanwhile). Raises ``AssertionError`` naming what is
    left when the deadline passes.
    """
    import docker

    flt = {"label": f"{PROJECT_LABEL}={project}"}
    errors = (docker.errors.NotFound, docker.errors.APIError)

    def sweep() -> bool:
        for c in client.containers.list(all=True, filters=flt):
            with contextlib.suppress(*errors):
                c.remove(force=True, v=True)
        for n in client.networks.list(filters=flt):
            with contextlib.suppress(*errors):
                n.remove()
        for v in client.volumes.list(filters=flt):
            with contextlib.suppress(*errors):
                v.remove(force=True)
        for i in client.images.list(all=True, filters=flt):
            with contextlib.suppress(*errors):
                client.images.remove(i.id, force=True)
        return not remaining_project_objects(client, project)

    wait_for(
        sweep,
        timeout=timeout,
        interval=0.2,
        message=lambda: (
            f"project {project} to be cleaned up; left: "
            + ", ".join(remaining_project_objects(client, project))
        ),
    )


def remove_by_hand(client: Any, name: str, timeout: float = 10.0) -> str:
    """``docker rm -f NAME`` as a user types it, and the id it removed.

    Asked again while Docker 20.10 fails it on its own race ("unable to remove
    filesystem ... directory not empty", leaving the container dead for the next
    removal to finish). Each try removes the container by the id it had, never
    a successor envd may create under the name meanwhile.
    """
    import docker

    cid = str(client.containers.get(name).id)
    tries = 0

    def removed() -> bool:
        nonlocal tries
        tries += 1
        try:
            client.api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            if tries == 1:
                raise
            return True  # the dead container was removed by someone else meanwhile
        except docker.errors.APIError as exc:
            if "unable to remove filesystem" not in str(exc):
                raise
            return False
        return True

    wait_for(removed, timeout=timeout, interval=0.1, message=f"{name} removed by hand")
    return cid


def run_to_end(
    client: Any, image: str, command: list[str], timeout: float = 60.0, **kw: Any
) -> bytes:
    """``docker run --rm IMAGE COMMAND``'s output, and fail unless it exits 0.

    Not the SDK's blocking ``containers.run``: that follows the log stream, which
    Podman 4.3 can leave open for ever when the container exits before the follow
    starts. Here the container runs detached, its exit is awaited with a deadline,
    and its logs are read once it has exited.
    """
    container = client.containers.run(image, command, detach=True, **kw)
    try:
        code = container.wait(timeout=timeout)["StatusCode"]
        out: bytes = container.logs(stdout=True, stderr=False)
        assert code == 0, f"{command} exited {code}: {container.logs().decode(errors='replace')}"
        return out
    finally:
        container.remove(force=True)


@contextlib.contextmanager
def project_cleanup(project: str, client: Callable[[], Any | None]) -> Iterator[str]:
    """Yield ``project``; afterwards, even on error, remove its Docker objects.

    ``client()`` gives the ``docker.DockerClient`` to use, or None when no
    engine answers (then nothing can have been created). This is what the
    ``project_name`` fixture runs at teardown.
    """
    try:
        yield project
    finally:
        engine = client()
        if engine is not None:
            remove_project_objects(engine, project)


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for publishing a container port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def envd_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the ``envd`` subprocess gets: ours, plain output, wide lines."""
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    env.pop("FORCE_COLOR", None)
    if extra:
        env.update(extra)
    return env


def run_envd(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``envd ARGS`` as a user would, as a subprocess, and return its result.

    Uses ``python -m envd`` with this interpreter, so it runs the code of this
    checkout. Output is captured as text. On timeout the test fails with what
    the command had printed so far; with ``check=True`` a non-zero exit fails
    the test too (showing stdout and stderr).
    """
    cmd = [sys.executable, "-m", "envd", *map(os.fspath, args)]
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=envd_env(env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = _text(exc.stdout)
        err = _text(exc.stderr)
        raise AssertionError(
            f"`envd {' '.join(map(str, args))}` did not finish within {timeout:g}s\n"
            f"--- stdout ---\n{out}\n--- stderr ---\n{err}"
        ) from None
    if check and proc.returncode != 0:
        raise AssertionError(describe(proc))
    return proc


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """A readable account of a finished command, for assertion messages."""
    args = proc.args if isinstance(proc.args, str) else " ".join(map(str, proc.args))
    return (
        f"`{args}` exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def _text(data: Any) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return str(data)


# --- the daemon over the fake engine ------------------------------------------

DAEMON_SPEC = """\
[project]
name = "unitd"

[services.web]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = {{ COLOR = "{web_color}" }}

[services.worker]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = {{ COLOR = "{worker_color}" }}
"""


class DaemonWorld:
    """A project directory, a fake engine, a fake clock and a reconciler over them.

    The reconciler's debouncer has no quiet period and its resync period is 0,
    so ``run_next`` never waits: "nothing due" shows up as a "periodic resync".
    """

    def __init__(self, root: Path, spec: str | None = None) -> None:
        import logging

        import structlog

        from envd.daemon.hub import EventHub
        from envd.daemon.reconciler import Reconciler
        from envd.daemon.timing import Debouncer
        from envd.engine.fake import FakeEngine
        from envd.inputs.prepare import Target
        from envd.values.events import FakeClock

        self.root = root
        self.engine = FakeEngine()
        self.engine.add_image(BUSYBOX)
        self.clock = FakeClock()
        self.hub = EventHub()
        self.events = self.hub.subscribe(since=0)
        self.write(spec)
        self.log = structlog.wrap_logger(logging.getLogger("test.daemon"))
        self.reconciler = Reconciler(
            Target(str(root)),
            self.engine,
            self.hub,
            self.log,
            clock=self.clock,
            debouncer=Debouncer(quiet=0.0, max_wait=0.0),
            resync=0.0,
        )

    def write(self, text: str | None = None, web: str = "red", worker: str = "red") -> None:
        (self.root / "envd.toml").write_text(
            text if text is not None else DAEMON_SPEC.format(web_color=web, worker_color=worker)
        )

    def run_next(self) -> tuple[int, list[str]]:
        due = self.reconciler.next_pass()
        assert due is not None
        generation, reasons, request = due
        self.reconciler.run_pass(generation, reasons, request)
        return generation, reasons

    def converge(self) -> None:
        """One pass now; it must succeed."""
        self.reconciler.trigger("test")
        self.run_next()
        assert self.reconciler.state.last_result == "ok", self.reconciler.state.last_error

    def containers(self) -> dict[str, Any]:
        return {c.name: c for c in self.engine.list_containers("unitd")}

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out


class FakeReconciler:
    """What the control API asks of a reconciler, recorded instead of reconciling."""

    def __init__(self, target: Any = None, engine: Any = None) -> None:
        self.target = target
        self.engine = engine
        self.environ: Mapping[str, str] = {}
        self.stopping = False
        self.generation = 0
        self.triggers: list[dict[str, Any]] = []
        self.report: dict[str, Any] = {"daemon": {"pid": os.getpid(), "last_result": "ok"}}

    def status(self) -> dict[str, Any]:
        return self.report

    def trigger(
        self,
        reason: str,
        wait_timeout: float | None = None,
        restart_exited: bool = False,
        environ: Mapping[str, str] | None = None,
        commands: Mapping[str, Any] | None = None,
        rerun: frozenset[str] = frozenset(),
    ) -> int:
        self.generation += 1
        self.triggers.append(
            {
                "reason": reason,
                "wait_timeout": wait_timeout,
                "restart_exited": restart_exited,
                "environ": environ,
                **({"rerun": sorted(rerun)} if rerun else {}),
            }
        )
        if commands is not None:
            self.triggers[-1]["commands"] = dict(commands)
        if environ is not None:
            self.environ = dict(environ)
        return self.generation

    def stop(self) -> None:
        self.stopping = True


@contextlib.contextmanager
def serving(
    path: Path,
    reconciler: Any,
    hub: Any = None,
    on_stop: Callable[[], object] | None = None,
) -> Iterator[Any]:
    """The daemon's control API on the unix socket ``path``, served from a thread."""
    import logging

    import structlog

    from envd.daemon.hub import EventHub
    from envd.daemon.server import make_server

    hub = hub if hub is not None else EventHub()
    server = make_server(
        path,
        reconciler,
        hub,
        on_stop or reconciler.stop,
        structlog.wrap_logger(logging.getLogger("test.daemon")),
    )
    server.start()
    try:
        yield server
    finally:
        reconciler.stop()  # ends open event streams
        server.stop(timeout=10)


def fake_cli_engine(monkeypatch: Any, *images: str) -> Any:
    """One ``FakeEngine`` (holding ``images``) for every CLI module that asks for the engine."""
    from envd.cli import containers, environments, project
    from envd.engine.fake import FakeEngine

    engine = FakeEngine()
    for ref in images:
        engine.add_image(ref)
    for module in (project, containers, environments):
        monkeypatch.setattr(module, "engine", lambda: engine)
    return engine


def cli_in_process(capsys: Any, *args: str | Path) -> tuple[int, str, str]:
    """``envd ARGS`` run in this process: (exit code, stdout, stderr)."""
    from envd.cli.app import run_cli

    code = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err
