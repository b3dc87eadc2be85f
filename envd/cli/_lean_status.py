"""``envd status`` against a running daemon, answered before click loads.

With a daemon running, ``status`` prints the daemon's report (as JSON with
``--json``, else as the text ``envd.cli._status_text`` renders); the full path spends most of its time importing click, the CLI and
``http.client``. ``envd.__main__`` asks this module first: it reads the
daemon's socket path from the same arguments, asks ``GET /v1/status`` with
the same peer check as ``envd.daemon.client`` (a socket served by another
user gets nothing), and prints the report exactly as the full path does.
Anything else — no socket, no answer, an error answer, a report without
services (the daemon's spec is broken: the full path observes the engine
itself), other flags — returns None and the full path runs.
``ENVD_LEAN=off`` turns it off.
"""

from __future__ import annotations

import os
import sys

from envd.cli._lean_args import daemon_socket, resolve_paths, split_globals
from envd.cli._lean_wire import WireError, get
from envd.values import jsontext

TYPE_CHECKING = False
if TYPE_CHECKING:  # nothing loaded for types: this answers in a few milliseconds
    from collections.abc import Mapping, Sequence


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[str, bool] | None:
    """(the daemon's socket, --json) of ``envd [globals] status [--json]``, or None."""
    found = split_globals(argv, "status")
    if found is None:
        return None
    # --profile: the daemon's report does not depend on it
    project_dir, file, environment, _, rest = found
    if rest not in ([], ["--json"]):
        return None
    if environment is None:
        environment = environ.get("ENVD_ENV") or None
    paths = resolve_paths(project_dir, file)
    if paths is None:
        return None
    return daemon_socket(paths[1], environment), bool(rest)


def try_status(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Print a running daemon's status report and return 0, or None: take the full path."""
    try:
        found = parse(argv, environ)
        if found is None or not os.path.exists(found[0]):
            return None
        answer = get(found[0], "/v1/status", 10.0, peer_uid=os.geteuid())
        if answer.status != 200:
            return None
        report = jsontext.loads(answer.body or b"null")
    except (WireError, OSError, ValueError):
        return None
    except Exception:  # any doubt: the full path decides
        return None
    if not isinstance(report, dict) or "services" not in report:
        return None
    if found[1]:
        sys.stdout.write(jsontext.dumps_indented(report) + "\n")
        return 0
    from envd.cli._status_text import render

    try:
        lines = render(report)
    except Exception:  # a report this envd cannot read: the full path says so
        return None
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0
