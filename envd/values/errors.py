"""The one error tree of envd.

Every failure a user can see is one of these. The CLI is the only place that
turns them into text and exit codes:

* ``SpecError`` / ``UsageError`` — terminal: the input is wrong; nothing was
  changed. Exit code 2. The daemon keeps the last good state running until the
  spec changes.
* ``EngineError`` — the engine failed an operation; transient for the daemon,
  which backs off and retries. Exit code 1 for ``up``, unless it is one of:

  * ``EngineUnavailable`` — the Docker engine cannot be reached at all. The
    CLI exits 3. Code that tolerates a refused operation (a busy network, a
    failed pull) re-raises this one: nothing else would work either.
  * ``NotFound`` (HTTP 404) and ``Conflict`` (HTTP 409, or a name or object
    in use) — the engine refused because of the object's state.
* ``EnvironmentFailed`` — the environment did not converge: a service exited,
  became unhealthy or timed out. Exit code 1.

Messages are one sentence naming the file, field or service; they never carry
secret values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envd.values.error_base import EnvdError, UsageError
from envd.values.record import value

__all__ = ["EnvdError", "UsageError"]  # and the rest below; these two live in error_base


@value
class SpecProblem:
    """One thing wrong with a spec, located in its file."""

    message: str
    file: str = ""
    line: int = 0
    column: int = 0
    path: str = ""

    def render(self) -> str:
        where = self.file or "envd.toml"
        if self.line:
            where += f":{self.line}:{self.column or 1}"
        prefix = f"{self.path}: " if self.path else ""
        return f"{where}: {prefix}{self.message}"


class SpecError(EnvdError):
    """The spec (or a file it names) is invalid. Nothing was touched."""

    exit_code = 2

    def __init__(self, problems: list[SpecProblem] | SpecProblem | str) -> None:
        if isinstance(problems, str):
            problems = [SpecProblem(problems)]
        elif isinstance(problems, SpecProblem):
            problems = [problems]
        self.problems: list[SpecProblem] = problems
        super().__init__("\n".join(p.render() for p in problems))


class LockMismatch(EnvdError):
    """``--frozen`` and the spec or images drifted from ``envd.lock``."""

    exit_code = 2


class EngineError(EnvdError):
    """The engine refused an operation."""

    exit_code = 1
    transient = True

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class EngineUnavailable(EngineError):
    """The Docker engine cannot be reached (no answer, so no HTTP status)."""

    exit_code = 3


class NotFound(EngineError):
    """The object asked for does not exist (HTTP 404)."""


class Conflict(EngineError):
    """The object exists already or is in use (HTTP 409)."""


@dataclass
class ServiceFailure:
    service: str
    reason: str
    container: str = ""
    log_tail: list[str] = field(default_factory=list)


class EnvironmentFailed(EnvdError):
    """Services did not reach their desired state."""

    exit_code = 1

    def __init__(self, failures: list[ServiceFailure]) -> None:
        self.failures = failures
        text = "; ".join(f"service {f.service!r} {f.reason}" for f in failures)
        super().__init__(text or "the environment did not converge")
