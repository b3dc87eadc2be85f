"""Lifecycle hooks: ``post_start`` after a container starts, ``pre_stop`` before envd stops it.

As in Compose, each hook is an exec in the container (its own user,
privilege, working directory and extra variables) and the hooks of a list run
in order. A ``post_start`` hook that exits non-zero fails its service (the
container keeps running, as with Compose; the next change of its config
recreates it and runs the hooks again). A ``pre_stop`` hook that fails is
reported and the stop goes on: a hook must never keep envd from stopping a
container. Each hook is an event with its exit status and duration.
"""

from __future__ import annotations

from collections.abc import Sequence

from envd.core.desired import DesiredService
from envd.engine.base import Engine
from envd.values.errors import EngineError, EngineUnavailable, NotFound
from envd.values.events import Clock, Emit, Event, SystemClock, discard
from envd.values.types import ExecHook

# What an event quotes of a hook's output: its last line, this long at most.
OUTPUT_QUOTE = 200


def quote_output(output: bytes, secrets: Sequence[bytes] = ()) -> str:
    """The last line of a command's output for an event, with secret values masked.

    A hook or sync+exec may print what it reads from /run/secrets; events and
    logs never carry a secret value (contract §5).
    """
    for value in sorted((s for s in secrets if s), key=len, reverse=True):
        output = output.replace(value, b"***")
    lines = output.decode(errors="replace").strip().splitlines()
    return f": {lines[-1][:OUTPUT_QUOTE]}" if lines else ""


def secret_values(svc: DesiredService) -> tuple[bytes, ...]:
    """The values of a service's secrets, to mask in what its hooks print."""
    return tuple(f.value for f in svc.template.secrets if f.value)


def describe(hook: ExecHook) -> str:
    text = " ".join(hook.command)
    return text if len(text) <= 60 else text[:57] + "..."


def run_hook(
    engine: Engine,
    container_id: str,
    hook: ExecHook,
    stage: str,
    resource: str,
    service: str,
    emit: Emit = discard,
    clock: Clock | None = None,
    secrets: Sequence[bytes] = (),
) -> str:
    """Run one hook; return "" or why it failed (also said as an event)."""
    clock = clock or SystemClock()
    started = clock.monotonic()
    what = f"{stage} hook `{describe(hook)}`"
    emit(Event(stage, resource, f"running {what}", "working", service))
    try:
        code, output = engine.exec_run(container_id, list(hook.command), hook.options)
    except EngineUnavailable:
        raise
    except EngineError as exc:
        why = f"{what} could not run: {exc}"
        emit(Event(stage, resource, why, "error", service))
        return why
    ms = (clock.monotonic() - started) * 1000
    if code != 0:
        last = quote_output(output, secrets)
        why = f"{what} exited with status {code} after {ms:.0f} ms{last}"
        emit(Event(stage, resource, why, "error", service))
        return why
    emit(Event(stage, resource, f"{what} done in {ms:.0f} ms", "done", service))
    return ""


def post_start(
    engine: Engine,
    container_id: str,
    hooks: Sequence[ExecHook],
    resource: str,
    service: str,
    emit: Emit = discard,
    clock: Clock | None = None,
    secrets: Sequence[bytes] = (),
) -> None:
    """Run the ``post_start`` hooks in order; raise ``EngineError`` at the first failure."""
    for hook in hooks:
        why = run_hook(
            engine, container_id, hook, "post_start", resource, service, emit, clock, secrets
        )
        if why:
            raise EngineError(f"service {service!r}: {why}")


def pre_stop(
    engine: Engine,
    container_id: str,
    hooks: Sequence[ExecHook],
    resource: str,
    service: str,
    emit: Emit = discard,
    clock: Clock | None = None,
    secrets: Sequence[bytes] = (),
) -> None:
    """Run the ``pre_stop`` hooks in order; failures are reported, never raised.

    A container that is not running (or gone) has nothing to run them in.
    """
    if not hooks:
        return
    try:
        if engine.container_state(container_id).status != "running":
            return
    except NotFound:
        return
    for hook in hooks:
        run_hook(engine, container_id, hook, "pre_stop", resource, service, emit, clock, secrets)
