"""``FakeEngine``: an in-memory engine that behaves like the real one.

The contract suite in ``tests/contract`` runs against this and the real
Docker engine, so what it checks cannot drift: unique container names
(``Conflict``), ``NotFound`` for missing objects, labels kept, lists filtered
by the project label, states created → running → exited, exit codes and health.

Test controls: ``add_image``, ``set_health``, ``exit_container``,
``emit_log``, ``fail_next`` and the ``calls`` journal of mutating calls, so a
test can assert that a no-op ``up`` made none.

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
import io
import itertools
import posixpath
import queue
import shlex
import tarfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from envd.values.errors import Conflict, EngineError, NotFound
from envd.values.types import (
    BuildRequest,
    ContainerCreate,
    ContainerState,
    Healthcheck,
    ObservedContainer,
    ObservedImage,
    ObservedMount,
    ObservedNetwork,
    ObservedVolume,
    PortBinding,
)

if TYPE_CHECKING:
    from envd.engine.base import ProgressFn

ExecHandler = Callable[[str, list[str]], tuple[int, bytes]]

# Exit code of a process ended by SIGTERM (what ``stop`` leaves behind).
STOPPED_EXIT_CODE = 143
FIRST_EPHEMERAL_PORT = 32768


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _labels_key(labels: Mapping[str, str]) -> str:
    return "\0".join(f"{k}={v}" for k, v in sorted(labels.items()))


@dataclass
class _File:
    data: bytes
    mode: int
    uid: int
    gid: int


@dataclass
class _Image:
    ref: str
    id: str
    labels: dict[str, str]
    repo_digests: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    volumes: tuple[str, ...] = ()  # the image's VOLUME declarations


@dataclass
class _Container:
    id: str
    name: str
    spec: ContainerCreate
    image_id: str
    healthcheck: Healthcheck | None
    status: str = "created"
    exit_code: int | None = None
    health: str | None = None
    ports: tuple[PortBinding, ...] = ()
    files: dict[str, _File] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    networks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name → aliases
    mounts: list[ObservedMount] = field(default_factory=list)  # as an inspect reports them


@dataclass
class _Network:
    id: str
    name: str
    labels: dict[str, str]
    driver: str
    internal: bool


@dataclass
class _Volume:
    name: str
    labels: dict[str, str]
    driver: str


class FakeEngine:
    """In-memory ``Engine``; thread-safe, deterministic ids."""

    def __init__(self, *, auto_healthy: bool = True, available: bool = True) -> None:
        self.auto_healthy = auto_healthy
        self.available = available
        self.calls: list[tuple[str, ...]] = []
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._ports = itertools.count(FIRST_EPHEMERAL_PORT)
        self._images: dict[str, _Image] = {}  # by ref and by id
        self._containers: dict[str, _Container] = {}
        self._networks: dict[str, _Network] = {}  # by name
        self._volumes: dict[str, _Volume] = {}
        self._failures: dict[str, list[BaseException]] = {}
        self._exec_handler: ExecHandler | None = None
        self.events: list[dict[str, Any]] = []  # every container event, in order
        self._subscribers: list[tuple[str, queue.Queue[dict[str, Any] | None]]] = []

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
            image_id = id or "sha256:" + _digest("image", ref, _labels_key(lbl))
            img = _Image(ref, image_id, lbl, repo_digests, healthcheck, tuple(volumes))
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
            raise AssertionError(f"FakeEngine has no method {method!r}")
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
            from envd.values.errors import EngineUnavailable

            raise EngineUnavailable("the Docker engine is not reachable at fake://: it is down")
        if record:
            self.calls.append((method, *record))

    def _event(self, c: _Container, action: str, **attributes: str) -> None:
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
        }
        self.events.append(event)
        project = c.spec.labels.get("dev.envd.project")
        for p, q in self._subscribers:
            if p == project:
                q.put(event)

    def _new_id(self, kind: str) -> str:
        return _digest(kind, str(next(self._ids)))

    def _get(self, ref: str) -> _Container:
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

    def _network(self, ref: str) -> _Network:
        n = self._networks.get(ref)
        if n is not None:
            return n
        for n in self._networks.values():
            if n.id == ref or (ref and n.id.startswith(ref)):
                return n
        raise NotFound(f"network {ref} not found", 404)

    @staticmethod
    def _observed_image(ref: str, img: _Image) -> ObservedImage:
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

    # --- observe -------------------------------------------------------------
    def ping(self) -> None:
        with self._lock:
            self._enter("ping")

    def list_containers(self, project: str) -> list[ObservedContainer]:
        with self._lock:
            self._enter("list_containers")
            return [
                ObservedContainer(
                    id=c.id,
                    name=c.name,
                    labels=dict(c.spec.labels),
                    status=c.status,
                    health=c.health if c.status == "running" else None,
                    exit_code=c.exit_code if c.status in ("exited", "dead") else None,
                    image_id=c.image_id,
                    ports=c.ports if c.status == "running" else (),
                )
                for c in self._containers.values()
                if c.spec.labels.get("dev.envd.project") == project
            ]

    def list_networks(self, project: str) -> list[ObservedNetwork]:
        with self._lock:
            self._enter("list_networks")
            return [
                ObservedNetwork(n.id, n.name, dict(n.labels), n.driver, n.internal)
                for n in self._networks.values()
                if n.labels.get("dev.envd.project") == project
            ]

    def list_volumes(self, project: str) -> list[ObservedVolume]:
        with self._lock:
            self._enter("list_volumes")
            return [
                ObservedVolume(name=v.name, labels=dict(v.labels))
                for v in self._volumes.values()
                if v.labels.get("dev.envd.project") == project
            ]

    def inspect_image(self, ref: str) -> ObservedImage | None:
        with self._lock:
            self._enter("inspect_image")
            img = self._images.get(ref)
            return None if img is None else self._observed_image(ref, img)

    def container_state(self, container_id: str) -> ContainerState:
        with self._lock:
            self._enter("container_state")
            c = self._get(container_id)
            return ContainerState(
                id=c.id,
                status=c.status,
                exit_code=c.exit_code if c.status in ("exited", "dead") else None,
                health=c.health if c.status == "running" else None,
                has_healthcheck=c.healthcheck is not None,
            )

    # --- images --------------------------------------------------------------
    def pull_image(self, ref: str, progress: ProgressFn | None = None) -> ObservedImage:
        with self._lock:
            self._enter("pull_image", ref)
            repo = ref.split("@", 1)[0]
            slash, colon = repo.rfind("/"), repo.rfind(":")
            repo = repo[:colon] if colon > slash else repo
            digest = "sha256:" + _digest("manifest", ref)
            if progress is not None:
                progress(f"{ref}: Pull complete")
            return self.add_image(
                ref, "sha256:" + _digest("pulled", ref), repo_digests=(f"{repo}@{digest}",)
            )

    def build_image(self, req: BuildRequest, progress: ProgressFn | None = None) -> ObservedImage:
        with self._lock:
            self._enter("build_image", req.tag)
            image_id = "sha256:" + _digest(
                "built",
                req.tag,
                _labels_key(req.labels),
                req.dockerfile,
                _labels_key(req.args),
                req.target,
            )
            if progress is not None:
                progress(f"Successfully tagged {req.tag}")
            return self.add_image(req.tag, image_id, req.labels)

    # --- networks and volumes -----------------------------------------------
    def create_network(
        self, name: str, labels: dict[str, str], driver: str = "bridge", internal: bool = False
    ) -> str:
        with self._lock:
            self._enter("create_network", name)
            if name in self._networks:
                raise Conflict(f"network with name {name} already exists", 409)
            net = _Network(self._new_id("network"), name, dict(labels), driver, internal)
            self._networks[name] = net
            return net.id

    def remove_network(self, name: str) -> None:
        with self._lock:
            self._enter("remove_network", name)
            net = self._network(name)
            users = [
                c.name
                for c in self._containers.values()
                if c.status == "running" and net.name in c.networks
            ]
            if users:
                raise Conflict(
                    f"network {name}: error while removing network: network {net.name} id "
                    f"{net.id} has active endpoints",
                    403,
                )
            del self._networks[net.name]

    def create_volume(
        self,
        name: str,
        labels: dict[str, str],
        driver: str = "local",
        driver_opts: dict[str, str] | None = None,
    ) -> str:
        with self._lock:
            self._enter("create_volume", name)
            # Like the engine: creating an existing volume returns it unchanged.
            self._volumes.setdefault(name, _Volume(name, dict(labels), driver))
            return name

    def remove_volume(self, name: str) -> None:
        with self._lock:
            self._enter("remove_volume", name)
            if name not in self._volumes:
                raise NotFound(f"get {name}: no such volume", 404)
            users = self._volume_users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]", 409)
            del self._volumes[name]

    def volume_exists(self, name: str) -> bool:
        with self._lock:
            self._enter("volume_exists")
            return name in self._volumes

    def network_exists(self, name: str) -> bool:
        with self._lock:
            self._enter("network_exists")
            return name in self._networks

    # --- containers ----------------------------------------------------------
    def create_container(self, spec: ContainerCreate) -> str:
        with self._lock:
            self._enter("create_container", spec.name)
            if any(c.name == spec.name for c in self._containers.values()):
                raise Conflict(
                    f'Conflict. The container name "/{spec.name}" is already in use', 409
                )
            img = self._images.get(spec.image)
            if img is None:
                raise NotFound(f"No such image: {spec.image}", 404)
            # Like the engine: a missing network is only noticed at start.
            hc = spec.healthcheck if spec.healthcheck is not None else img.healthcheck
            if hc is not None and (not hc.test or hc.test[0] == "NONE"):
                hc = None
            c = _Container(
                id=self._new_id("container"),
                name=spec.name,
                spec=spec,
                image_id=img.id,
                healthcheck=hc,
                networks={a.network: tuple(a.aliases) for a in spec.networks},
            )
            for s in spec.secrets:
                target = posixpath.normpath(s.target)
                if any(
                    m.read_only and (target + "/").startswith(m.target.rstrip("/") + "/")
                    for m in spec.mounts
                ):
                    # Like the engine, which refuses to write into a read-only mount.
                    raise EngineError(
                        f"writing secrets into container {spec.name}: mounted volume is "
                        "marked read-only",
                        500,
                    )
                c.files[target] = _File(s.value, s.mode, s.uid, s.gid)
            c.mounts = self._make_mounts(spec, img)
            self._containers[c.id] = c
            self._event(c, "create")
            return c.id

    def start_container(self, container_id: str) -> None:
        with self._lock:
            self._enter("start_container", container_id)
            c = self._get(container_id)
            if c.status == "running":
                return
            for name in c.networks:
                if name not in self._networks:
                    raise NotFound(f"network {name} not found", 404)
            in_use = self._ports_in_use()
            ports: list[PortBinding] = []
            for p in c.spec.ports:
                host_port = p.host_port
                if host_port is None:
                    host_port = next(self._ports)
                    while (p.host_ip, host_port, p.protocol) in in_use:
                        host_port = next(self._ports)
                elif (p.host_ip, host_port, p.protocol) in in_use:
                    raise EngineError(
                        f"driver failed programming external connectivity on endpoint "
                        f"{c.name}: Bind for {p.host_ip or '0.0.0.0'}:{host_port} failed: "
                        "port is already allocated",
                        500,
                    )
                ports.append(replace(p, host_port=host_port))
            c.ports = tuple(ports)
            c.status, c.exit_code = "running", None
            self._event(c, "start")
            if c.healthcheck is not None:
                c.health = "starting"
                if self.auto_healthy:
                    self.set_health(c.id, "healthy")

    def stop_container(self, container_id: str, timeout: int | None) -> None:
        with self._lock:
            self._enter("stop_container", container_id)
            c = self._get(container_id)
            if c.status != "running":
                return
            self._event(c, "kill", signal="15")
            self.exit_container(c.id, STOPPED_EXIT_CODE)
            self._event(c, "stop")

    def remove_container(self, container_id: str, volumes: bool = False) -> None:
        with self._lock:
            self._enter("remove_container", container_id)
            c = self._get(container_id)
            if c.status == "running":
                self.exit_container(c.id, 137)
            if c.id in self._containers:
                del self._containers[c.id]
                self._event(c, "destroy")
            # Secret volumes always go with their container; the other
            # anonymous ones only when asked. A volume another container
            # still uses stays (the engine refuses to remove it).
            for m in c.mounts:
                if (m.secrets or (volumes and m.anonymous)) and not self._volume_users(m.source):
                    self._volumes.pop(m.source, None)

    def container_mounts(self, container_id: str) -> list[ObservedMount]:
        with self._lock:
            self._enter("container_mounts")
            return list(self._get(container_id).mounts)

    def _volume_users(self, name: str) -> list[str]:
        return [
            c.id
            for c in self._containers.values()
            if any(m.type == "volume" and m.source == name for m in c.mounts)
        ]

    def _make_mounts(self, spec: ContainerCreate, img: _Image) -> list[ObservedMount]:
        """The mounts the engine gives a new container, creating the volumes they need."""

        def anonymous(labels: dict[str, str] | None = None) -> str:
            name = self._new_id("volume")
            self._volumes[name] = _Volume(name, dict(labels or {}), "local")
            return name

        out: list[ObservedMount] = []
        for m in spec.mounts:
            if m.type != "volume":
                out.append(ObservedMount(m.type, m.target, m.source, m.read_only))
            elif m.source:
                # Like the engine: a named volume that does not exist is created.
                self._volumes.setdefault(m.source, _Volume(m.source, {}, "local"))
                out.append(
                    ObservedMount(
                        "volume",
                        m.target,
                        m.source,
                        m.read_only,
                        anonymous=m.source in spec.anonymous_volumes,
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
            from envd.engine.docker.client import SECRETS_VOLUME_LABEL, _secret_roots

            labels = {SECRETS_VOLUME_LABEL: "1"}
            if "dev.envd.project" in spec.labels:
                labels["dev.envd.project"] = spec.labels["dev.envd.project"]
            for d in _secret_roots(spec.secrets):
                if d not in mounted:
                    out.append(
                        ObservedMount("volume", d, anonymous(labels), anonymous=True, secrets=True)
                    )
        return out

    def rename_container(self, container_id: str, name: str) -> None:
        with self._lock:
            self._enter("rename_container", container_id, name)
            c = self._get(container_id)
            if any(o.name == name and o.id != c.id for o in self._containers.values()):
                raise Conflict(f'Conflict. The container name "/{name}" is already in use', 409)
            old, c.name = c.name, name
            self._event(c, "rename", oldName=f"/{old}")

    def put_archive(self, container_id: str, path: str, data: bytes) -> None:
        with self._lock:
            self._enter("put_archive", container_id, path)
            c = self._get(container_id)
            try:
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    for member in tar.getmembers():
                        if not member.isfile():
                            continue
                        fobj = tar.extractfile(member)
                        content = fobj.read() if fobj is not None else b""
                        target = posixpath.normpath(posixpath.join(path, member.name))
                        c.files[target] = _File(content, member.mode, member.uid, member.gid)
            except tarfile.TarError as exc:
                raise EngineError(f"writing files into container {c.name}: {exc}", 500) from None

    def exec_run(self, container_id: str, cmd: list[str]) -> tuple[int, bytes]:
        with self._lock:
            self._enter("exec_run", container_id, *cmd)
            c = self._get(container_id)
            if c.status != "running":
                raise Conflict(f"Container {c.id} is not running", 409)
            handler = self._exec_handler
            if handler is None:
                return self._builtin_exec(c, cmd)
        return handler(c.id, list(cmd))

    def container_logs(self, container_id: str, tail: int = 50) -> list[str]:
        with self._lock:
            self._enter("container_logs")
            lines = list(self._get(container_id).logs)
            return lines[-tail:] if tail > 0 else lines

    def stream_logs(
        self, container_id: str, tail: int | None = None, follow: bool = True
    ) -> Iterator[str]:
        """The log so far (the fake never blocks waiting for more)."""
        with self._lock:
            self._enter("stream_logs")
            lines = list(self._get(container_id).logs)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        return iter(lines)

    def stream_events(self, project: str) -> Iterator[dict[str, Any]]:
        """Container events of the project from now on; blocks until one comes.

        Ends when a test calls ``end_event_streams`` (the engine going away).
        """
        with self._lock:
            self._enter("stream_events")
            q: queue.Queue[dict[str, Any] | None] = queue.Queue()
            self._subscribers.append((project, q))
        return _drain(q)

    def _builtin_exec(self, c: _Container, cmd: list[str]) -> tuple[int, bytes]:
        """A few commands answered from the fake's state, enough for the contract suite."""
        if len(cmd) == 3 and cmd[0] == "sh" and cmd[1] == "-c":
            words = shlex.split(cmd[2])
            if len(words) == 2 and words[0] == "exit" and words[1].isdigit():
                return int(words[1]), b""
            return self._builtin_exec(c, words)
        if not cmd:
            return 126, b"exec: no command\n"
        prog, args = cmd[0], cmd[1:]
        if prog == "true":
            return 0, b""
        if prog == "false":
            return 1, b""
        if prog == "echo":
            return 0, (" ".join(args) + "\n").encode()
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

    def _resolves(self, c: _Container, name: str) -> bool:
        """Whether ``name`` is a running peer on a network ``c`` is on (engine DNS)."""
        for other in self._containers.values():
            if other.status != "running":
                continue
            for net, aliases in other.networks.items():
                if net in c.networks and (name == other.name or name in aliases):
                    return True
        return False


def _drain(q: queue.Queue[dict[str, Any] | None]) -> Iterator[dict[str, Any]]:
    while (event := q.get()) is not None:
        yield event
