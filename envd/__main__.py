"""Process entry point.

``envd init`` is dispatched before anything heavy is imported so that the
tiny init starts fast; so are the lean answers of a no-op ``up --once``
(``envd.cli._lean_up``, read by ``envd.cli._lean_read``) and of ``status`` against a running daemon
(``envd.cli._lean_status``), each of which gives way to the click CLI on any
doubt. Every other command goes through the click CLI.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # the lean answers run first: nothing loaded for types
    from collections.abc import Callable, Mapping


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "init":
        from envd import init

        init.run(argv[1:])
    if os.getpid() == 1:
        # As PID 1 (envd in a CI container) something must reap orphans and
        # forward signals. A reaper inside this process would steal the exit
        # statuses of our own subprocesses, so the init runs in front and
        # envd becomes its child.
        from envd import init

        init.run(["--", sys.executable, "-m", "envd", *argv])
    # envd is an application: third-party pydantic plugins have no business in
    # its spec models, and finding them scans every installed distribution's
    # metadata on each start (~10 ms).
    # (Set before the lean entry: the desired-cache key covers the environment.)
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if "--once" in argv and "up" in argv and os.environ.get("ENVD_LEAN") != "off":
        # A no-op `up --once` answered from stdlib-only code when certain.
        from envd.cli._lean_read import try_up

        code = _lean(try_up, argv)
        if code is not None:
            _leave(code)
    if "status" in argv and os.environ.get("ENVD_LEAN") != "off":
        # A running daemon's report, printed without loading the CLI.
        from envd.cli._lean_status import try_status

        code = _lean(try_status, argv)
        if code is not None:
            _leave(code)
    from envd.cli.app import run_cli

    _leave(run_cli())


def _lean(
    answer: Callable[[list[str], Mapping[str, str]], int | None], argv: list[str]
) -> int | None:
    try:
        return answer(argv, os.environ)
    except BrokenPipeError:  # as the CLI: nobody reads the answer any more
        return 0


def _leave(code: int) -> None:
    """Exit without the interpreter's teardown.

    Freeing every module (pydantic's included) takes ~40 ms after the work is
    done, a tenth of a one-service change. envd registers no atexit handlers
    and keeps no temporary files, so flushing what it wrote is all that
    matters: log handlers (the daemon's rotating file), then stdout/stderr.
    """
    if "logging" in sys.modules:
        import logging

        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: nobody is reading any more
    os._exit(code)


if __name__ == "__main__":
    main()
