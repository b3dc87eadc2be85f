"""The state of ``envd.engine.fake.FakeEngine``: its objects, test controls and shared rules.

``FakeEngine`` (the ``Engine`` methods) builds on ``FakeState``; a test only
ever makes a ``FakeEngine``.

Volumes behave like the engine's: a volume mount without a source, an
image's declared ``VOLUME`` (``add_image(volumes=...)``) and, for a read-only
container with secrets, the secrets directory each get an anonymous volume
with a 64-hex name; ``remove_container`` drops the secret ones always and the
other anonymous ones (also those handed over by ``anonymous_volumes``) only
with ``volumes=True``.

Deliberate simplifications: restart policies are not simulated (a container
told to exit stays exited), bind sources are not checked, and ``exec_run``
understands a handful of commands only (``cat``, ``stat -c``, ``true``,
``false``, ``echo``, ``sh -c 'exit N'``, and ``ping``/``nslookup`` answered
from network membership and aliases) unless a handler is set with
``set_exec_handler``.
"""

from __future__ import annotations

import hashlib
import itertools
import posixpath
import queue
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from envd.engine.secret_paths import secret_roots
from envd.values import labels
from envd.values.errors import EngineUnavailable, NotFound
from envd.values.limit_support import APPLIES_ALL, LimitSupport
from envd.values.types import (
    ContainerCreate,
    ExecOptions,
    Healthcheck,
    IpamPool,
    ObservedImage,
    ObservedMount,
    PortBinding,
)

ExecHandler = Callable[[str, list[str]], tuple[int, bytes]]

# Exit code of a process ended by SIGTERM (what ``stop`` leaves behind).
STOPPED_EXIT_CODE = 143
FIRST_EPHEMERAL_PORT = 32768


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def labels_key(mapping: Mapping[str, str]) -> str:
    return "\0".join(f"{k}={v}" for k, v in sorted(mapping.items()))


@dataclass
class FakeFile:
    data: bytes
    mode: int
    uid: int
    gid: int


@dataclass
class FakeImage:
    ref: str
    id: str
    labels: dict[str, str]
    repo_digests: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    volumes: tuple[str, ...] = ()  # the image's VOLUME declarations


@dataclass
class FakeContainer:
    id: str
    name: str
    spec: ContainerCreate
    image_id: str
    healthcheck: Healthcheck | None
    status: str = "created"
    exit_code: int | None = None
    health: str | None = None
    ports: tuple[PortBinding, ...] = ()
    files: dict[str, FakeFile] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    networks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name → aliases
    mounts: list[ObservedMount] = field(default_factory=list)  # as an inspect reports them
    # supervisor: a logical clock (one tick per start or exit), like the engine's StartedAt
    started_at: float | None = None
    finished_at: float | None = None
    # HostConfig.NetworkMode as the engine keeps it ("container:<id>" once resolved).
    network_mode: str = "default"


@dataclass
class FakeNetwork:
    id: str
    name: str
    labels: dict[str, str]
    driver: str
    internal: bool
    ipam: tuple[IpamPool, ...] = ()
    enable_ipv6: bool = False
    ipam_driver: str = "default"
    # Docker 20.10 can keep counting endpoints of removed containers
    # (moby#42119): such a network refuses removal with no container attached.
    leaked_endpoints: int = 0


@dataclass
class FakeVolume:
    name: str
    labels: dict[str, str]
    driver: str


class FakeState:
    """The fake engine's objects, its test controls and the rules its calls share."""

    def __init__(self, *, auto_healthy: bool = True, available: bool = True) -> None:
        self.auto_healthy = auto_healthy
        self.available = available
        self.calls: list[tuple[str, ...]] = []
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._ticks = itertools.count(1)  # the fake's StartedAt / FinishedAt
        self._ports = itertools.count(FIRST_EPHEMERAL_PORT)
        self._images: dict[str, FakeImage] = {}  # by ref and by id
        self._containers: dict[str, FakeContainer] = {}
        self._networks: dict[str, FakeNetwork] = {}  # by name
        self._volumes: dict[str, FakeVolume] = {}
        self._failures: dict[str, list[BaseException]] = {}
        self._exec_handler: ExecHandler | None = None
        # Every exec's (container id, command, options): hooks and sync+exec.
        self.exec_options: list[tuple[str, tuple[str, ...], ExecOptions]] = []
        self.events: list[dict[str, Any]] = []  # every container event, in order
        self._subscribers: list[tuple[str, queue.Queue[dict[str, Any] | None]]] = []
        # Engines that drop resource limits (rootless Podman on cgroups v1, Docker
        # without cgroups): what ignored_limits() answers, and how often it was asked.
        self.limit_support: LimitSupport = APPLIES_ALL
        self.limit_queries = 0

    # --- test controls -----------------------------------------------------
    def add_image(
        self,
        ref: str,
        id: str | None = None,
        labels: Mapping[str, str] | None = None,
        *,
        repo_digests: tuple[str, ...] = (),
        healthcheck: Healthcheck | None = None,
        volumes: tuple[str, ...] = (),
    ) -> ObservedImage:
        """Make an image present locally (as if pulled or built before).

        ``volumes``: the paths its Dockerfile declares with ``VOLUME``.
        """
        with self._lock:
            lbl = dict(labels or {})
            image_id = id or "sha256:" + digest("image", ref, labels_key(lbl))
            img = FakeImage(ref, image_id, lbl, repo_digests, healthcheck, tuple(volumes))
            self._images[ref] = img
            self._images[image_id] = img
            return self._observed_image(ref, img)

    def remove_image(self, ref: str) -> None:
        with self._lock:
            img = self._images.pop(ref, None)
            if img is not None:
                self._images.pop(img.id, None)

    def set_health(self, container_id: str, health: str) -> None:
        """Set the health a running container with a healthcheck reports."""
        with self._lock:
            c = self._get(container_id)
            if c.healthcheck is None:
                raise AssertionError(f"container {c.name} has no healthcheck")
            if c.health != health:
                c.health = health
                self._event(c, f"health_status: {health}")

    def exit_container(self, container_id: str, code: int = 0) -> None:
        """The container's main process exits with ``code``."""
        with self._lock:
            c = self._get(container_id)
            c.status, c.exit_code, c.health, c.ports = "exited", code, None, ()
            c.finished_at = float(next(self._ticks))
            self._event(c, "die", exitCode=str(code))
            if c.spec.auto_remove:
                del self._containers[c.id]
                self._event(c, "destroy")

    def emit_log(self, container_id: str, *lines: str) -> None:
        """Append lines to a container's log."""
        with self._lock:
            self._get(container_id).logs.extend(lines)

    def fail_next(self, method: str, exc: BaseException) -> None:
        """The next call of ``method`` raises ``exc`` and changes nothing."""
        if not callable(getattr(self, method, None)):
            raise AssertionError(f"{type(self).__name__} has no method {method!r}")
        with self._lock:
            self._failures.setdefault(method, []).append(exc)

    def end_event_streams(self) -> None:
        """End every open ``stream_events`` iteration (as a dropped connection would)."""
        with self._lock:
            for _, q in self._subscribers:
                q.put(None)
            self._subscribers.clear()

    def set_exec_handler(self, handler: ExecHandler | None) -> None:
        """Answer ``exec_run`` with ``handler(container_id, cmd)``."""
        self._exec_handler = handler

    def files(self, container_id: str) -> dict[str, tuple[bytes, int, int, int]]:
        """Files written into a container: path → (data, mode, uid, gid)."""
        with self._lock:
            return {
                p: (f.data, f.mode, f.uid, f.gid) for p, f in self._get(container_id).files.items()
            }

    def container_spec(self, container_id: str) -> ContainerCreate:
        """What a container was created from."""
        with self._lock:
            return self._get(container_id).spec

    def mutating_calls(self) -> list[tuple[str, ...]]:
        with self._lock:
            return list(self.calls)

    # --- internals -----------------------------------------------------------
    def _enter(self, method: str, *record: str) -> None:
        """Raise a programmed failure, else journal a mutating call."""
        queue = self._failures.get(method)
        if queue:
            raise queue.pop(0)
        if not self.available:
            raise EngineUnavailable("the Docker engine is not reachable at fake://: it is down")
        if record:
            self.calls.append((method, *record))

    def _event(self, c: FakeContainer, action: str, **attributes: str) -> None:
        """Record a container event shaped like the engine's, and publish it."""
        attrs = {**dict(c.spec.labels), "image": c.spec.image, "name": c.name, **attributes}
        event: dict[str, Any] = {
            "status": action,
            "id": c.id,
            "from": c.spec.image,
            "Type": "container",
            "Action": action,
            "Actor": {"ID": c.id, "Attributes": attrs},
            "scope": "local",
            "time": int(now := time.time()),
            "timeNano": int(now * 1e9),
        }
        self.events.append(event)
        project = c.spec.labels.get(labels.PROJECT)
        for p, q in self._subscribers:
            if p == project:
                q.put(event)

    def _new_id(self, kind: str) -> str:
        return digest(kind, str(next(self._ids)))

    def _get(self, ref: str) -> FakeContainer:
        """A container by id, name or unique id prefix, like the engine."""
        c = self._containers.get(ref)
        if c is not None:
            return c
        for c in self._containers.values():
            if c.name == ref:
                return c
        matches = [c for cid, c in self._containers.items() if ref and cid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"No such container: {ref}", 404)

    def _attached(self, network: str) -> list[str]:
        # The engine lists only running containers as a network's endpoints.
        return sorted(
            c.name
            for c in self._containers.values()
            if c.status == "running" and network in c.networks
        )

    def leak_endpoints(self, network: str, count: int = 1) -> None:
        """Test control: the engine counts ``count`` endpoints no container holds (moby#42119)."""
        with self._lock:
            self._network(network).leaked_endpoints += count

    def _network(self, ref: str) -> FakeNetwork:
        n = self._networks.get(ref)
        if n is not None:
            return n
        for n in self._networks.values():
            if n.id == ref or (ref and n.id.startswith(ref)):
                return n
        raise NotFound(f"network {ref} not found", 404)

    @staticmethod
    def _observed_image(ref: str, img: FakeImage) -> ObservedImage:
        return ObservedImage(
            ref=ref,
            id=img.id,
            labels=dict(img.labels),
            repo_digests=img.repo_digests,
            volumes=tuple(sorted(img.volumes)),
        )

    def _ports_in_use(self) -> set[tuple[str, int, str]]:
        return {
            (p.host_ip, p.host_port or 0, p.protocol)
            for c in self._containers.values()
            if c.status == "running"
            for p in c.ports
        }

    def _volume_users(self, name: str) -> list[str]:
        return [
            c.id
            for c in self._containers.values()
            if any(m.type == "volume" and m.source == name for m in c.mounts)
        ]

    def _make_mounts(self, spec: ContainerCreate, img: FakeImage) -> list[ObservedMount]:
        """The mounts the engine gives a new container, creating the volumes they need."""

        def anonymous(vol_labels: dict[str, str] | None = None) -> str:
            name = self._new_id("volume")
            self._volumes[name] = FakeVolume(name, dict(vol_labels or {}), "local")
            return name

        out: list[ObservedMount] = []
        for m in spec.mounts:
            if m.type == "bind":
                # Like the engine: a bind's propagation is reported, rprivate unless asked.
                out.append(
                    ObservedMount(
                        m.type,
                        m.target,
                        m.source,
                        m.read_only,
                        selinux=m.selinux,
                        propagation=m.propagation or "rprivate",
                    )
                )
            elif m.type != "volume":
                out.append(ObservedMount(m.type, m.target, m.source, m.read_only))
            elif m.source:
                # Like the engine: a named volume that does not exist is created.
                self._volumes.setdefault(m.source, FakeVolume(m.source, {}, "local"))
                out.append(
                    ObservedMount(
                        "volume",
                        m.target,
                        m.source,
                        m.read_only,
                        anonymous=m.source in spec.anonymous_volumes,
                        selinux=m.selinux,
                    )
                )
            else:
                out.append(
                    ObservedMount("volume", m.target, anonymous(), m.read_only, anonymous=True)
                )
        mounted = {posixpath.normpath(m.target) for m in spec.mounts}
        taken = mounted | {posixpath.normpath(path) for path, _ in spec.tmpfs}
        for path in img.volumes:
            if posixpath.normpath(path) not in taken:
                out.append(ObservedMount("volume", path, anonymous(), anonymous=True))
        if spec.secrets and spec.read_only:
            vol_labels = {labels.SECRETS_VOLUME: "1"}
            if labels.PROJECT in spec.labels:
                vol_labels[labels.PROJECT] = spec.labels[labels.PROJECT]
            for d in secret_roots(spec.secrets):
                if d not in mounted:
                    out.append(
                        ObservedMount(
                            "volume", d, anonymous(vol_labels), anonymous=True, secrets=True
                        )
                    )
        return out

    def _builtin_exec(
        self, c: FakeContainer, cmd: list[str], options: ExecOptions | None = None
    ) -> tuple[int, bytes]:
        """A few commands answered from the fake's state, enough for the contract suite."""
        opts = options or ExecOptions()
        if len(cmd) == 3 and cmd[0] == "sh" and cmd[1] == "-c":
            words = shlex.split(cmd[2])
            if len(words) == 2 and words[0] == "exit" and words[1].isdigit():
                return int(words[1]), b""
            return self._builtin_exec(c, words, opts)
        if not cmd:
            return 126, b"exec: no command\n"
        prog, args = cmd[0], cmd[1:]
        # What an exec's options change (hooks, sync+exec): its variables, cwd and user.
        if prog == "env" and not args:
            env = {**dict(c.spec.env), **dict(opts.env)}
            return 0, "".join(f"{k}={v}\n" for k, v in env.items()).encode()
        if prog == "pwd":
            return 0, f"{opts.working_dir or c.spec.working_dir or '/'}\n".encode()
        if prog == "id" and args == ["-u"]:
            user = (opts.user or c.spec.user or "0").split(":")[0]
            return 0, f"{user if user.isdigit() else 0 if user == 'root' else 65534}\n".encode()
        if prog == "true":
            return 0, b""
        if prog == "false":
            return 1, b""
        if prog == "echo":
            return 0, (" ".join(args) + "\n").encode()
        if prog == "rm":
            # `rm [-f] [-r] [--] PATH…`: the sync's deletes of files it copied.
            flags = {a for a in args if a.startswith("-")}
            recursive = bool(flags & {"-r", "-rf", "-fr", "-R"})
            for path in (a for a in args if not a.startswith("-")):
                path = posixpath.normpath(path)
                for name in list(c.files):
                    if name == path or (recursive and name.startswith(path + "/")):
                        del c.files[name]
            return 0, b""
        if prog == "cat" and args:
            out = b""
            for path in args:
                f = c.files.get(posixpath.normpath(path))
                if f is None:
                    return (
                        1,
                        out + f"cat: can't open '{path}': No such file or directory\n".encode(),
                    )
                out += f.data
            return 0, out
        if prog == "stat" and len(args) >= 3 and args[0] == "-c":
            fmt, out = args[1], b""
            for path in args[2:]:
                f = c.files.get(posixpath.normpath(path))
                if f is None:
                    return (
                        1,
                        out + f"stat: can't stat '{path}': No such file or directory\n".encode(),
                    )
                line = (
                    fmt.replace("%a", f"{f.mode & 0o7777:o}")
                    .replace("%u", str(f.uid))
                    .replace("%g", str(f.gid))
                    .replace("%s", str(len(f.data)))
                    .replace("%n", path)
                )
                out += (line + "\n").encode()
            return 0, out
        if prog in ("ping", "nslookup") and args:
            name = args[-1]
            if self._resolves(c, name):
                return 0, f"{name} is reachable (FakeEngine)\n".encode()
            return 1, f"{prog}: bad address '{name}'\n".encode()
        return 127, f"{prog}: not found (FakeEngine runs no processes)\n".encode()

    def _resolves(self, c: FakeContainer, name: str) -> bool:
        """Whether ``name`` is a running peer on a network ``c`` is on (engine DNS)."""
        for other in self._containers.values():
            if other.status != "running":
                continue
            for net, aliases in other.networks.items():
                if net in c.networks and (name == other.name or name in aliases):
                    return True
        return False


def drain(
    q: queue.Queue[dict[str, Any] | None], until: float | None = None
) -> Iterator[dict[str, Any]]:
    while True:
        try:
            wait = None if until is None else max(0.0, until - time.time())
            event = q.get(timeout=wait)
        except queue.Empty:
            return  # `until` passed: the engine ends the stream
        if event is None:
            return
        yield event
