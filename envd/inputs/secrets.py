"""Secret values: reading them from their sources.

Values live only in memory and inside containers. A ``command`` source is a
host command from the spec: it runs only for commands that act (``up``,
``run``, the daemon) and only once this user approved it; read-only commands
leave its value out. What envd stores anywhere
else is a keyed digest (``envd.values.keys.Keys``, its key resolved by
``envd.inputs.keys``).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

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


class CommandValues:
    """The values ``command`` sources printed at the last reload, kept in memory.

    A daemon reads them once per reload (an ``envd up``, or a change of what
    the spec loads: the spec, ``.env``, ``env_file``s) and reuses them for
    every later pass: a source printing a new credential on each run must not
    recreate its consumers on each pass. The values are never written anywhere.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: object = None
        self._values: dict[str, bytes] = {}

    def reload(self) -> None:
        """Forget the values: the next pass runs the commands again."""
        with self._lock:
            self._key, self._values = None, {}

    def for_load(self, key: object) -> dict[str, bytes]:
        """The kept values while ``key`` (what the spec loaded) is unchanged; else none."""
        with self._lock:
            if key is None or key != self._key:
                self._key, self._values = key, {}
            return self._values


def read_secrets(
    names: set[str],
    definitions: Mapping[str, SecretDef],
    base: Path,
    environ: Mapping[str, str],
    run_commands: bool = False,
    kept: dict[str, bytes] | None = None,
) -> dict[str, bytes]:
    """The values of ``names``. A ``command`` source runs only with ``run_commands``
    (the caller checked this user's consent, ``envd.inputs.consent``); otherwise
    it is left out of the answer. ``kept`` (``CommandValues.for_load``): command
    values read before are reused, and those read now are added."""
    problems: list[SpecProblem] = []
    values: dict[str, bytes] = {}
    for name in sorted(names):
        command = definitions[name].command
        if command is not None and not run_commands:
            continue
        if command is not None and kept is not None and name in kept:
            values[name] = kept[name]
            continue
        try:
            values[name] = read_secret(name, definitions[name], base, environ)
            if command is not None and kept is not None:
                kept[name] = values[name]
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    return values
