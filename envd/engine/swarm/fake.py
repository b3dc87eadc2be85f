"""``FakeSwarm``: an in-memory one-node swarm manager behaving like the real one.

The contract suite ``tests/contract/test_swarm_contract.py`` runs the same
cases against this and a real one-node swarm, so what it checks cannot
drift: names unique (``Conflict``), versions checked on update, label
filters, secrets that are never readable back and cannot go while a service
uses them, configs likewise (``FakeObjects``), overlay networks, tasks that reach ``running`` with the task hash
of their spec, and host-mode ports.

Like this project's machines it runs on a kernel without IPVS
(``ipvs=False``): virtual IPs and the routing mesh do not work, so a port
published in ingress mode is assigned but nothing answers on it
(``answers(port)`` is false), while a host-mode port of a running task does.

Deliberate simplifications: tasks start at once (``running``) and an update
replaces them at once; images are not checked; a host-mode port another
running task holds leaves the new task ``pending``, as on one real node.

Test controls: ``journal`` (mutating calls as ``(kind, name)``),
``fail_next``, ``available``, ``add_image``, ``add_volume``, ``answers`` and
``on_list_tasks`` (rewrites what ``list_tasks`` answers: crash loops, stalls).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from envd.engine.swarm.fake_objects import FakeObjects, used_configs
from envd.values import labels as label_keys
from envd.values.errors import Conflict, EngineError, EngineUnavailable, NotFound
from envd.values.swarm_types import (
    TASK_HASH_LABEL,
    ObservedConfig,
    ObservedSecret,
    ObservedService,
    ObservedSwarmNetwork,
    ObservedTask,
    PublishedPort,
    SwarmInfo,
    SwarmServiceSpec,
)
from envd.values.types import BuildRequest, ObservedImage, ObservedVolume

if TYPE_CHECKING:
    from envd.engine.base import ProgressFn

NODE_ID = "fakenode0001"
NODE_NAME = "fake-node"
FIRST_INGRESS_PORT = 30000  # where the swarm assigns ingress ports
FIRST_HOST_PORT = 32768  # where the kernel assigns unnamed host-mode ports
HISTORY = 5  # tasks a service keeps (the swarm's TaskHistoryRetentionLimit)


def _id(kind: str, n: int) -> str:
    return hashlib.sha256(f"{kind}\0{n}".encode()).hexdigest()[:25]


def _has(obj_labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(obj_labels.get(k) == v for k, v in wanted.items())


def _used(spec: SwarmServiceSpec, secret_ids: Mapping[str, str]) -> dict[str, str]:
    """The secrets (name → id) a service's tasks mount."""
    return {ref.secret: secret_ids[ref.secret] for ref in spec.secrets}


@dataclass
class _Service:
    id: str
    spec: SwarmServiceSpec
    secret_ids: dict[str, str]  # the ones its tasks mount
    version: int
    ports: tuple[PublishedPort, ...]  # as the endpoint reports them
    update_started: str = ""
    tasks: list[ObservedTask] = field(default_factory=list)
    config_ids: dict[str, str] = field(default_factory=dict)  # the ones its tasks mount


@dataclass
class _Network:
    net: ObservedSwarmNetwork
    internal: bool


class FakeSwarm(FakeObjects):
    """In-memory ``SwarmEngine``: one manager node, thread-safe, deterministic ids."""

    host = "fake://swarm"

    def __init__(
        self,
        manager: bool = True,
        state: str = "active",
        *,
        ipvs: bool = False,
        available: bool = True,
    ) -> None:
        self.info = SwarmInfo(state, manager, NODE_ID if state == "active" else "")
        self.ipvs = ipvs
        self.available = available
        self.journal: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)  # update start "times"
        self._ingress_ports = itertools.count(FIRST_INGRESS_PORT)
        self._host_ports = itertools.count(FIRST_HOST_PORT)
        self._services: dict[str, _Service] = {}
        self._secrets: dict[str, ObservedSecret] = {}  # values are not kept at all
        self._configs: dict[str, ObservedConfig] = {}
        self.config_values: dict[str, bytes] = {}
        self._networks: dict[str, _Network] = {}
        self._volumes: dict[str, ObservedVolume] = {}
        self._images: dict[str, ObservedImage] = {}
        self._failures: dict[str, list[BaseException]] = {}
        # What list_tasks answers is passed through this first (a test's crash loop).
        self.on_list_tasks: Callable[[list[ObservedTask]], list[ObservedTask]] | None = None

    # --- test controls -------------------------------------------------------
    def fail_next(self, method: str, exc: BaseException) -> None:
        """The next call of ``method`` raises ``exc`` and changes nothing."""
        if not callable(getattr(self, method, None)):
            raise AssertionError(f"FakeSwarm has no method {method!r}")
        with self._lock:
            self._failures.setdefault(method, []).append(exc)

    def crash_loop(self, service: str, exit_code: int, times: int) -> None:
        """From now on, every task of the swarm service named ``service`` shows
        as ``times`` tasks that exited with ``exit_code`` (a crash loop)."""

        def failing(tasks: list[ObservedTask]) -> list[ObservedTask]:
            names = {s.id: s.spec.name for s in self._services.values()}
            out: list[ObservedTask] = []
            for t in tasks:
                if names.get(t.service_id) != service:
                    out.append(t)
                    continue
                out += [
                    replace(
                        t,
                        id=f"{t.id}-{i}",
                        state="failed",
                        desired_state="shutdown",
                        error=f"task: non-zero exit ({exit_code})",
                        exit_code=exit_code,
                        timestamp=str(i),
                    )
                    for i in range(times)
                ]
            return out

        self.on_list_tasks = failing

    def add_image(self, ref: str, image_labels: Mapping[str, str] | None = None) -> ObservedImage:
        """Make an image present on the node."""
        with self._lock:
            digest = hashlib.sha256(ref.encode()).hexdigest()
            image = ObservedImage(ref, f"sha256:{digest}", dict(image_labels or {}))
            self._images[ref] = image
            return image

    def add_volume(self, name: str, volume_labels: Mapping[str, str]) -> None:
        """A volume a task left on the node (tasks create their named volumes)."""
        with self._lock:
            self._volumes[name] = ObservedVolume(name, dict(volume_labels))

    def answers(self, port: int) -> bool:
        """Whether something accepts connections on this node's ``port``.

        A running task's host-mode port does; an ingress port only with IPVS.
        """
        with self._lock:
            for svc in self._services.values():
                if self.ipvs and any(p.published == port for p in svc.ports):
                    return True
                for t in svc.tasks:
                    if t.state == "running" and any(p.published == port for p in t.ports):
                        return True
            return False

    # --- internals -----------------------------------------------------------
    def _enter(self, method: str) -> None:
        failures = self._failures.get(method)
        if failures:
            raise failures.pop(0)
        if not self.available:
            raise EngineUnavailable(
                "the Docker engine is not reachable at fake://swarm: it is down"
            )

    def _new_id(self, kind: str) -> str:
        return _id(kind, next(self._ids))

    def _host_ports_in_use(self) -> set[tuple[int, str]]:
        return {
            (p.published or 0, p.protocol)
            for s in self._services.values()
            for t in s.tasks
            if t.state == "running"
            for p in t.ports
        }

    def _start_tasks(self, svc: _Service) -> None:
        """Shut the service's current tasks down and start one per replica of its spec."""
        for i, t in enumerate(svc.tasks):
            if t.desired_state == "running":
                state = "shutdown" if t.state == "running" else t.state
                svc.tasks[i] = replace(t, state=state, desired_state="shutdown")
        task_hash = str(svc.spec.container.labels.get(TASK_HASH_LABEL) or "")
        for slot in range(1, svc.spec.replicas + 1):
            in_use = self._host_ports_in_use()
            ports: list[PublishedPort] = []
            state, message, error = "running", "started", ""
            for p in svc.spec.ports:
                if p.mode != "host":
                    continue
                published = p.published or next(self._host_ports)
                if (published, p.protocol) in in_use:
                    state, message = "pending", "pending task scheduling"
                    error = "no suitable node (host-mode port already in use on 1 node)"
                    ports = []
                    break
                ports.append(replace(p, published=published))
            task_id = self._new_id("task")
            svc.tasks.append(
                ObservedTask(
                    id=task_id,
                    service_id=svc.id,
                    slot=slot,
                    node_id=NODE_ID if state == "running" else "",
                    state=state,
                    desired_state="running",
                    task_hash=task_hash,
                    message=message,
                    error=error,
                    container_id=self._new_id("container") if state == "running" else "",
                    timestamp=str(next(self._clock)),
                    ports=tuple(ports),
                )
            )
        del svc.tasks[: max(0, len(svc.tasks) - svc.spec.replicas - HISTORY)]

    def _check_refs(
        self,
        spec: SwarmServiceSpec,
        secret_ids: Mapping[str, str],
        config_ids: Mapping[str, str] | None = None,
    ) -> None:
        for ref in spec.secrets:
            sid = secret_ids.get(ref.secret, "")
            if sid not in self._secrets:
                raise EngineError(
                    f"rpc error: code = InvalidArgument desc = secret not found: {sid}", 400
                )
        self._check_config_refs(spec, config_ids)
        for att in spec.networks:
            if self._find(att.network) is None:
                raise EngineError(f"network {att.network} not found", 500)

    def _endpoint_ports(
        self, spec: SwarmServiceSpec, old: tuple[PublishedPort, ...]
    ) -> tuple[PublishedPort, ...]:
        """Ingress ports as the endpoint reports them: an unnamed one gets (or keeps) a port."""
        kept = {(p.target, p.protocol): p.published for p in old}
        out: list[PublishedPort] = []
        for p in spec.ports:
            if p.mode == "host":
                out.append(p)
                continue
            published = p.published or kept.get((p.target, p.protocol))
            out.append(replace(p, published=published or next(self._ingress_ports)))
        return tuple(out)

    def _find(self, ref: str) -> _Network | None:
        return self._networks.get(ref) or next(
            (n for n in self._networks.values() if n.net.name == ref), None
        )

    # --- the swarm -----------------------------------------------------------
    def ping(self) -> None:
        with self._lock:
            self._enter("ping")

    def ipvs_missing(self) -> bool:
        return not self.ipvs

    def swarm_info(self) -> SwarmInfo:
        with self._lock:
            self._enter("swarm_info")
            return self.info

    def node_names(self) -> dict[str, str]:
        with self._lock:
            self._enter("node_names")
            return {NODE_ID: NODE_NAME}

    # --- images --------------------------------------------------------------
    def inspect_image(self, ref: str) -> ObservedImage | None:
        with self._lock:
            self._enter("inspect_image")
            return self._images.get(ref)

    def build_image(self, req: BuildRequest, progress: ProgressFn | None = None) -> ObservedImage:
        with self._lock:
            self._enter("build_image")
            self.journal.append(("build-image", req.tag))
            if progress is not None:
                progress(f"Successfully tagged {req.tag}")
            return self.add_image(req.tag, req.labels)

    # --- services and tasks --------------------------------------------------
    def list_services(self, labels: Mapping[str, str]) -> list[ObservedService]:
        with self._lock:
            self._enter("list_services")
            return [
                ObservedService(
                    id=s.id,
                    name=s.spec.name,
                    version=s.version,
                    labels=dict(s.spec.labels),
                    replicas=s.spec.replicas,
                    image=s.spec.container.image,
                    update_state="completed" if s.update_started else "",
                    update_started=s.update_started,
                    running_tasks=sum(
                        t.state == "running" and t.desired_state == "running" for t in s.tasks
                    ),
                    desired_tasks=s.spec.replicas,
                    ports=s.ports,
                    secrets=tuple(r.secret for r in s.spec.secrets),
                    configs=tuple(r.config for r in s.spec.configs),
                )
                for s in self._services.values()
                if _has(s.spec.labels, labels)
            ]

    def create_service(
        self,
        spec: SwarmServiceSpec,
        secret_ids: Mapping[str, str],
        config_ids: Mapping[str, str] | None = None,
    ) -> str:
        with self._lock:
            self._enter("create_service")
            if any(s.spec.name == spec.name for s in self._services.values()):
                raise Conflict(
                    "rpc error: code = AlreadyExists desc = name conflicts with an existing"
                    f" object: service {spec.name} already exists",
                    409,
                )
            self._check_refs(spec, secret_ids, config_ids)
            svc = _Service(
                self._new_id("service"),
                spec,
                _used(spec, secret_ids),
                version=next(self._clock),
                ports=self._endpoint_ports(spec, ()),
                config_ids=used_configs(spec, config_ids),
            )
            self._services[svc.id] = svc
            self._start_tasks(svc)
            self.journal.append(("create-service", spec.name))
            return svc.id

    def update_service(
        self,
        service_id: str,
        version: int,
        spec: SwarmServiceSpec,
        secret_ids: Mapping[str, str],
        config_ids: Mapping[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._enter("update_service")
            svc = self._service(service_id)
            if version != svc.version:
                raise EngineError("rpc error: code = Unknown desc = update out of sequence", 500)
            self._check_refs(spec, secret_ids, config_ids)
            svc.spec, svc.secret_ids = spec, _used(spec, secret_ids)
            svc.config_ids = used_configs(spec, config_ids)
            svc.version = next(self._clock)
            svc.update_started = str(svc.version)
            svc.ports = self._endpoint_ports(spec, svc.ports)
            self._start_tasks(svc)
            self.journal.append(("update-service", spec.name))

    def _service(self, ref: str) -> _Service:
        svc = self._services.get(ref) or next(
            (s for s in self._services.values() if s.spec.name == ref), None
        )
        if svc is None:
            raise NotFound(f"service {ref} not found", 404)
        return svc

    def remove_service(self, service_id: str) -> None:
        with self._lock:
            self._enter("remove_service")
            try:
                svc = self._service(service_id)
            except NotFound:
                return
            del self._services[svc.id]
            self.journal.append(("remove-service", svc.spec.name))

    def list_tasks(self, service_ids: list[str]) -> list[ObservedTask]:
        with self._lock:
            self._enter("list_tasks")
            tasks = [
                t for sid in service_ids if sid in self._services for t in self._services[sid].tasks
            ]
        return tasks if self.on_list_tasks is None else self.on_list_tasks(tasks)

    def container_ports(self, container_id: str) -> list[str] | None:
        with self._lock:
            self._enter("container_ports")
            for svc in self._services.values():
                for t in svc.tasks:
                    if t.container_id == container_id and t.state == "running":
                        return [f"0.0.0.0:{p.published}->{p.target}/{p.protocol}" for p in t.ports]
            return None

    # --- networks and volumes ------------------------------------------------
    def list_swarm_networks(self, labels: Mapping[str, str]) -> list[ObservedSwarmNetwork]:
        with self._lock:
            self._enter("list_swarm_networks")
            return [n.net for n in self._networks.values() if _has(n.net.labels, labels)]

    def find_network(self, name: str) -> ObservedSwarmNetwork | None:
        with self._lock:
            self._enter("find_network")
            return next((n.net for n in self._networks.values() if n.net.name == name), None)

    def create_overlay_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False, driver: str = "overlay"
    ) -> str:
        with self._lock:
            self._enter("create_overlay_network")
            if any(n.net.name == name for n in self._networks.values()):
                raise Conflict(f"network {name}: network with name {name} already exists", 409)
            nid = self._new_id("network")
            net = ObservedSwarmNetwork(nid, name, driver, "swarm", dict(labels))
            self._networks[nid] = _Network(net, internal)
            self.journal.append(("create-network", name))
            return nid

    def remove_network(self, name: str) -> None:
        with self._lock:
            self._enter("remove_network")
            found = self._find(name)
            if found is None:
                raise NotFound(f"network {name}: network {name} not found", 404)
            users = [
                s.id
                for s in self._services.values()
                if any(self._find(a.network) is found for a in s.spec.networks)
            ]
            if users:
                # Like the engine: a 400, not a Conflict (only attached containers are one).
                raise EngineError(
                    f"network {name}: rpc error: code = FailedPrecondition desc = network"
                    f" {found.net.id} is in use by service {users[0]}",
                    400,
                )
            del self._networks[found.net.id]
            self.journal.append(("remove-network", found.net.name))

    def list_volumes(self, project: str) -> list[ObservedVolume]:
        with self._lock:
            self._enter("list_volumes")
            return [
                v for v in self._volumes.values() if v.labels.get(label_keys.PROJECT) == project
            ]

    def remove_volume(self, name: str) -> None:
        with self._lock:
            self._enter("remove_volume")
            if self._volumes.pop(name, None) is None:
                raise NotFound(f"volume {name}: get {name}: no such volume", 404)
            self.journal.append(("remove-volume", name))
