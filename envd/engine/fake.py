"""``FakeEngine``: an in-memory engine that behaves like the real one.

The contract suite in ``tests/contract`` runs against this and the real
Docker engine, so what it checks cannot drift: unique container names
(``Conflict``), ``NotFound`` for missing objects, labels kept, lists filtered
by the project label, states created → running → exited, exit codes and health.
Its objects, test controls and shared rules live in ``envd.engine.fake_state``.

Test controls: ``add_image``, ``set_health``, ``exit_container``,
``emit_log``, ``fail_next`` and the ``calls`` journal of mutating calls, so a
test can assert that a no-op ``up`` made none.
"""

from __future__ import annotations

import io
import posixpath
import queue
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from envd.engine.fake_net import check_addresses, inspect_doc, overlaps
from envd.engine.fake_state import (
    STOPPED_EXIT_CODE,
    FakeContainer,
    FakeFile,
    FakeNetwork,
    FakeState,
    FakeVolume,
    digest,
    drain,
    labels_key,
)
from envd.engine.host_defaults import engine_filled
from envd.engine.secret_paths import config_refusal
from envd.values import labels
from envd.values.errors import Conflict, EngineError, NotFound
from envd.values.limit_support import LimitSupport
from envd.values.types import (
    BuildRequest,
    ContainerCreate,
    ContainerState,
    ExecOptions,
    HostSettings,
    IpamPool,
    ObservedContainer,
    ObservedImage,
    ObservedMount,
    ObservedNetwork,
    ObservedVolume,
    PortBinding,
)

if TYPE_CHECKING:
    from envd.engine.base import ProgressFn


class FakeEngine(FakeState):
    """In-memory ``Engine``; thread-safe, deterministic ids."""

    # --- observe -------------------------------------------------------------
    def ping(self) -> None:
        with self._lock:
            self._enter("ping")

    def describe(self) -> dict[str, str]:
        with self._lock:
            self._enter("describe")
        return {
            "endpoint": "fake://",
            "context": "",
            "name": "fake",
            "version": "0",
            "api_version": "1.41",
        }

    def ignored_limits(self) -> LimitSupport:
        with self._lock:
            self._enter("ignored_limits")
            self.limit_queries += 1
            return self.limit_support

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
                    status_text="Up" if c.status == "running" else c.status.capitalize(),
                    network_mode=c.network_mode,
                    volumes=_volume_names(c),
                )
                for c in self._containers.values()
                if c.spec.labels.get(labels.PROJECT) == project
            ]

    def list_networks(self, project: str) -> list[ObservedNetwork]:
        with self._lock:
            self._enter("list_networks")
            return [
                ObservedNetwork(
                    n.id,
                    n.name,
                    dict(n.labels),
                    n.driver,
                    n.internal,
                    n.ipam_driver,
                    n.ipam,
                    n.enable_ipv6,
                )
                for n in self._networks.values()
                if n.labels.get(labels.PROJECT) == project
            ]

    def list_volumes(self, project: str) -> list[ObservedVolume]:
        with self._lock:
            self._enter("list_volumes")
            return [
                ObservedVolume(name=v.name, labels=dict(v.labels))
                for v in self._volumes.values()
                if v.labels.get(labels.PROJECT) == project
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
                started_at=c.started_at,
                finished_at=c.finished_at,
            )

    # --- images --------------------------------------------------------------
    def pull_image(self, ref: str, progress: ProgressFn | None = None) -> ObservedImage:
        with self._lock:
            self._enter("pull_image", ref)
            repo = ref.split("@", 1)[0]
            slash, colon = repo.rfind("/"), repo.rfind(":")
            repo = repo[:colon] if colon > slash else repo
            manifest = "sha256:" + digest("manifest", ref)
            if progress is not None:
                progress(f"{ref}: Pull complete")
            return self.add_image(
                ref, "sha256:" + digest("pulled", ref), repo_digests=(f"{repo}@{manifest}",)
            )

    def build_image(self, req: BuildRequest, progress: ProgressFn | None = None) -> ObservedImage:
        with self._lock:
            self._enter("build_image", req.tag)
            image_id = "sha256:" + digest(
                "built",
                req.tag,
                labels_key(req.labels),
                req.dockerfile,
                labels_key(req.args),
                req.target,
            )
            if progress is not None:
                progress(f"Successfully tagged {req.tag}")
            return self.add_image(req.tag, image_id, req.labels)

    # --- networks and volumes -----------------------------------------------
    def create_network(
        self,
        name: str,
        labels: dict[str, str],
        driver: str = "bridge",
        internal: bool = False,
        ipam_driver: str = "",
        ipam: tuple[IpamPool, ...] = (),
        enable_ipv6: bool = False,
    ) -> str:
        with self._lock:
            self._enter("create_network", name)
            if name in self._networks:
                raise Conflict(f"network with name {name} already exists", 409)
            if overlaps(ipam, [p for n in self._networks.values() for p in n.ipam]):
                raise EngineError("Pool overlaps with other one on this address space", 403)
            net = FakeNetwork(
                self._new_id("network"),
                name,
                dict(labels),
                driver,
                internal,
                ipam,
                enable_ipv6,
                ipam_driver or "default",
            )
            self._networks[name] = net
            return net.id

    def remove_network(self, name: str) -> None:
        with self._lock:
            self._enter("remove_network", name)
            net = self._network(name)
            users = self._attached(net.name)
            if users or net.leaked_endpoints:
                raise Conflict(
                    f"network {name}: error while removing network: network {net.name} id "
                    f"{net.id} has active endpoints",
                    403,
                )
            del self._networks[net.name]

    def network_containers(self, name: str) -> list[str]:
        with self._lock:
            self._enter("network_containers", name)
            return self._attached(self._network(name).name)

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
            self._volumes.setdefault(name, FakeVolume(name, dict(labels), driver))
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
    def container_name_owner(self, name: str) -> str | None:
        with self._lock:
            self._enter("container_name_owner")
            found = next((c for c in self._containers.values() if c.name == name), None)
            return None if found is None else found.spec.labels.get(labels.PROJECT, "")

    def create_container(self, spec: ContainerCreate) -> str:
        with self._lock:
            self._enter("create_container", spec.name)
            refusal = config_refusal(spec)
            if refusal is not None:
                raise EngineError(refusal)
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
            mode = spec.network_mode or (spec.networks[0].network if spec.networks else "default")
            if mode.startswith("container:"):
                # Like the engine: the name is resolved to the id at create time.
                mode = "container:" + self._get(mode.partition(":")[2]).id
            c = FakeContainer(
                id=self._new_id("container"),
                name=spec.name,
                spec=spec,
                image_id=img.id,
                healthcheck=hc,
                networks={a.network: tuple(a.aliases) for a in spec.networks},
                network_mode=mode,
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
                c.files[target] = FakeFile(s.value, s.mode, s.uid, s.gid)
            # configs: written into the root filesystem like the engine's archive API does
            for cf in spec.configs:
                c.files[posixpath.normpath(cf.target)] = FakeFile(cf.value, cf.mode, cf.uid, cf.gid)
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
            check_addresses(c, self._networks, self._containers.values())
            if c.network_mode.startswith("container:"):
                owner = self._containers.get(c.network_mode.partition(":")[2])
                if owner is None or owner.status != "running":
                    raise Conflict(
                        f"cannot join network of a non running container: {c.network_mode}", 409
                    )
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
            c.started_at = float(next(self._ticks))
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

    def remove_container(
        self, container_id: str, volumes: bool = False, mounted: tuple[str, ...] | None = None
    ) -> None:
        with self._lock:
            self._enter("remove_container", container_id)
            c = self._get(container_id)
            if mounted is not None and sorted(mounted) != sorted(_volume_names(c)):
                # What the list said of this container must be what it mounts:
                # the real adapter trusts it to skip the inspect.
                raise EngineError(f"container {container_id}: mounts {mounted} are not its own")
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

    def inspect_doc(self, container_id: str) -> dict[str, Any]:
        """Test control: the inspect fields of the real engine's answer envd sets (name,
        exposed ports, network mode, endpoint addresses)."""
        with self._lock:
            return inspect_doc(self._get(container_id))

    def container_mounts(self, container_id: str) -> list[ObservedMount]:
        with self._lock:
            self._enter("container_mounts")
            return list(self._get(container_id).mounts)

    def container_host(self, container_id: str) -> HostSettings:
        with self._lock:
            self._enter("container_host")
            return engine_filled(self._get(container_id).spec.host)

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
                        c.files[target] = FakeFile(content, member.mode, member.uid, member.gid)
            except tarfile.TarError as exc:
                raise EngineError(f"writing files into container {c.name}: {exc}", 500) from None

    def exec_run(
        self, container_id: str, cmd: list[str], options: ExecOptions | None = None
    ) -> tuple[int, bytes]:
        with self._lock:
            self._enter("exec_run", container_id, *cmd)
            c = self._get(container_id)
            self.exec_options.append((container_id, tuple(cmd), options or ExecOptions()))
            if c.status != "running":
                raise Conflict(f"Container {c.id} is not running", 409)
            handler = self._exec_handler
            if handler is None:
                return self._builtin_exec(c, cmd, options)
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

    def stream_events(
        self, project: str, since: float | None = None, until: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Container events of the project from now on (from ``since`` first, as
        the engine replays them); blocks until one comes.

        Ends at ``until``, or when a test calls ``end_event_streams`` (the
        engine going away).
        """
        with self._lock:
            self._enter("stream_events")
            q: queue.Queue[dict[str, Any] | None] = queue.Queue()
            if since is not None:
                for event in self.events:
                    project_of = event["Actor"]["Attributes"].get(labels.PROJECT)
                    if project_of == project and event["timeNano"] >= since * 1e9:
                        q.put(event)
            self._subscribers.append((project, q))
        return drain(q, until)


def _volume_names(c: FakeContainer) -> tuple[str, ...]:
    """The volumes a container mounts, as the engine's list shows them (issue 15)."""
    return tuple(m.source for m in c.mounts if m.type == "volume")
