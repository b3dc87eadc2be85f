"""A no-op ``envd up --once`` answered before click, pydantic or the engine stack load.

When nothing changed, ``up --once`` spends most of its time importing the
code that would find out that nothing changed. ``envd.__main__`` asks this
module first; it answers only when the answer is certain, and otherwise
returns None so the full path runs (and, being the one that decides, words
any problem).

Certainty comes from a *witness* the full path writes when it found, under
the project's converge lock, that a run changed nothing (``begin``/``finish``):
the desired-cache key and the desired cache's bytes it ran on, the files and
resolved paths the cache revalidates, the engine it talked to, a fingerprint
of what that engine answered (containers, networks, volumes and the images
the services use; only the uptime in a container's status text is left out,
its health and exit code kept), and what it printed. The engine was asked
the same questions before and after the full path's own observation, and
the witness is written only when both answers agree, so it describes the
state the full path judged. Only a run whose desired state the cache served
exactly as stored asks those questions: after a spec edit (the cache patched
or the spec loaded) a run almost always changes something, and the questions
would only delay it; when such a run changes nothing after all, the next
no-op takes the full path once and writes the witness. A lean run recomputes the key (stdlib only,
``envd.inputs.desired_key``), checks the cache's bytes, the files and paths,
that no daemon socket exists and the converge lock is free (it holds it
while it looks), asks the engine the same questions, and prints the
witness's output only when every answer is the same; the witness is sealed
with this user's key and read only as a regular file of ours, so a planted
or foreign one is a miss.

Only what it can do exactly takes this path: a unix-socket Docker engine
(not TLS, ssh or Podman, whose health needs more calls), a spec without
secrets or builds, and the flags ``--once``, ``--json``, ``--strict``,
``--timeout N`` after ``up`` and ``-C``, ``-f``, ``--env``, ``--profile``,
``--debug`` before it. ``ENVD_LEAN=off`` makes envd take the full path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from envd.cli import _lean_read
from envd.cli._lean_read import (
    Args,
    engine_socket,
    engine_state,
    parse,
    settled,
    try_up,
    witness_file,
)
from envd.cli._lean_wire import WireError
from envd.inputs import desired_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from envd.core.desired import DesiredProject
    from envd.run.readiness import ServiceProgress
    from envd.values.events import Event

__all__ = [
    "Args", "begin", "begin_run", "finish", "finish_run", "note", "noting", "parse", "try_up",
    "witness_path",
]  # fmt: skip

# The read side lives in envd.cli._lean_read (it runs before anything else is
# loaded); what the writer below must compute exactly as it does comes from there.
_FORMAT = _lean_read.FORMAT
_inputs = _lean_read.inputs
_keys = _lean_read.keys_if_any
_state_dir_safe = _lean_read.state_dir_safe


def witness_path(base: Path | str, environment: str | None) -> Path:
    return Path(witness_file(str(base), environment))


# --------------------------------------------------------------------------- recording


@dataclass
class Witnessing:
    """What ``begin`` saw before the full path observed the engine."""

    host: str
    sock: str
    refs: tuple[str, ...]
    before: str
    events: list[tuple[str, str, str, str, str]]


def begin(project: str, refs: Sequence[str], environ: Mapping[str, str]) -> Witnessing | None:
    """Under the converge lock, before the full path observes: the engine's answers."""
    # Also with ENVD_LEAN=off (which only stops the lean answer), so both
    # paths can be compared on the same witness.
    engine = engine_socket(environ)
    if engine is None:
        return None
    try:
        before, _ = engine_state(engine[1], project, sorted(set(refs)))
    except (WireError, OSError, ValueError):
        return None
    return Witnessing(engine[0], engine[1], tuple(sorted(set(refs))), before, [])


def note(
    witnessing: Witnessing | None, kind: str, resource: str, message: str, phase: str, service: str
) -> None:
    if witnessing is not None:
        witnessing.events.append((kind, resource, message, phase, service))


def finish(
    witnessing: Witnessing,
    *,
    project_dir: str | None,
    file: str | None,
    environment: str | None,
    profiles: frozenset[str],
    project: str,
    state_dir: str,
    services: Mapping[str, str],
    warnings: Sequence[str],
    environ: Mapping[str, str],
) -> None:
    """After a full ``up --once`` that changed nothing: write the witness, when the
    engine answers as it did before the run and the desired cache is what it ran on."""
    if any(phase not in ("done", "info") for _, _, _, phase, _ in witnessing.events):
        return
    if any(kind not in ("ready", "completed", "skipped") for kind, *_ in witnessing.events):
        return
    try:
        after, containers = engine_state(witnessing.sock, project, witnessing.refs)
    except (WireError, OSError, ValueError):
        return
    if after != witnessing.before or not settled(containers):
        return
    keys = _keys(environ)
    if keys is None:
        return
    args = Args(project_dir, file, environment, profiles, False, False)
    found = _inputs(args, environ, keys)
    if found is None:
        return
    base, key, cache = found
    if cache is None or not _state_dir_safe(base):
        return
    entry = json.loads(cache[desired_key.SEAL :])
    if not isinstance(entry, dict) or entry.get("key") != key:
        return
    if entry.get("secrets") or entry.get("builds"):
        return  # values read again on every hit, contexts digested: the full path's work
    witness = {
        "format": _FORMAT,
        "key": key,
        "cache": hashlib.sha256(cache).hexdigest(),
        "project": project,
        "project_dir": state_dir,
        "host": witnessing.host,
        "refs": list(witnessing.refs),
        "files": [list(f) for f in entry.get("files") or []],
        "paths": [list(p) for p in entry.get("paths") or []],
        "engine": after,
        "warnings": list(warnings),
        "events": [list(e) for e in witnessing.events],
        "services": dict(services),
    }
    from envd.inputs.safefile import own_dir, write_replacing

    data = json.dumps(witness, separators=(",", ":")).encode()
    path = witness_path(base, environment)
    own_dir(path.parent)
    write_replacing(path, keys.seal(data) + data, 0o600)


# --------------------------------------------------------------------------- the full path's glue
# Any failure here only makes the next identical run take the full path again.


def begin_run(desired: DesiredProject) -> Witnessing | None:
    """``begin`` for the full ``up --once``'s desired state (its project, its images)."""
    import os

    from envd.run.converge import image_refs

    try:
        return begin(desired.project, image_refs(desired), os.environ)
    except Exception:
        return None


def noting(progress: Callable[[Event], None], witness: Witnessing) -> Callable[[Event], None]:
    """``progress`` that also notes each event in ``witness``."""

    def emit(ev: Event) -> None:
        note(witness, ev.kind, ev.resource, ev.message, ev.phase, ev.service)
        progress(ev)

    return emit


def finish_run(
    witness: Witnessing,
    project_dir: str | None,
    file: str | None,
    environment: str | None,
    profiles: frozenset[str],
    desired: DesiredProject,
    result: Mapping[str, ServiceProgress],
    warned: list[str],
) -> None:
    """``finish`` after a full ``up --once`` whose plan changed nothing."""
    import os

    try:
        finish(
            witness,
            project_dir=project_dir,
            file=file,
            environment=environment,
            profiles=profiles,
            project=desired.project,
            state_dir=str(desired.project_dir),
            services={n: p.settled or p.state for n, p in result.items()},
            warnings=warned,
            environ=os.environ,
        )
    except Exception:
        return
