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
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from envd.cli._lean_args import split_globals
from envd.cli._lean_wire import WireError, get
from envd.inputs import desired_key
from envd.inputs.target import Target
from envd.values import labels
from envd.values.keys import Keys

_FORMAT = 1
_PARENS = re.compile(r"\(([^()]*)\)")


@dataclass(frozen=True)
class Args:
    """``envd [globals] up --once [flags]`` as the lean entry understands it."""

    project_dir: str | None
    file: str | None
    environment: str | None
    profiles: frozenset[str]
    as_json: bool
    strict: bool


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Args | None:
    """The flags of a lean-able ``up``; None for anything else (the full path parses it)."""
    found = split_globals(argv, "up")
    if found is None:
        return None
    project_dir, file, environment, profiles, rest = found
    once = as_json = strict = False
    while rest:
        flag = rest.pop(0)
        if flag == "--once":
            once = True
        elif flag == "--json":
            as_json = True
        elif flag == "--strict":
            strict = True
        elif flag == "--timeout" and rest:
            try:
                seconds = float(rest.pop(0))
            except ValueError:
                return None
            # A deadline shorter than a second could run out while the full path
            # looks (it would then fail): only a clearly ample one is answered here.
            if not (math.isfinite(seconds) and seconds >= 1):
                return None
        else:
            return None
    # Settings click reads from the environment: the full path reads those.
    if not once or environ.get("ENVD_PROFILES") or environ.get("ENVD_LOCK_TIMEOUT"):
        return None
    if environment is None:
        environment = environ.get("ENVD_ENV") or None
    return Args(project_dir, file, environment, frozenset(profiles), as_json, strict)


# --------------------------------------------------------------------------- the engine


def engine_socket(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(host, socket path) of the engine the adapter would use, when it is a plain unix socket."""
    from envd.spec import engine_host

    try:
        target = engine_host.resolve(environ)
    except Exception:  # a bad DOCKER_HOST or context: the full path says so
        return None
    if target.tls or not target.unix_path:
        return None
    return target.host, target.unix_path


def _ask(sock: str, url: str) -> Any:
    answer = get(sock, url)
    # Podman serves the Docker API too, but its list shows no health: the
    # full path asks more, so only Docker's answers are fingerprinted here.
    if not answer.headers.get("server", "").startswith("Docker/"):
        raise WireError("not a Docker engine")
    if "libpod-api-version" in answer.headers:
        raise WireError("a Podman engine")
    if answer.status == 404 and url.startswith("/images/"):
        return None
    if answer.status != 200:
        raise WireError(f"HTTP {answer.status}")
    try:
        return json.loads(answer.body)
    except ValueError:
        raise WireError("not JSON") from None


def engine_state(sock: str, project: str, refs: Sequence[str]) -> tuple[str, list[Any]]:
    """(a fingerprint of what the engine has for ``project``, its container list)."""
    flt = quote(json.dumps({"label": [f"{labels.PROJECT}={project}"]}, separators=(",", ":")))
    containers = _ask(sock, f"/containers/json?all=1&filters={flt}")
    networks = _ask(sock, f"/networks?filters={flt}")
    volumes = _ask(sock, f"/volumes?filters={flt}")
    images = {ref: _ask(sock, f"/images/{quote(ref, safe='/:@')}/json") for ref in refs}
    if not isinstance(containers, list) or not isinstance(networks, list):
        raise WireError("unexpected answer")
    seen: list[Any] = []
    for c in containers:
        if not isinstance(c, dict):
            raise WireError("unexpected answer")
        item = dict(c)
        # "Up 5 minutes (healthy)": the uptime changes, the word and what the
        # parentheses say (health, exit code, paused) are kept.
        text = str(item.pop("Status", "") or "")
        item["Status"] = [text.split(" ", 1)[0], _PARENS.findall(text)]
        seen.append(item)
    seen.sort(key=lambda c: str(c.get("Id")))
    nets = sorted(networks, key=lambda n: str(n.get("Id")) if isinstance(n, dict) else "")
    doc = {"containers": seen, "networks": nets, "volumes": volumes, "images": images}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest(), seen


def settled(containers: Sequence[Any]) -> bool:
    """Every container is running (healthy, where it has a healthcheck) or exited 0,
    and none is a one-off: a state the full path could find nothing to do in."""
    for c in containers:
        word, parens = c["Status"]
        if (c.get("Labels") or {}).get(labels.ONE_OFF) == "1":
            return False
        if c.get("State") == "running" and word == "Up":
            health = c.get("Health")
            status = health.get("Status") if isinstance(health, dict) else None
            if status in ("starting", "unhealthy") or any(
                p in ("unhealthy", "health: starting", "Paused") for p in parens
            ):
                return False
        elif not (c.get("State") == "exited" and word == "Exited" and parens[:1] == ["0"]):
            return False
    return True


# --------------------------------------------------------------------------- the witness


def witness_path(base: Path, environment: str | None) -> Path:
    name = "lean-up.witness"
    if environment:
        name = f"lean-up-{hashlib.sha256(environment.encode()).hexdigest()[:16]}.witness"
    return base / ".envd" / name


def _keys(environ: Mapping[str, str]) -> Keys | None:
    """This user's key, only when it already exists (creating it is the full path's)."""
    from envd.inputs import keys as key_store

    if not environ.get("ENVD_HASH_KEY") and not key_store.key_file(environ).is_file():
        return None
    return key_store.load_keys(environ)


def _state_dir_safe(base: Path) -> bool:
    """``.envd`` is a real directory of ours, not a link."""
    try:
        st = os.lstat(base / ".envd")
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


def _inputs(
    args: Args, environ: Mapping[str, str], keys: Keys
) -> tuple[Path, str, bytes | None] | None:
    """(project dir, the desired-cache key, the cache's bytes) for these arguments."""
    from envd.inputs.approvals import state_token
    from envd.inputs.safefile import read_regular
    from envd.spec.paths import resolve_paths

    spec_file, base = resolve_paths(args.project_dir, args.file)
    approval = state_token(spec_file, base, args.environment, environ)
    target = Target(args.project_dir, args.file, args.environment, args.profiles)
    key = desired_key.compute(keys, target, environ, False, spec_file, base, approval)[0]
    try:
        cache = read_regular(
            base / ".envd" / desired_key.CACHE_FILE,
            desired_key.MAX_BYTES,
            follow=False,
            own=True,
        )
    except OSError:
        cache = None
    return base, key, cache


def _digest(path: str, keys: Keys) -> str | None:
    try:
        return keys.cache_digest(Path(path).read_bytes())
    except OSError:
        return None


def _real(path: str) -> str | None:
    return os.path.realpath(path) if os.path.exists(path) else None


def try_up(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Print a no-op ``up --once``'s output and return 0, or None: take the full path."""
    args = parse(argv, environ)
    if args is None:
        return None
    try:
        return _try(args, environ)
    except Exception:  # any doubt: the full path decides, and words what is wrong
        return None


def _try(args: Args, environ: Mapping[str, str]) -> int | None:
    keys = _keys(environ)
    if keys is None:
        return None
    found = _inputs(args, environ, keys)
    if found is None:
        return None
    base, key, cache = found
    if cache is None or not _state_dir_safe(base):
        return None
    body = desired_key.read_sealed(witness_path(base, args.environment), keys)
    if body is None:
        return None
    w = json.loads(body)
    if not isinstance(w, dict) or w.get("format") != _FORMAT or w.get("key") != key:
        return None
    if w.get("cache") != hashlib.sha256(cache).hexdigest():
        return None
    if args.strict and w["warnings"]:
        return None  # --strict turns them into an error: the full path's to say
    for path, want in w["files"]:
        if _digest(path, keys) != want:
            return None
    for path, real in w["paths"]:
        if real is None or _real(path) != real:
            return None  # a missing bind source is created by `up`: not a no-op
    engine = engine_socket(environ)
    if engine is None or engine[0] != w["host"]:
        return None
    from envd.daemon.paths import StatePaths

    if StatePaths.for_project(Path(w["project_dir"]), args.environment).socket.exists():
        return None  # a daemon may keep it: `up --once` refuses that, in the full path
    with _lock(w["project"]) as free:
        if not free:
            return None  # another envd converges it: the full path waits its turn
        fingerprint, containers = engine_state(engine[1], w["project"], w["refs"])
        if fingerprint != w["engine"] or not settled(containers):
            return None
    _print(w, args.as_json)
    return 0


class _lock:
    """The project's converge lock taken without waiting, as the full path holds it
    (same file, same holder line); ``free`` False when another envd holds it."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.fd = -1

    def __enter__(self) -> bool:
        import errno
        import fcntl

        from envd.run.project_lock import _write_holder, open_lock_file

        self.fd = open_lock_file(self.project)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            os.close(self.fd)
            self.fd = -1
            return False
        _write_holder(self.fd, "envd up --once")
        return True

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            import fcntl

            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


def _print(w: Mapping[str, Any], as_json: bool) -> None:
    """What the full path printed for this no-op (events with this run's times)."""
    from envd.cli.progress import make_progress
    from envd.values.events import Event

    for line in w["warnings"]:
        sys.stderr.write(f"{line}\n")
    sys.stderr.flush()
    progress = make_progress(as_json)
    for kind, resource, message, phase, service in w["events"]:
        progress(Event(kind, resource, message, phase, service))
    progress.close()
    if as_json:
        out = {"result": "ok", "project": w["project"], "services": w["services"]}
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        sys.stderr.write(f"Project {w['project']} is up: {len(w['services'])} service(s) ready.\n")


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
