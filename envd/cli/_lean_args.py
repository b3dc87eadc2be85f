"""The global flags the lean entry understands, read as click reads them.

``envd [-C DIR] [-f FILE] [--env NAME] [--profile P]... [--debug] COMMAND ...``:
the two lean answers (``_lean_up``, ``_lean_status``) share this reading, so
a flag one of them accepts means the same to the other. Anything else before
the command (an unknown flag, a value that looks like a flag, ``--opt=value``)
is None: the full path parses it and words any problem. Stdlib only, and no
``dataclasses`` or ``typing`` (the lean status imports neither).
"""

from __future__ import annotations

from collections.abc import Sequence

_VALUED = ("-C", "-f", "--file", "--env", "--profile")


def split_globals(
    argv: Sequence[str], command: str
) -> tuple[str | None, str | None, str | None, list[str], list[str]] | None:
    """(``-C``, ``-f``, ``--env``, the ``--profile`` values, the words after COMMAND), or None."""
    project_dir: str | None = None
    file: str | None = None
    environment: str | None = None
    profiles: list[str] = []
    i = 0
    while i < len(argv) and argv[i] != command:
        flag = argv[i]
        if flag == "--debug":
            i += 1
            continue
        if flag not in _VALUED or i + 1 >= len(argv):
            return None
        value = argv[i + 1]
        if not value or value.startswith("-"):
            return None
        if flag == "-C":
            project_dir = value
        elif flag in ("-f", "--file"):
            file = value
        elif flag == "--env":
            environment = value
        else:
            profiles.append(value)
        i += 2
    if i >= len(argv):
        return None
    return project_dir, file, environment, profiles, list(argv[i + 1 :])
