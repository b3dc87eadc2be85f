"""Secret values: reading them from their sources.

Values live only in memory and inside containers. A ``command`` source is a
host command from the spec: it runs only for commands that act (``up``,
``run``) and only once this user approved it; a daemon takes the values its
``envd up`` sent (``CommandValues``) and runs none; read-only commands leave
its value out. What envd stores anywhere
else is a keyed digest (``envd.values.keys.Keys``, its key resolved by
``envd.inputs.keys``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from envd.values.errors import SpecError, SpecProblem

if TYPE_CHECKING:
    from envd.spec.models import SecretDef


def read_secret(name: str, definition: SecretDef, base: Path, environ: Mapping[str, str]) -> bytes:
    """The value of one secret; a clear SpecError (exit 2) when it cannot be read."""
    if definition.file is not None:
        path = base / definition.file
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SpecError(
                SpecProblem(
                    f"cannot read file {definition.file!r}: {exc.strerror}", path=f"secrets.{name}"
                )
            ) from None
    if definition.env is not None:
        if definition.env not in environ:
            raise SpecError(
                SpecProblem(
                    f"environment variable {definition.env} is not set", path=f"secrets.{name}.env"
                )
            )
        return environ[definition.env].encode()
    assert definition.command is not None
    import subprocess  # here: only a `command` secret runs one (start-up time)

    try:
        proc = subprocess.run(
            definition.command,
            cwd=base,
            # The environment the spec is loaded with: a daemon's is that of
            # the last `envd up`, not the one it was started with.
            env=dict(environ),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpecError(
            SpecProblem(f"command failed to run: {exc}", path=f"secrets.{name}.command")
        ) from None
    if proc.returncode != 0:
        # stderr may echo the value on some tools; report only the code.
        raise SpecError(
            SpecProblem(
                f"command exited with code {proc.returncode}", path=f"secrets.{name}.command"
            )
        )
    return proc.stdout.rstrip(b"\n")


class CommandValue(NamedTuple):
    """What one ``command`` source printed, and the command that printed it."""

    command: tuple[str, ...]
    value: bytes


class CommandValues:
    """The values of ``command`` sources that ``envd up`` ran, kept in a daemon's memory.

    The daemon never runs a host command itself: ``envd up`` runs the approved
    ones once, in the user's own shell environment (password managers need
    ``PATH``, ``HOME`` and agent sockets), and sends what they printed over
    the peer-checked socket. Every later pass reuses those values, so a source
    printing a new credential on each run does not recreate its consumers on
    each pass. A value applies only while its secret's command is unchanged:
    an edited command waits for the next ``envd up``. Nothing here is written
    anywhere.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, CommandValue] = {}

    def provide(self, values: Mapping[str, CommandValue]) -> None:
        """Replace the kept values with those of an ``envd up``."""
        with self._lock:
            self._values = dict(values)

    def get(self, name: str, command: Sequence[str]) -> bytes | None:
        """The value kept for secret ``name`` if it came from this very command."""
        with self._lock:
            kept = self._values.get(name)
        if kept is None or kept.command != tuple(command):
            return None
        return kept.value


def read_secrets(
    names: set[str],
    definitions: Mapping[str, SecretDef],
    base: Path,
    environ: Mapping[str, str],
    run_commands: bool = False,
    provided: CommandValues | None = None,
) -> dict[str, bytes]:
    """The values of ``names``. A ``command`` source runs only with ``run_commands``
    (the caller checked this user's consent, ``envd.inputs.consent``); ``provided``
    (a daemon's): its value is taken from what ``envd up`` sent, and never run.
    A command source with neither is left out of the answer."""
    problems: list[SpecProblem] = []
    values: dict[str, bytes] = {}
    for name in sorted(names):
        command = definitions[name].command
        if command is not None and provided is not None:
            kept = provided.get(name, command)
            if kept is not None:
                values[name] = kept
            continue
        if command is not None and not run_commands:
            continue
        try:
            values[name] = read_secret(name, definitions[name], base, environ)
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    return values
