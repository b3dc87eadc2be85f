"""Starting, finding and stopping a project's daemon from the CLI."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from envd.daemon.paths import StatePaths
from envd.inputs.safefile import append_nofollow, read_regular
from envd.values.errors import EnvdError

if TYPE_CHECKING:  # the spec pipeline (pydantic) is not needed to find a daemon
    from envd.daemon.client import DaemonClient
    from envd.inputs.prepare import Target

OUTPUT_CAP = 16 * 1024 * 1024  # daemon.out read for its last lines only
SPEC_CAP = 16 * 1024 * 1024  # the spec and .env are scanned for names, never bigger

# `up` sends the daemon the variables the spec can read, not the whole shell:
# ${NAME} / $NAME references (defaults included), `env = "NAME"` secret
# sources, envd's and Docker's own settings, and where this user's approvals
# live. Nothing for host commands: the daemon runs none (`up` runs the
# command secrets and sends what they printed), so PATH, HOME and agent
# sockets stay in the shell.
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# A secret's `env = "X"` and a config's `environment = "X"` name a variable too.
_ENV_SOURCE = re.compile(r"""\b(?:env|environment)\s*=\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")
_ALWAYS_PREFIXES = ("ENVD_", "DOCKER_")
_PROCESS_BASICS = frozenset({"XDG_STATE_HOME"})
TERM_GRACE = 10.0  # seconds between SIGTERM and SIGKILL for a daemon that would not stop

# The client is imported only where a daemon is talked to: it pulls in
# http.client and ssl (~10 ms), which `up --once` and `down` pay for nothing
# when, as usual, no daemon socket exists.


def spec_environ(spec_file: Path, base: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` the spec at ``spec_file`` (and ``base/.env``) can read."""
    names: set[str] = set()
    for path in (spec_file, base / ".env"):
        try:
            text = read_regular(path, SPEC_CAP).decode(errors="replace")
        except OSError:
            continue
        names.update(_REFERENCE.findall(text))
        names.update(_ENV_SOURCE.findall(text))
    return {
        name: value
        for name, value in environ.items()
        if name in names or name in _PROCESS_BASICS or name.startswith(_ALWAYS_PREFIXES)
    }


def client_for(project_dir: Path, environment: str | None) -> DaemonClient:
    from envd.daemon.client import DaemonClient

    return DaemonClient(StatePaths.for_project(project_dir, environment).socket)


def running(project_dir: Path, environment: str | None) -> DaemonClient | None:
    paths = StatePaths.for_project(project_dir, environment)
    if not paths.socket.exists():
        return None
    from envd.daemon.client import DaemonClient

    client = DaemonClient(paths.socket)
    return client if client.alive() else None


def start(
    target: Target, project_dir: Path, environment: str | None, timeout: float = 15.0
) -> DaemonClient:
    """Start the daemon detached (own session, output to .envd/daemon.out) and wait for it."""
    from envd.daemon.client import DaemonClient

    paths = StatePaths.for_project(project_dir, environment)
    paths.ensure()
    args = [sys.executable, "-m", "envd", "-C", str(project_dir)]
    if target.file:
        args += ["-f", str(Path(target.file).absolute())]
    if environment:
        args += ["--env", environment]
    for profile in sorted(target.profiles):
        args += ["--profile", profile]
    args.append("daemon")
    env = dict(os.environ)
    # The daemon must import this very envd, installed or run from a checkout.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    import subprocess  # here: only starting a daemon needs it (start-up time of every command)

    with os.fdopen(append_nofollow(paths.output), "ab") as out:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            cwd=str(project_dir),
            env=env,
        )
    client = DaemonClient(paths.socket)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if paths.socket.exists() and client.alive():
            return client
        code = proc.poll()
        if code is not None and code != 0:
            tail = _tail(paths.output)
            raise EnvdError(f"the daemon exited with code {code}: {' / '.join(tail)}")
        if code == 0 and not paths.socket.exists():
            # Lost a start race to another daemon, which is still binding.
            pass
        time.sleep(0.05)
    raise EnvdError(
        f"the daemon did not answer on {paths.socket} within {timeout:.0f}s; see {paths.output}"
    )


def stop(
    project_dir: Path,
    environment: str | None,
    timeout: float = 30.0,
    *,
    term_grace: float | None = None,
    notify: Callable[[str], object] | None = None,
) -> bool:
    """Stop the daemon and make sure it is gone; False if none ran.

    Asked over its socket first (it finishes its pass); one that does not go
    within ``timeout`` gets SIGTERM, then after ``term_grace`` SIGKILL, each
    only after /proc says the pid is still an envd daemon (a reused pid is
    never signalled). ``notify`` hears each escalation; a daemon still there
    at the end raises ``EnvdError``.
    """
    from envd.daemon.escalate import escalate, is_daemon

    paths = StatePaths.for_project(project_dir, environment)
    client: DaemonClient | None = None
    if paths.socket.exists():  # else no client to import (http.client): `down`'s usual case
        from envd.daemon.client import DaemonClient, ForeignDaemon

        try:
            client = running(project_dir, environment)
        except ForeignDaemon:
            if os.geteuid() != 0:
                raise
            # Root may stop another user's daemon of this project (one in the envd
            # image runs as its own user): a stop request carries nothing of ours,
            # and root could end that process anyway.
            client = DaemonClient(paths.socket, trust_foreign=True)
    pid = _pid(paths)
    if client is None and not (pid is not None and _alive(pid) and is_daemon(pid, project_dir)):
        return False
    if client is not None:
        try:
            client.stop()
        except EnvdError:
            pass
        if _wait_gone(paths, pid, timeout):
            return True
    assert pid is not None  # without a pid file _wait_gone returned True
    grace = TERM_GRACE if term_grace is None else term_grace
    escalate(
        pid, grace, lambda seconds: _wait_gone(paths, pid, seconds), notify, project_dir=project_dir
    )
    return True


def _wait_gone(paths: StatePaths, pid: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        # The daemon removes its pid file on its way out. The pid itself means
        # nothing here when the daemon runs in a container (another pid namespace).
        if pid is None or not paths.pid.exists() or not _alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _tail(path: Path) -> list[str]:
    try:
        data = read_regular(path, OUTPUT_CAP, follow=False, own=True)
    except OSError:
        return []
    return data.decode(errors="replace").strip().splitlines()[-3:]


def _pid(paths: StatePaths) -> int | None:
    try:
        return int(read_regular(paths.pid, 64, follow=False, own=True).strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists": reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
