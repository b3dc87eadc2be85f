"""``envd deploy --target swarm``: the same spec as Docker Swarm services.

The shape is the local one (``desired`` → ``plan`` → ``apply``), over swarm
objects:

* ``desire_swarm`` (pure) turns a ``DesiredProject`` into swarm services
  ``<project>_<service>``, overlay networks (attachable; every service
  reachable by its spec name), and secrets with immutable versioned names
  ``<project>_<secret>_<digest[:12]>`` (``digest`` is the keyed HMAC of the
  value, so a name never reveals the value). Each service carries
  ``dev.envd.config-hash`` (everything envd sets) and its tasks
  ``dev.envd.task-hash`` (what makes swarm roll tasks), so a deploy updates a
  service only when its hash moved, and waiting knows which tasks run the
  new spec.
* ``plan_swarm`` (pure) compares that with one observation (three labelled
  list calls) and returns typed actions with the reason for each.
* ``deploy`` executes the plan: networks, new secrets, services (create or
  update with the observed version index), then waits for every service to
  run its current spec, then removes what is left over: services no longer in
  the spec, secrets no service uses (a rotated value's old version), networks.

The swarm calls live in ``envd.engine.swarm.real``; nothing here builds an API
payload.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any

from envd import __version__
from envd.core.desired import DesiredProject, DesiredService
from envd.engine.swarm.real import (
    TASK_HASH_LABEL,
    ObservedSecret,
    ObservedService,
    ObservedSwarmNetwork,
    ObservedTask,
    PublishedPort,
    SecretRef,
    SwarmEngine,
    SwarmServiceSpec,
    TmpfsMount,
    VolumeOptions,
    ipvs_missing,
)
from envd.inputs.secrets import digest as secret_digest
from envd.spec.load import LoadedSpec
from envd.values import labels
from envd.values.errors import (
    Conflict,
    EngineError,
    EnvironmentFailed,
    NotFound,
    ServiceFailure,
    UsageError,
)
from envd.values.events import Clock, Emit, Event, SystemClock, discard
from envd.values.types import BuildRequest, NetworkAttachment

TARGET_LABEL = "dev.envd.target"
SECRET_LABEL = "dev.envd.secret"
IMAGE_ID_LABEL = "dev.envd.image-id"
# What `docker stack` commands look for: `docker stack ps <project>` works.
STACK_NAMESPACE = "com.docker.stack.namespace"
TARGET = "swarm"
SECRET_NAME_MAX = 64
SECRETS_DIR = "/run/secrets/"

_RESTART = {"no": "none", "": "none", "on-failure": "on-failure", "always": "any"}
_RESTART["unless-stopped"] = "any"


class NotSwarmManager(UsageError):
    """The engine is not a manager of an active swarm (exit 2: nothing was changed)."""


# --------------------------------------------------------------------------- desired


@dataclass(frozen=True)
class SwarmSecret:
    key: str  # the name in the spec
    name: str  # the versioned swarm name
    labels: Mapping[str, str]
    value: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True)
class SwarmNetwork:
    key: str
    name: str
    labels: Mapping[str, str]
    internal: bool = False
    driver: str = "overlay"
    external: bool = False


@dataclass(frozen=True)
class SwarmService:
    service: str  # the name in the spec
    spec: SwarmServiceSpec
    config_hash: str
    task_hash: str
    field_hashes: str
    order_reason: str = ""


@dataclass(frozen=True)
class SwarmDesired:
    project: str
    environment: str | None
    services: Mapping[str, SwarmService]
    networks: Mapping[str, SwarmNetwork]
    secrets: Mapping[str, SwarmSecret]  # by swarm name
    notes: tuple[str, ...] = ()
    # Images a deploy would build first (only filled when preparing without building).
    builds: tuple[str, ...] = ()

    def common_labels(self) -> dict[str, str]:
        return project_labels(self.project)


def project_labels(project: str) -> dict[str, str]:
    """The labels every swarm object of a project carries (what `down` removes)."""
    return {labels.PROJECT: project, TARGET_LABEL: TARGET}


def service_name(project: str, service: str) -> str:
    return f"{project}_{service}"


def secret_name(project: str, key: str, value_digest: str) -> str:
    """``<project>_<secret>_<digest[:12]>``, shortened to swarm's 64 characters."""
    suffix = "_" + value_digest[:12]
    return f"{project}_{key}"[: SECRET_NAME_MAX - len(suffix)] + suffix


def restart_condition(restart: str) -> str:
    """A compose/envd restart policy as a swarm restart condition."""
    return _RESTART.get(restart, "any")


def update_order(svc: DesiredService, endpoint_mode: str = "vip") -> tuple[str, str]:
    """``start-first`` unless two tasks of the service must not run at once; and why.

    With virtual IPs, published ports go through the routing mesh (ingress),
    where no task binds the host port, so a fixed published port does not stop
    the new task from starting before the old one stops. With DNS round robin
    ports are published in host mode: the task itself binds the node's port, and
    a new task cannot bind a fixed port the old one holds. State on the node
    stops it too: a writable named volume or bind mount would be shared by the
    old and the new task (two databases on one data directory).
    """
    if endpoint_mode == "dnsrr":
        for p in svc.template.ports:
            if p.host_port:
                return "stop-first", f"fixed host-mode port {p.host_port}"
    for m in svc.template.mounts:
        if m.type in ("volume", "bind") and m.source and not m.read_only:
            kind = "volume" if m.type == "volume" else "bind mount"
            return "stop-first", f"writable {kind} {m.source} at {m.target}"
    return "start-first", ""


_SIZE = re.compile(r"^(\d+)([kmgKMG]?)[bB]?$")
_UNIT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_tmpfs(path: str, options: str) -> tuple[TmpfsMount, list[str]]:
    """A tmpfs mount and the options swarm cannot express."""
    size: int | None = None
    mode: int | None = None
    rest: list[str] = []
    for opt in filter(None, options.split(",")):
        key, _, value = opt.partition("=")
        if key == "size" and _SIZE.match(value):
            m = _SIZE.match(value)
            assert m is not None
            size = int(m.group(1)) * _UNIT[m.group(2).lower()]
        elif key == "mode" and re.fullmatch(r"[0-7]{3,4}", value):
            mode = int(value, 8)
        else:
            rest.append(opt)
    return TmpfsMount(path, size, mode), rest


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_TASK_FIELDS = (
    "container",
    "endpoint_mode",
    "networks",
    "secrets",
    "ports",
    "tmpfs",
    "volume_options",
    "restart_condition",
)
_SERVICE_FIELDS = ("replicas", "update_order", "labels")


def _hash(data: Any) -> str:
    return hashlib.sha256(_ENCODER.encode(data).encode()).hexdigest()


def spec_hashes(spec: SwarmServiceSpec) -> tuple[str, str, str]:
    """(config hash, task hash, per-field short hashes) of a service spec.

    The hash labels themselves and the envd version are left out, so a
    hash only moves when something swarm would act on moved.
    """
    container = replace(
        spec.container,
        labels={k: v for k, v in spec.container.labels.items() if k != TASK_HASH_LABEL},
    )
    service_labels = {
        k: v
        for k, v in spec.labels.items()
        if k not in (labels.CONFIG_HASH, labels.FIELD_HASHES, labels.VERSION)
    }
    parts: dict[str, Any] = {}
    for name in _TASK_FIELDS:
        parts[name] = _plain(container if name == "container" else getattr(spec, name))
    parts["replicas"] = spec.replicas
    parts["update_order"] = spec.update_order
    parts["labels"] = service_labels
    task = _hash({k: parts[k] for k in _TASK_FIELDS})
    full = _hash(parts)
    # Per field of the container too, so a plan can say "env changed".
    short: dict[str, Any] = {k: parts[k] for k in _TASK_FIELDS if k != "container"}
    short.update({k: parts[k] for k in _SERVICE_FIELDS})
    for f in fields(container):
        if f.name in ("name", "ports", "networks", "secrets", "tmpfs"):
            continue
        short[f"container.{f.name}"] = _plain(getattr(container, f.name))
    field_hashes = ",".join(f"{k}={_hash(v)[:8]}" for k, v in sorted(short.items()))
    return full, task, field_hashes


def desire_swarm(
    desired: DesiredProject,
    loaded: LoadedSpec,
    image_ids: Mapping[str, str | None],
    endpoint_mode: str = "vip",
) -> SwarmDesired:
    """Pure: the swarm objects for a desired project.

    ``image_ids`` maps an image reference to its id on this node (None: not
    present here, the swarm nodes pull it). ``endpoint_mode`` "vip" publishes
    ports on the routing mesh; "dnsrr" (for kernels without IPVS) resolves
    service names to the tasks' addresses and publishes ports in host mode.
    """
    publish_mode = "ingress" if endpoint_mode == "vip" else "host"
    project = desired.project
    common = project_labels(project)
    env_labels = {labels.ENVIRONMENT: desired.environment} if desired.environment else {}
    notes: list[str] = []

    networks: dict[str, SwarmNetwork] = {}
    for key, net in sorted(desired.networks.items()):
        if net.external:
            networks[key] = SwarmNetwork(key, net.name, {}, external=True)
            continue
        driver = "overlay" if net.driver in ("bridge", "overlay", "") else net.driver
        if net.driver not in ("bridge", "overlay", ""):
            notes.append(f"networks.{key}: driver {net.driver!r} is used as is on the swarm")
        user = {k: v for k, v in net.labels.items() if not k.startswith(labels.PREFIX)}
        networks[key] = SwarmNetwork(
            key=key,
            name=net.name,
            labels={
                **user,
                **common,
                **env_labels,
                STACK_NAMESPACE: project,
                labels.NETWORK: key,
                labels.VERSION: __version__,
            },
            internal=net.internal,
            driver=driver,
        )

    secrets: dict[str, SwarmSecret] = {}
    services: dict[str, SwarmService] = {}
    spec_services = loaded.spec.services
    for name in sorted(desired.services):
        dsvc = desired.services[name]
        svc = spec_services[name]
        t = dsvc.template
        where = f"services.{name}"

        refs: list[SecretRef] = []
        for ssec, sfile in zip(svc.secrets, t.secrets, strict=True):
            value_digest = secret_digest(sfile.value)
            sname = secret_name(project, ssec.source, value_digest)
            secrets[sname] = SwarmSecret(
                key=ssec.source,
                name=sname,
                labels={
                    **common,
                    **env_labels,
                    STACK_NAMESPACE: project,
                    SECRET_LABEL: ssec.source,
                },
                value=sfile.value,
            )
            target = sfile.target
            if target.startswith(SECRETS_DIR):
                target = target[len(SECRETS_DIR) :]
            refs.append(SecretRef(sname, target, str(sfile.uid), str(sfile.gid), sfile.mode))

        ports: list[PublishedPort] = []
        for p in t.ports:
            if p.host_ip not in ("", "0.0.0.0", "::"):
                notes.append(
                    f"{where}.ports: host_ip {p.host_ip} cannot be expressed on a swarm: port"
                    f" {p.host_port or p.container_port} is published on every interface of"
                    " every node that runs the service"
                )
            ports.append(PublishedPort(p.container_port, p.host_port, p.protocol, publish_mode))

        tmpfs: list[TmpfsMount] = []
        for path, opts in t.tmpfs:
            mount, rest = parse_tmpfs(path, opts)
            tmpfs.append(mount)
            if rest:
                notes.append(
                    f"{where}.tmpfs: options {','.join(rest)} of {path} cannot be expressed"
                    " on a swarm (size and mode only)"
                )

        volume_options: dict[str, VolumeOptions] = {}
        for m in t.mounts:
            if m.type == "bind":
                notes.append(
                    f"{where}.volumes: bind mount {m.source} must exist on every node that"
                    " runs the service"
                )
            if m.type != "volume" or not m.source:
                continue
            vol = next((v for v in desired.volumes.values() if v.name == m.source), None)
            if vol is None or vol.external:
                continue
            volume_options[m.source] = VolumeOptions(
                labels={
                    **{k: v for k, v in vol.labels.items() if not k.startswith(labels.PREFIX)},
                    **common,
                    **env_labels,
                    labels.VOLUME: vol.key,
                },
                driver=vol.driver,
                driver_opts=dict(vol.driver_opts),
            )

        image_id = image_ids.get(dsvc.image_ref)
        container_labels = {**t.labels, STACK_NAMESPACE: project}
        if image_id and not dsvc.image_ref.startswith("sha256:") and "@" not in dsvc.image_ref:
            # A tag that now names another image must roll the tasks.
            container_labels[IMAGE_ID_LABEL] = image_id
        if dsvc.build is not None:
            notes.append(
                f"{where}.build: the image {dsvc.image_ref} is built on this node only;"
                " on a multi-node swarm push it to a registry and name it in 'image'"
            )
        if dsvc.depends_on:
            notes.append(
                f"{where}.depends_on: a swarm starts services in any order; the service must"
                " retry until " + ", ".join(sorted(dsvc.depends_on)) + " answer"
            )
        if svc.watch:
            notes.append(f"{where}.watch: a swarm deploy has no hot reload; the rules are unused")
        if t.restart in ("no", "") and dsvc.replicas:
            notes.append(
                f"{where}.restart: 'no' becomes restart condition 'none': a task that"
                " exits is not replaced"
            )

        order, why = update_order(dsvc, endpoint_mode)
        container = replace(
            t,
            name="",
            labels=container_labels,
            ports=(),
            networks=(),
            secrets=(),
            tmpfs=(),
        )
        spec = SwarmServiceSpec(
            name=service_name(project, name),
            labels={
                **common,
                **env_labels,
                STACK_NAMESPACE: project,
                labels.SERVICE: name,
            },
            container=container,
            replicas=dsvc.replicas,
            networks=tuple(NetworkAttachment(a.network, a.aliases) for a in t.networks),
            secrets=tuple(refs),
            ports=tuple(ports),
            tmpfs=tuple(tmpfs),
            volume_options=volume_options,
            restart_condition=restart_condition(t.restart),
            update_order=order,
            endpoint_mode=endpoint_mode,
        )
        full, task, short = spec_hashes(spec)
        spec = replace(
            spec,
            labels={
                **spec.labels,
                labels.CONFIG_HASH: full,
                labels.FIELD_HASHES: short,
                labels.VERSION: __version__,
            },
            container=replace(
                spec.container, labels={**spec.container.labels, TASK_HASH_LABEL: task}
            ),
        )
        services[name] = SwarmService(name, spec, full, task, short, why)
    return SwarmDesired(
        project=project,
        environment=desired.environment,
        services=services,
        networks=networks,
        secrets=secrets,
        notes=tuple(dict.fromkeys(notes)),
    )


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class SwarmObserved:
    services: tuple[ObservedService, ...] = ()
    secrets: tuple[ObservedSecret, ...] = ()
    networks: tuple[ObservedSwarmNetwork, ...] = ()


@dataclass(frozen=True)
class SwarmAction:
    kind: str  # create-network | create-secret | create-service | update-service | ok |
    #            remove-service | remove-secret | remove-network
    resource: str
    reason: str
    name: str = ""
    service: str = ""

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class SwarmPlan:
    project: str
    actions: tuple[SwarmAction, ...]

    @property
    def changes(self) -> tuple[SwarmAction, ...]:
        return tuple(a for a in self.actions if a.kind != "ok")

    def of(self, *kinds: str) -> list[SwarmAction]:
        return [a for a in self.actions if a.kind in kinds]


def _changed(old: str, new: str) -> list[str]:
    a = dict(p.split("=", 1) for p in old.split(",") if "=" in p)
    b = dict(p.split("=", 1) for p in new.split(",") if "=" in p)
    return sorted(k.removeprefix("container.") for k in set(a) | set(b) if a.get(k) != b.get(k))


def plan_swarm(desired: SwarmDesired, observed: SwarmObserved) -> SwarmPlan:
    """Pure: what a deploy does, in order, each action with its reason."""
    actions: list[SwarmAction] = []
    have_nets = {n.name for n in observed.networks}
    for net in sorted(desired.networks.values(), key=lambda n: n.name):
        if not net.external and net.name not in have_nets:
            actions.append(
                SwarmAction("create-network", f"network {net.name}", "does not exist", net.name)
            )
    have_secrets = {s.name for s in observed.secrets}
    for name, sec in sorted(desired.secrets.items()):
        if name not in have_secrets:
            others = [s.name for s in observed.secrets if s.labels.get(SECRET_LABEL) == sec.key]
            reason = "its value changed" if others else "does not exist"
            actions.append(SwarmAction("create-secret", f"secret {name}", reason, name))
    by_name = {s.name: s for s in observed.services}
    for svc_key, svc in sorted(desired.services.items()):
        resource = f"service {svc.spec.name}"
        current = by_name.get(svc.spec.name)
        if current is None:
            actions.append(
                SwarmAction("create-service", resource, "does not exist", svc.spec.name, svc_key)
            )
        elif current.labels.get(labels.CONFIG_HASH) != svc.config_hash:
            changed = _changed(current.labels.get(labels.FIELD_HASHES, ""), svc.field_hashes)
            reason = ("changed: " + ", ".join(changed)) if changed else "its config changed"
            actions.append(SwarmAction("update-service", resource, reason, svc.spec.name, svc_key))
        else:
            actions.append(SwarmAction("ok", resource, "up to date", svc.spec.name, svc_key))
    wanted = {s.spec.name for s in desired.services.values()}
    for obs in sorted(observed.services, key=lambda s: s.name):
        if obs.name not in wanted:
            actions.append(
                SwarmAction(
                    "remove-service",
                    f"service {obs.name}",
                    "no longer in the spec (or its profile is off)",
                    obs.id,
                    obs.labels.get(labels.SERVICE, ""),
                )
            )
    for obs_secret in sorted(observed.secrets, key=lambda s: s.name):
        if obs_secret.name not in desired.secrets:
            key = obs_secret.labels.get(SECRET_LABEL, "")
            reason = (
                "replaced by a new version"
                if any(s.key == key for s in desired.secrets.values())
                else "no longer used"
            )
            actions.append(
                SwarmAction("remove-secret", f"secret {obs_secret.name}", reason, obs_secret.id)
            )
    wanted_nets = {n.name for n in desired.networks.values()}
    for obs_net in sorted(observed.networks, key=lambda n: n.name):
        if obs_net.name not in wanted_nets:
            actions.append(
                SwarmAction(
                    "remove-network", f"network {obs_net.name}", "no longer used", obs_net.id
                )
            )
    return SwarmPlan(desired.project, tuple(actions))


# --------------------------------------------------------------------------- the engine side


def require_manager(engine: SwarmEngine) -> None:
    """Raise ``NotSwarmManager`` unless the engine manages an active swarm."""
    info = engine.swarm_info()
    if info.state == "active" and info.manager:
        return
    if info.state == "active":
        why = "it is a swarm worker; run envd against a manager node"
    elif info.state == "locked":
        why = "its swarm is locked; unlock it with `docker swarm unlock`"
    else:
        why = (
            f"swarm mode is {info.state}; start one with `docker swarm init`"
            " or point DOCKER_HOST at a manager"
        )
    raise NotSwarmManager(f"the Docker engine at {engine.host} is not a swarm manager: {why}")


def observe_swarm(engine: SwarmEngine, project: str) -> SwarmObserved:
    common = project_labels(project)
    return SwarmObserved(
        services=tuple(engine.list_services(common)),
        secrets=tuple(engine.list_secrets(common)),
        networks=tuple(engine.list_swarm_networks(common)),
    )


def ensure_images(
    engine: SwarmEngine, desired: DesiredProject, emit: Emit = discard
) -> dict[str, str | None]:
    """Build what must be built here; return every image reference's id on this node."""
    ids: dict[str, str | None] = {}
    for name in sorted(desired.services):
        svc = desired.services[name]
        ref = svc.image_ref
        if ref in ids:
            continue
        image = engine.inspect_image(ref)
        if build_reason(svc, image):
            assert svc.build is not None
            resource = f"image {ref}"
            emit(Event("build", resource, "", "working", name))
            image = engine.build_image(
                BuildRequest(
                    context=svc.build.context,
                    tag=ref,
                    dockerfile=svc.build.dockerfile,
                    args=svc.build.args,
                    target=svc.build.target,
                    labels={
                        labels.PROJECT: desired.project,
                        labels.SERVICE: name,
                        labels.CONTEXT_DIGEST: svc.build.digest,
                    },
                ),
                partial(_build_line, emit, resource, name),
            )
            emit(Event("build", resource, "", "done", name))
        if image is None and svc.pull == "never":
            raise UsageError(
                f"service {name!r}: image {ref!r} is not on this node and pull = 'never'"
            )
        ids[ref] = image.id if image is not None else None
    return ids


def build_reason(svc: DesiredService, image: Any) -> str:
    """Why the deploy builds this service's image first ("" when it does not)."""
    if svc.build is None:
        return ""
    if image is None:
        return "not built yet"
    if svc.build.digest and image.labels.get(labels.CONTEXT_DIGEST) != svc.build.digest:
        return "build context changed"
    if svc.pull == "always":
        return "pull policy is 'always'"
    return ""


def _build_line(emit: Emit, resource: str, service: str, line: str) -> None:
    emit(Event("build", resource, line, "working", service))


@dataclass
class DeployResult:
    plan: SwarmPlan
    services: dict[str, str] = field(default_factory=dict)  # service → "running" / "completed"
    warnings: list[str] = field(default_factory=list)


FAILED_TASKS_LIMIT = 3
_UPDATE_FAILED = ("paused", "rollback_started", "rollback_completed", "rollback_paused")


def deploy(
    engine: SwarmEngine,
    desired: SwarmDesired,
    emit: Emit = discard,
    wait: bool = True,
    timeout: float = 300.0,
    clock: Clock | None = None,
) -> DeployResult:
    """Converge the swarm onto ``desired``; raise ``EnvironmentFailed`` if it does not settle."""
    clock = clock or SystemClock()
    observed = observe_swarm(engine, desired.project)
    plan = plan_swarm(desired, observed)
    result = DeployResult(plan)

    # Networks: a local (bridge) network of the same name is someone else's.
    for action in plan.of("create-network"):
        existing = engine.find_network(action.name)
        if existing is not None:
            raise UsageError(
                f"network {action.name} exists already as a {existing.scope}"
                f" {existing.driver} network not made by this deploy (from `envd up`?);"
                " remove it (`envd down`) or deploy another environment (--env)"
            )
    for key, net in desired.networks.items():
        if net.external:
            found = engine.find_network(net.name)
            if found is None or found.scope != "swarm":
                raise UsageError(
                    f"networks.{key}: external network {net.name} must exist as a swarm-scoped"
                    " (overlay) network"
                )
    for action in plan.of("create-network"):
        net = next(n for n in desired.networks.values() if n.name == action.name)
        emit(Event("create-network", action.resource, "", "working"))
        try:
            engine.create_overlay_network(net.name, net.labels, net.internal, net.driver)
        except Conflict:
            pass  # created meanwhile: converged is converged
        emit(Event("create-network", action.resource, "", "done"))

    secret_ids = {s.name: s.id for s in observed.secrets}
    for action in plan.of("create-secret"):
        sec = desired.secrets[action.name]
        emit(Event("create-secret", action.resource, action.reason, "working"))
        try:
            secret_ids[sec.name] = engine.create_secret(sec.name, sec.labels, sec.value)
        except Conflict:
            # Same name → same value (the name holds its digest): adopt it.
            for s in engine.list_secrets({SECRET_LABEL: sec.key, **desired.common_labels()}):
                if s.name == sec.name:
                    secret_ids[sec.name] = s.id
            if sec.name not in secret_ids:
                raise
        emit(Event("create-secret", action.resource, "", "done"))

    by_name = {s.name: s for s in observed.services}
    service_ids = {s.name: s.id for s in observed.services}
    for action in plan.of("create-service", "update-service"):
        svc = desired.services[action.service]
        emit(Event(action.kind, action.resource, action.reason, "working", action.service))
        if action.kind == "create-service":
            service_ids[svc.spec.name] = engine.create_service(svc.spec, secret_ids)
        else:
            current = by_name[svc.spec.name]
            engine.update_service(current.id, current.version, svc.spec, secret_ids)
        emit(Event(action.kind, action.resource, "", "done", action.service))

    for action in plan.of("remove-service"):
        emit(Event("remove", action.resource, action.reason, "working", action.service))
        engine.remove_service(action.name)
        emit(Event("remove", action.resource, "", "done", action.service))

    # Each touched service's last update start before this deploy: only a newer
    # update is this deploy's (the engine may still report the previous one).
    baselines = {
        a.service: (by_name[a.name].update_started if a.name in by_name else "")
        for a in plan.of("create-service", "update-service")
    }
    if wait:
        result.services = wait_converged(
            engine, desired, service_ids, baselines, emit, timeout, clock
        )

    # Only once the consumers run the new version may an old secret go.
    deadline = clock.monotonic() + 30.0
    for action in plan.of("remove-secret"):
        emit(Event("remove-secret", action.resource, action.reason, "working"))
        if _retry(partial(engine.remove_secret, action.name), clock, deadline):
            emit(Event("remove-secret", action.resource, "", "done"))
        else:
            result.warnings.append(f"{action.resource} is still in use; the next deploy retries")
            emit(Event("remove-secret", action.resource, "still in use", "error"))
    for action in plan.of("remove-network"):
        emit(Event("remove-network", action.resource, "", "working"))
        if _retry(partial(_remove_network, engine, action.name), clock, deadline):
            emit(Event("remove-network", action.resource, "", "done"))
        else:
            result.warnings.append(f"{action.resource} is still in use; the next deploy retries")
    return result


def _remove_network(engine: SwarmEngine, name: str) -> None:
    try:
        engine.remove_network(name)
    except NotFound:
        pass


def _remove_volume(engine: SwarmEngine, name: str) -> None:
    try:
        engine.remove_volume(name)
    except NotFound:
        pass


def _retry(fn: Callable[[], None], clock: Clock, deadline: float) -> bool:
    """Call ``fn`` until it stops raising ``Conflict`` (in use) or the deadline passes."""
    while True:
        try:
            fn()
            return True
        except Conflict:
            if clock.monotonic() >= deadline:
                return False
            clock.sleep(0.25)


def service_state(
    svc: SwarmService,
    observed: ObservedService | None,
    tasks: list[ObservedTask],
    update_baseline: str | None = None,
) -> tuple[str, str]:
    """(state, detail) of one service from one observation: running, completed,
    converging or failed. Pure.

    ``update_baseline`` is when the service's last rolling update had started
    before this deploy touched it ("" for none): only an update that started
    since then is this deploy's, and only its failure fails the service. None:
    the deploy did not touch the service, whose update status is history.
    """
    if observed is None:
        return "converging", "not created yet"
    ours = update_baseline is not None and observed.update_started != update_baseline
    if ours and observed.update_state in _UPDATE_FAILED:
        msg = observed.update_message or observed.update_state
        if observed.update_state.startswith("rollback"):
            return (
                "failed",
                f"failed its rolling update; swarm rolled it back to the previous spec ({msg})",
            )
        return "failed", f"failed its rolling update, which is paused ({msg})"
    mine = [t for t in tasks if t.service_id == observed.id]
    current = [t for t in mine if t.task_hash == svc.task_hash]
    stale = [t for t in mine if t.desired_state == "running" and t.task_hash != svc.task_hash]
    failed = [t for t in current if t.state in ("failed", "rejected")]
    replicas = svc.spec.replicas
    running = [t for t in current if t.desired_state == "running" and t.state == "running"]
    if replicas == 0:
        active = [t for t in mine if t.desired_state == "running"]
        return ("running", "scaled to 0") if not active else ("converging", "scaling down")
    updating = ours and observed.update_state not in ("", "completed")
    if len(running) >= replicas and not stale and not updating:
        return "running", f"{len(running)}/{replicas} tasks running"
    completed = [t for t in current if t.state == "complete"]
    if svc.spec.restart_condition == "none" and len(completed) >= replicas and not running:
        return "completed", "every task completed"
    if len(failed) >= FAILED_TASKS_LIMIT:
        last = max(failed, key=lambda t: t.timestamp)
        code = f" (exit code {last.exit_code})" if last.exit_code else ""
        return (
            "failed",
            f"had {len(failed)} tasks fail; the last: {last.error or last.message}{code}",
        )
    detail = f"{len(running)}/{replicas} tasks running"
    if stale:
        detail += f", {len(stale)} on the previous spec"
    if updating:
        detail += ", rolling update in progress"
    waiting = [t for t in current if t.desired_state == "running" and t.state != "running"]
    stuck = next((t for t in waiting if t.error), None)
    if stuck is not None:  # e.g. "no suitable node (host-mode port already in use on 1 node)"
        detail += f"; a task is {stuck.state}: {stuck.error}"
    elif failed:
        last = max(failed, key=lambda t: t.timestamp)
        detail += f"; last failure: {last.error or last.message}"
    return "converging", detail


STABLE_SECONDS = 2.0


def _needs_watching(svc: SwarmService) -> bool:
    hc = svc.spec.container.healthcheck
    return hc is None or not hc.test or hc.test[0] == "NONE"


def _failed_tasks(
    svc: SwarmService, observed: ObservedService | None, tasks: list[ObservedTask]
) -> int:
    if observed is None:
        return 0
    return sum(
        1
        for t in tasks
        if t.service_id == observed.id
        and t.task_hash == svc.task_hash
        and t.state in ("failed", "rejected")
    )


def wait_converged(
    engine: SwarmEngine,
    desired: SwarmDesired,
    service_ids: Mapping[str, str],
    baselines: Mapping[str, str],
    emit: Emit,
    timeout: float,
    clock: Clock,
) -> dict[str, str]:
    """Poll (one service list + one task list per tick) until every service settles."""
    deadline = clock.monotonic() + timeout
    settled: dict[str, str] = {}
    last_detail: dict[str, str] = {}
    common = desired.common_labels()
    touched = set(baselines)
    running_since: dict[str, tuple[float, int]] = {}
    for name in sorted(touched):
        emit(Event("waiting", f"service {desired.services[name].spec.name}", "", "waiting", name))
    while True:
        observed = {s.name: s for s in engine.list_services(common)}
        ids = [s.id for s in observed.values()] or list(service_ids.values())
        tasks = engine.list_tasks(ids)
        failures: list[ServiceFailure] = []
        for name, svc in sorted(desired.services.items()):
            if name in settled:
                continue
            state, detail = service_state(
                svc, observed.get(svc.spec.name), tasks, baselines.get(name)
            )
            last_detail[name] = detail
            resource = f"service {svc.spec.name}"
            if state == "running" and name in touched and _needs_watching(svc):
                # Without a healthcheck, "running" may be a crash loop between two
                # crashes: the tasks must stay up, without new failures, a moment.
                obs = observed.get(svc.spec.name)
                failures_now = _failed_tasks(svc, obs, tasks)
                since = running_since.setdefault(name, (clock.monotonic(), failures_now))
                if failures_now > since[1]:
                    running_since[name] = (clock.monotonic(), failures_now)
                    state, detail = "converging", "a task failed; watching again"
                elif clock.monotonic() - since[0] < STABLE_SECONDS:
                    state = "converging"
            elif state != "running":
                running_since.pop(name, None)
            if state in ("running", "completed"):
                settled[name] = state
                if name in touched:
                    emit(
                        Event(
                            "ready" if state == "running" else "completed",
                            resource,
                            detail,
                            "done",
                            name,
                        )
                    )
            elif state == "failed":
                emit(Event("failed", resource, detail, "error", name))
                failures.append(ServiceFailure(name, detail))
        if failures:
            raise EnvironmentFailed(failures)
        if len(settled) == len(desired.services):
            return settled
        if clock.monotonic() >= deadline:
            raise EnvironmentFailed(
                [
                    ServiceFailure(n, f"did not converge within {timeout:g}s ({last_detail[n]})")
                    for n in sorted(desired.services)
                    if n not in settled
                ]
            )
        clock.sleep(0.25)


# --------------------------------------------------------------------------- down / status


@dataclass
class DownResult:
    services: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def down(
    engine: SwarmEngine,
    project: str,
    emit: Emit = discard,
    volumes: bool = False,
    timeout: float = 60.0,
    clock: Clock | None = None,
) -> DownResult:
    """Remove every service, secret and network (and with ``volumes`` this node's
    volumes) labelled as this project's swarm deploy."""
    clock = clock or SystemClock()
    common = project_labels(project)
    result = DownResult()
    for svc in sorted(engine.list_services(common), key=lambda s: s.name):
        emit(Event("remove", f"service {svc.name}", "", "working"))
        engine.remove_service(svc.id)
        result.services.append(svc.name)
        emit(Event("remove", f"service {svc.name}", "", "done"))
    deadline = clock.monotonic() + timeout
    for sec in sorted(engine.list_secrets(common), key=lambda s: s.name):
        emit(Event("remove-secret", f"secret {sec.name}", "", "working"))
        if _retry(partial(engine.remove_secret, sec.id), clock, deadline):
            result.secrets.append(sec.name)
            emit(Event("remove-secret", f"secret {sec.name}", "", "done"))
        else:
            result.warnings.append(f"secret {sec.name} is still in use")
    # The tasks' containers leave their networks asynchronously.
    for net in sorted(engine.list_swarm_networks(common), key=lambda n: n.name):
        emit(Event("remove-network", f"network {net.name}", "", "working"))
        if _retry(partial(_remove_network, engine, net.id), clock, deadline):
            result.networks.append(net.name)
            emit(Event("remove-network", f"network {net.name}", "", "done"))
        else:
            result.warnings.append(f"network {net.name} is still in use")
    # A removed overlay network lingers on the node until the tasks' containers
    # are gone; a deploy right after `down` must not find it.
    while engine.list_swarm_networks(common):
        if clock.monotonic() >= deadline:
            result.warnings.append("the project's networks are still being removed")
            break
        clock.sleep(0.2)
    if volumes:
        for vol in engine.list_volumes(project):
            if vol.labels.get(TARGET_LABEL) != TARGET:
                continue

            emit(Event("remove", f"volume {vol.name}", "", "working"))
            if _retry(partial(_remove_volume, engine, vol.name), clock, deadline):
                result.volumes.append(vol.name)
                emit(Event("remove", f"volume {vol.name}", "", "done"))
            else:
                result.warnings.append(f"volume {vol.name} is still in use")
    return result


def status(
    engine: SwarmEngine, project: str, desired: SwarmDesired | None = None
) -> dict[str, Any]:
    """Per service: desired vs running tasks, update state, ports, and its tasks."""
    services = engine.list_services(project_labels(project))
    tasks = engine.list_tasks([s.id for s in services])
    try:
        nodes = engine.node_names()
    except EngineError:
        nodes = {}
    report: dict[str, Any] = {"project": project, "target": TARGET, "services": []}
    seen: set[str] = set()
    for svc in sorted(services, key=lambda s: s.name):
        key = svc.labels.get(labels.SERVICE, svc.name)
        seen.add(key)
        want = desired.services.get(key) if desired is not None else None
        drift = ""
        if desired is not None:
            if want is None:
                drift = "not in the spec"
            elif svc.labels.get(labels.CONFIG_HASH) != want.config_hash:
                changed = _changed(svc.labels.get(labels.FIELD_HASHES, ""), want.field_hashes)
                drift = "changed: " + (", ".join(changed) or "config")
        mine = [t for t in tasks if t.service_id == svc.id]
        # Newest first per slot; keep the recent history swarm retains.
        mine.sort(key=lambda t: (t.slot, t.timestamp), reverse=False)
        report["services"].append(
            {
                "name": key,
                "swarm_name": svc.name,
                "id": svc.id[:12],
                "version": svc.version,
                "desired_replicas": svc.replicas,
                "running": sum(
                    1 for t in mine if t.state == "running" and t.desired_state == "running"
                ),
                "update": svc.update_state or "-",
                "update_message": svc.update_message,
                "ports": [
                    f"{p.published}->{p.target}/{p.protocol}" for p in svc.ports if p.published
                ],
                "drift": drift,
                "tasks": [
                    {
                        "id": t.id[:12],
                        "slot": t.slot,
                        "node": nodes.get(t.node_id, t.node_id[:12]),
                        "state": t.state,
                        "desired_state": t.desired_state,
                        "error": t.error,
                        "current": bool(want is not None and t.task_hash == want.task_hash),
                        "ports": _task_ports(engine, t),
                        "since": t.timestamp,
                    }
                    for t in mine
                ],
            }
        )
    if desired is not None:
        for key, want in sorted(desired.services.items()):
            if key not in seen:
                report["services"].append(
                    {
                        "name": key,
                        "swarm_name": want.spec.name,
                        "id": "",
                        "version": 0,
                        "desired_replicas": want.spec.replicas,
                        "running": 0,
                        "update": "-",
                        "update_message": "",
                        "ports": [],
                        "drift": "not deployed",
                        "tasks": [],
                    }
                )
    return report


def resolve_endpoint_mode(engine: SwarmEngine, requested: str) -> str:
    """``auto``: virtual IPs, unless this engine's kernel has no IPVS (then DNS round robin)."""
    if requested != "auto":
        return requested
    return "dnsrr" if ipvs_missing(engine.host) else "vip"


def _task_ports(engine: SwarmEngine, task: ObservedTask) -> list[str]:
    """Host-mode ports a running task published, with their addresses when it runs here."""
    if not task.ports or task.state != "running":
        return []
    if task.container_id:
        try:
            found = engine.container_ports(task.container_id)
        except EngineError:
            found = None
        if found is not None:
            return found
    return [f"{p.published}->{p.target}/{p.protocol}" for p in task.ports if p.published]


def prepare_swarm(
    engine: SwarmEngine,
    loaded: LoadedSpec,
    desired: DesiredProject,
    emit: Emit = discard,
    endpoint_mode: str = "auto",
    build: bool = True,
) -> SwarmDesired:
    """Build what must be built (unless ``build`` is false), look up image ids on this
    node, and desire the swarm objects."""
    builds: list[str] = []
    if build:
        ids = ensure_images(engine, desired, emit)
    else:
        ids = {}
        for name, svc in sorted(desired.services.items()):
            if svc.image_ref not in ids:
                image = engine.inspect_image(svc.image_ref)
                ids[svc.image_ref] = image.id if image is not None else None
                reason = build_reason(svc, image)
                if reason:
                    builds.append(f"image {svc.image_ref} ({name}): {reason}")
    mode = resolve_endpoint_mode(engine, endpoint_mode)
    wanted = replace(desire_swarm(desired, loaded, ids, mode), builds=tuple(builds))
    if mode == "dnsrr" and endpoint_mode == "auto":
        note = (
            "this engine's kernel has no IPVS, so swarm virtual IPs and the routing mesh do not"
            " work: services are reached by DNS round robin and ports are published in host mode"
            " on the node running each task (--endpoint-mode vip overrides)"
        )
        wanted = replace(wanted, notes=(note, *wanted.notes))
    return wanted
