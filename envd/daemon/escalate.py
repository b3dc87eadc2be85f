"""Ending a daemon that would not stop when asked: SIGTERM, then SIGKILL.

Each signal goes only to a pid whose command line is still `envd … daemon`
(``/proc/<pid>/cmdline``): a pid file can outlive its daemon, and the kernel
hands the number to the next process, which must never be killed.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from envd.values.errors import EnvdError

KILL_WAIT = 5.0


def is_daemon(pid: int, project_dir: Path | None = None) -> bool:
    """Whether ``pid`` runs `envd … daemon` (for ``project_dir`` when it names one with -C)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if b"daemon" not in args or not any(b"envd" in a for a in args):
        return False
    if project_dir is not None and b"-C" in args[:-1]:
        return args[args.index(b"-C") + 1] == os.fsencode(project_dir)
    return True


def _signal(pid: int, sig: signal.Signals) -> bool:
    """Send ``sig``; False when the process is already gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        raise EnvdError(
            f"the daemon (pid {pid}) would not stop and this user may not signal it;"
            " nothing was removed"
        ) from None
    return True


def escalate(
    pid: int,
    term_grace: float,
    gone: Callable[[float], bool],
    notify: Callable[[str], object] | None = None,
    kill_wait: float = KILL_WAIT,
    project_dir: Path | None = None,
) -> None:
    """End the daemon ``pid`` that did not stop when asked, or raise ``EnvdError`` saying why not.

    ``gone(seconds)`` waits at most that long for the daemon to be gone.
    """
    say = notify or (lambda _: None)
    if not is_daemon(pid, project_dir):
        if gone(0):
            return
        raise EnvdError(
            f"the daemon did not stop when asked, and pid {pid} from its pid file is not an"
            " envd daemon here (another pid namespace, or a reused pid), so it was not"
            " signalled; stop the daemon by hand, then run the command again"
        )
    if not _signal(pid, signal.SIGTERM) or gone(term_grace):
        say(f"the daemon (pid {pid}) did not stop when asked; SIGTERM ended it")
        return
    if not is_daemon(pid, project_dir):  # it exited and the pid was reused within the grace
        return
    if not _signal(pid, signal.SIGKILL) or gone(kill_wait):
        say(
            f"the daemon (pid {pid}) ignored SIGTERM for {term_grace:g}s;"
            " escalated to SIGKILL and it is gone"
        )
        return
    raise EnvdError(
        f"the daemon (pid {pid}) is still running after SIGKILL; nothing was removed"
        " (is the process stuck in the kernel?)"
    )
