"""The lean ``up --once``'s read side: answer a no-op from its witness, or give way.

``envd.cli._lean_up`` says what a witness is and how the full path writes
it; this module reads one and decides (``try_up``), and holds what both
sides must compute alike (the arguments, the inputs' key, the engine's
fingerprint). It runs before anything else of envd is loaded, so every
import counts: no ``dataclasses``, ``typing``, ``json``, ``re``,
``urllib``, ``socket`` or ``pathlib`` here (tests/unit/test_lean_entry.py
and tests/unit/test_start_up_imports.py keep them out), paths are strings.
"""

from __future__ import annotations

import os
import sys

from envd.cli._lean_args import daemon_socket, resolve_paths, split_globals
from envd.cli._lean_wire import Answer, Asked, WireError, get_all
from envd.values import jsontext, labels
from envd.values.sha import sha256

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from envd.values.keys import Keys

FORMAT = 1


class Args:
    """``envd [globals] up --once [flags]`` as the lean entry understands it."""

    __slots__ = ("as_json", "environment", "file", "profiles", "project_dir", "strict")

    def __init__(
        self,
        project_dir: str | None,
        file: str | None,
        environment: str | None,
        profiles: frozenset[str],
        as_json: bool,
        strict: bool,
    ) -> None:
        self.project_dir = project_dir
        self.file = file
        self.environment = environment
        self.profiles = profiles
        self.as_json = as_json
        self.strict = strict

    @property
    def swarm(self) -> bool:
        """The lean entry never deploys to a Swarm (what the desired-cache key asks)."""
        return False

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Args)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Args({inner})"


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
            # looks (it would then fail): only a clearly ample one is answered here
            # (finite: NaN fails both comparisons, as math.isfinite would).
            if not (1 <= seconds < float("inf")):
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

_DEFAULT_HOST = "unix:///var/run/docker.sock"


def engine_socket(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(host, socket path) of the engine the adapter would use, when it is a plain unix socket."""
    host = _plain_unix_host(environ)
    if host is not None:
        return host, host[len("unix://") :]
    from envd.spec import engine_host

    try:
        target = engine_host.resolve(environ)
    except Exception:  # a bad DOCKER_HOST or context: the full path says so
        return None
    if target.tls or not target.unix_path:
        return None
    return target.host, target.unix_path


def _plain_unix_host(environ: Mapping[str, str]) -> str | None:
    """The host ``engine_host.resolve`` gives in its two common cases, without loading it
    (urllib, the Docker CLI's config reader): ``DOCKER_HOST=unix:///path`` with no TLS,
    or nothing set and no current context. None for anything else (then it is asked)."""
    if environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0"):
        return None
    if environ.get("DOCKER_TLS", "") not in ("", "0"):
        return None
    host = environ.get("DOCKER_HOST", "")
    if host:
        path = host[len("unix://") :]
        # What urlsplit leaves as written: an absolute path of plain printable characters.
        plain = path.startswith("/") and path.isprintable() and path.isascii()
        if host.startswith("unix://") and plain and not any(c in path for c in " ?#\\"):
            return host
        return None
    if environ.get("DOCKER_CONTEXT", ""):
        return None
    config_dir = environ.get("DOCKER_CONFIG", "") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".docker"
    )
    try:
        with open(os.path.join(config_dir, "config.json"), "rb") as fh:
            data = fh.read(1 << 20)
    except FileNotFoundError:
        return _DEFAULT_HOST
    except OSError:
        return None
    try:
        config = jsontext.loads(data)
    except ValueError:
        return None
    if not isinstance(config, dict) or len(data) >= 1 << 20:
        return None
    current = config.get("currentContext")
    return _DEFAULT_HOST if not (isinstance(current, str) and current) else None


def _decode(url: str, answer: Answer) -> Any:
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
        return jsontext.loads(answer.body)
    except ValueError:
        raise WireError("not JSON") from None


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "/") -> str:
    """``urllib.parse.quote(text, safe)``: UTF-8, every other byte as ``%XX``."""
    keep = _UNRESERVED | frozenset(safe.encode("ascii"))
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8"))


def parens(text: str) -> list[str]:
    """What each innermost pair of parentheses in ``text`` holds, left to right
    (``re.findall(r"\\(([^()]*)\\)", text)``)."""
    found: list[str] = []
    start = text.find("(")
    while start >= 0:
        end = start + 1
        while end < len(text) and text[end] not in "()":
            end += 1
        if end >= len(text):
            break
        if text[end] == ")":
            found.append(text[start + 1 : end])
            start = text.find("(", end + 1)
        else:
            start = end
    return found


def engine_state(sock: str, project: str, refs: Sequence[str]) -> tuple[str, list[Any]]:
    """(a fingerprint of what the engine has for ``project``, its container list)."""
    urls = engine_questions(project, refs)
    return fingerprint(urls, get_all(sock, urls), refs)


def engine_questions(project: str, refs: Sequence[str]) -> list[str]:
    """What ``engine_state`` asks: the project's containers, networks and volumes, and
    each image's inspect."""
    flt = quote(jsontext.dumps({"label": [f"{labels.PROJECT}={project}"]}, canonical=True))
    lists = [f"/containers/json?all=1&filters={flt}", f"/networks?filters={flt}"]
    lists.append(f"/volumes?filters={flt}")
    return lists + [f"/images/{quote(ref, safe='/:@')}/json" for ref in refs]


def fingerprint(
    urls: list[str], answers: list[Answer], refs: Sequence[str]
) -> tuple[str, list[Any]]:
    """``engine_state`` of the engine's answers to ``engine_questions``."""
    decoded = [_decode(url, answer) for url, answer in zip(urls, answers, strict=True)]
    containers, networks, volumes, *found = decoded
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
        item["Status"] = [text.split(" ", 1)[0], parens(text)]
        seen.append(item)
    seen.sort(key=lambda c: str(c.get("Id")))
    nets = sorted(networks, key=lambda n: str(n.get("Id")) if isinstance(n, dict) else "")
    by_ref = dict(zip(refs, found, strict=True))
    doc = {"containers": seen, "networks": nets, "volumes": volumes, "images": by_ref}
    text = jsontext.dumps(doc, canonical=True)
    return sha256(text.encode()).hexdigest(), seen


def settled(containers: Sequence[Any]) -> bool:
    """Every container is running (healthy, where it has a healthcheck) or exited 0,
    and none is a one-off: a state the full path could find nothing to do in."""
    for c in containers:
        word, found = c["Status"]
        if (c.get("Labels") or {}).get(labels.ONE_OFF) == "1":
            return False
        if c.get("State") == "running" and word == "Up":
            health = c.get("Health")
            status = health.get("Status") if isinstance(health, dict) else None
            if status in ("starting", "unhealthy") or any(
                p in ("unhealthy", "health: starting", "Paused") for p in found
            ):
                return False
        elif not (c.get("State") == "exited" and word == "Exited" and found[:1] == ["0"]):
            return False
    return True


# --------------------------------------------------------------------------- the inputs


def witness_file(base: str, environment: str | None) -> str:
    """Where the witness of a no-op in project dir ``base`` (and ``environment``) lives."""
    name = "lean-up.witness"
    if environment:
        name = f"lean-up-{sha256(environment.encode()).hexdigest()[:16]}.witness"
    return os.path.join(base, ".envd", name)


def keys_if_any(environ: Mapping[str, str]) -> Keys | None:
    """This user's key, only when it already exists (creating it is the full path's)."""
    from envd.inputs import keys as key_store

    if not environ.get("ENVD_HASH_KEY") and not os.path.isfile(key_store.key_path(environ)):
        return None
    return key_store.load_keys(environ)


def state_dir_safe(base: str) -> bool:
    """``.envd`` is a real directory of ours, not a link."""
    try:
        st = os.lstat(os.path.join(base, ".envd"))
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


def inputs(
    args: Args, environ: Mapping[str, str], keys: Keys
) -> tuple[str, str, bytes | None] | None:
    """(project dir, the desired-cache key, the cache's bytes) for these arguments;
    None when the paths are not plain enough to spell as ``resolve_paths`` does."""
    from envd.inputs import desired_key
    from envd.inputs.approvals import state_token
    from envd.inputs.safefile import read_regular

    found = resolve_paths(args.project_dir, args.file)
    if found is None:
        return None
    spec_file, base = found
    approval = state_token(spec_file, base, args.environment, environ)
    key = desired_key.compute(keys, args, environ, False, spec_file, base, approval)[0]
    try:
        cache = read_regular(
            os.path.join(base, ".envd", desired_key.CACHE_FILE),
            desired_key.MAX_BYTES,
            follow=False,
            own=True,
        )
    except OSError:
        cache = None
    return base, key, cache


def _digest(path: str, keys: Keys) -> str | None:
    try:
        with open(path, "rb") as fh:
            return keys.cache_digest(fh.read())
    except OSError:
        return None


def _real(path: str) -> str | None:
    return os.path.realpath(path) if os.path.exists(path) else None


# --------------------------------------------------------------------------- the answer


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
    from envd.inputs import desired_key

    keys = keys_if_any(environ)
    paths = resolve_paths(args.project_dir, args.file)
    if keys is None or paths is None or not state_dir_safe(paths[1]):
        return None
    body = desired_key.read_sealed(witness_file(paths[1], args.environment), keys)
    if body is None:
        return None
    w = jsontext.loads(body)
    if not isinstance(w, dict) or w.get("format") != FORMAT:
        return None
    engine = engine_socket(environ)
    if engine is None or engine[0] != w["host"]:
        return None
    if os.path.exists(daemon_socket(w["project_dir"], args.environment)):
        return None  # a daemon may keep it: `up --once` refuses that, in the full path
    with _lock(w["project"]) as free:
        if not free:
            return None  # another envd converges it: the full path waits its turn
        # The key first: after an edit (the one-change path) it misses, and the
        # engine is then spared four questions it would answer for nothing
        # while the full path starts. The files and paths are checked while the
        # engine works on its answers (nothing is printed before both agree).
        if not _key_unchanged(args, environ, keys, w):
            return None
        urls = engine_questions(w["project"], w["refs"])
        with Asked(engine[1], urls) as asked:
            if not _files_unchanged(keys, w):
                return None
            found, containers = fingerprint(urls, asked.answers(), w["refs"])
        if found != w["engine"] or not settled(containers):
            return None
    _print(w, args.as_json)
    return 0


def _key_unchanged(
    args: Args, environ: Mapping[str, str], keys: Keys, w: Mapping[str, Any]
) -> bool:
    """The witness's key and cache are what these arguments see now."""
    found = inputs(args, environ, keys)
    if found is None:
        return False
    _, key, cache = found
    if cache is None or w.get("key") != key or w.get("cache") != sha256(cache).hexdigest():
        return False
    return not (args.strict and w["warnings"])  # --strict: an error, the full path's to say


def _files_unchanged(keys: Keys, w: Mapping[str, Any]) -> bool:
    """The files and paths the witness's cache revalidates are as it saw them."""
    for path, want in w["files"]:
        if _digest(path, keys) != want:
            return False
    # A missing bind source is created by `up`: not a no-op.
    return all(real is not None and _real(path) == real for path, real in w["paths"])


class _lock:
    """The project's converge lock taken without waiting, as the full path holds it
    (same file, same holder line); ``free`` False when another envd holds it."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.fd = -1

    def __enter__(self) -> bool:
        import errno
        import fcntl

        from envd.run.lock_file import open_lock_file, write_holder

        self.fd = open_lock_file(self.project)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            os.close(self.fd)
            self.fd = -1
            return False
        write_holder(self.fd, "envd up --once")
        return True

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            import fcntl

            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


def _print(w: Mapping[str, Any], as_json: bool) -> None:
    """What the full path printed for this no-op (events with this run's times), as
    ``envd.cli.progress`` prints them (a unit test compares the two)."""
    from envd.cli.progress import describe, plain_line

    for line in w["warnings"]:
        sys.stderr.write(f"{line}\n")
    sys.stderr.flush()
    if as_json:
        import time

        lines = []
        for kind, resource, message, phase, service in w["events"]:
            # Event.to_json: its fields in order, the empty strings left out.
            fields = (
                ("kind", kind),
                ("resource", resource),
                ("message", message),
                ("phase", phase),
                ("service", service),
                ("time", time.time()),
            )
            event = {k: v for k, v in fields if v != ""}
            lines.append(jsontext.dumps({"event": event}) + "\n")
        out = {"result": "ok", "project": w["project"], "services": w["services"]}
        lines.append(jsontext.dumps(out) + "\n")
        sys.stdout.write("".join(lines))
        return
    text = "".join(
        plain_line(phase, resource, describe(kind, phase, message)) + "\n"
        for kind, resource, message, phase, _ in w["events"]
    )
    project, ready = w["project"], len(w["services"])
    sys.stderr.write(f"{text}Project {project} is up: {ready} service(s) ready.\n")
