"""Desired state: what each container should look like (its hash: ``container_hash``).

``desire`` turns a loaded spec (plus secret values and build-context
digests) into engine-neutral values. ``container_for`` stamps one replica
with the image id it will run and the ``dev.envd.config-hash`` label. The
hash covers exactly what forces a recreate — image id, command, env, mounts,
ports, networks, healthcheck, lifecycle hooks (as Compose's does) — and
nothing that does not (replicas, depends_on, profiles, watch rules).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from envd import __version__
from envd.core.container_hash import canonical as canonical
from envd.core.container_hash import config_hash, hooks_view
from envd.core.container_hash import desired_hash as desired_hash
from envd.core.hashing import digest, plain
from envd.core.host_settings import host_settings, shared_namespace_services
from envd.core.service_env import service_env
from envd.core.service_net import bind_dirs, exposed, network_ipam, network_mode
from envd.spec.compose_words import build_tag
from envd.values import labels
from envd.values.record import value
from envd.values.types import (
    ConfigFile,
    ContainerCreate,
    ExecHook,
    ExecOptions,
    Healthcheck,
    IpamPool,
    Mount,
    NetworkAttachment,
    PortBinding,
    SecretFile,
)

if TYPE_CHECKING:  # the desired state itself never needs pydantic (desired_cache)
    from envd.spec.load import LoadedSpec
    from envd.spec.models import Hook, Service
    from envd.values.keys import Keys


@value
class DesiredBuild:
    context: str
    dockerfile: str
    args: Mapping[str, str]
    target: str
    digest: str


@value
class DesiredDependency:
    condition: str  # started | healthy | completed
    required: bool = True
    restart: bool = False  # the daemon restarts the dependent when this one restarts


# supervisor: the daemon's heal policy of a service (never part of the config hash)
@value
class DesiredHeal:
    enabled: bool = True
    max: int = 5
    window: float = 300.0
    backoff: float = 2.0


@value
class DesiredService:
    name: str
    replicas: int
    depends_on: Mapping[str, DesiredDependency]
    image_ref: str
    pull: str
    build: DesiredBuild | None
    template: ContainerCreate  # name and envd labels are filled per replica
    restart: str
    # The keyed digest of each of template.secrets' values, in order: computed
    # once by ``desire`` (which holds the key) so hashing needs no key.
    secret_digests: tuple[str, ...] = ()
    # supervisor: heal policy, and a spec-marked one-shot (see DesiredProject.oneshot)
    heal: DesiredHeal = field(default_factory=DesiredHeal)
    oneshot: bool = False
    # Lifecycle hooks: run in each container after it starts / before it stops.
    post_start: tuple[ExecHook, ...] = ()
    pre_stop: tuple[ExecHook, ...] = ()
    # The spec's container_name: replica 1's name instead of <project>-<service>-1
    # (container_name refuses replicas > 1).
    fixed_name: str = ""

    def container_name(self, project: str, replica: int) -> str:
        if self.fixed_name:
            return self.fixed_name
        return f"{project}-{self.name}-{replica}"


@value
class DesiredNetwork:
    key: str  # the name in the spec ("default" for the implicit one)
    name: str  # the engine-side name
    external: bool = False
    driver: str = "bridge"
    internal: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    # Static addressing: the spec's ipam (empty: the engine picks a subnet).
    ipam_driver: str = ""
    ipam: tuple[IpamPool, ...] = ()
    enable_ipv6: bool = False


@value
class DesiredVolume:
    key: str
    name: str
    external: bool = False
    driver: str = "local"
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@value
class DesiredProject:
    project: str
    environment: str | None
    project_dir: str
    services: Mapping[str, DesiredService]
    networks: Mapping[str, DesiredNetwork]
    volumes: Mapping[str, DesiredVolume]
    # Bind sources `up` creates as directories when missing (Compose's rule:
    # every bind but one with create_host_path = false), absolute, sorted.
    bind_dirs: tuple[str, ...] = ()

    def oneshot(self, name: str) -> bool:
        """A service that runs to completion: marked ``oneshot`` or another's ``completed`` dependency."""
        svc = self.services.get(name)
        if svc is None:
            return False
        return svc.oneshot or name in self._completed_dependencies

    @cached_property
    def _completed_dependencies(self) -> frozenset[str]:
        # Once per project, not per question: status and apply ask of every service.
        return frozenset(
            dep
            for other in self.services.values()
            for dep, d in other.depends_on.items()
            if d.condition == "completed"
        )

    def levels(self) -> list[list[str]]:
        """Services grouped so each depends only on earlier groups."""
        remaining = dict(self.services)
        done: set[str] = set()
        out: list[list[str]] = []
        while remaining:
            level = sorted(
                n
                for n, s in remaining.items()
                if all(d in done or d not in self.services for d in s.depends_on)
            )
            if not level:  # a cycle; the loader rejects these, so be defensive
                level = sorted(remaining)
            out.append(level)
            for n in level:
                done.add(n)
                del remaining[n]
        return out


def network_name(project: str, key: str) -> str:
    return f"{project}_{key}"


def volume_name(project: str, key: str) -> str:
    return f"{project}_{key}"


def desire(
    loaded: LoadedSpec,
    secret_values: Mapping[str, bytes],
    build_digests: Mapping[str, str] | None = None,
    image_overrides: Mapping[str, str] | None = None,
    *,
    keys: Keys,
    config_values: Mapping[str, bytes] | None = None,
) -> DesiredProject:
    """Pure: the desired project. ``image_overrides`` pins refs (the lock file);
    ``keys`` digests the secret values (``envd.inputs.keys.load_keys``);
    ``config_values`` holds each used config's content (``envd.inputs.configs``)."""
    spec = loaded.spec
    project = loaded.project
    common = {labels.PROJECT: project}
    if loaded.environment:
        common[labels.ENVIRONMENT] = loaded.environment

    active = loaded.active_services()
    networks: dict[str, DesiredNetwork] = {}
    # A service with a network_mode joins no project network.
    used_networks = {
        n for s in active.values() if not s.network_mode for n in (s.networks or ["default"])
    }
    for key in sorted(used_networks):
        definition = spec.networks.get(key)
        if definition is not None and definition.external:
            networks[key] = DesiredNetwork(key, definition.name or key, external=True)
            continue
        net_name = definition.name if definition and definition.name else network_name(project, key)
        driver = definition.driver if definition else "bridge"
        internal = definition.internal if definition else False
        user_labels = dict(definition.labels) if definition else {}
        ipam_driver, pools, ipv6 = network_ipam(definition)
        hashed: dict[str, Any] = {
            "name": net_name,
            "driver": driver,
            "internal": internal,
            "labels": user_labels,
        }
        if ipam_driver or pools or ipv6:  # only then: older hashes stay as they were
            hashed["ipam"] = {"driver": ipam_driver, "config": [plain(p) for p in pools]}
            hashed["enable_ipv6"] = ipv6
        networks[key] = DesiredNetwork(
            key=key,
            name=net_name,
            driver=driver,
            internal=internal,
            labels={
                **user_labels,
                **common,
                labels.NETWORK: key,
                labels.CONFIG_HASH: digest(hashed),
                labels.VERSION: __version__,
            },
            ipam_driver=ipam_driver,
            ipam=pools,
            enable_ipv6=ipv6,
        )
    volumes: dict[str, DesiredVolume] = {}
    for key, vdef in spec.volumes.items():
        if vdef.external:
            volumes[key] = DesiredVolume(key, vdef.name or key, external=True)
        else:
            volumes[key] = DesiredVolume(
                key=key,
                name=vdef.name or volume_name(project, key),
                driver=vdef.driver,
                driver_opts=dict(vdef.driver_opts),
                labels={
                    **vdef.labels,
                    **common,
                    labels.VOLUME: key,
                    labels.CONFIG_HASH: digest(
                        {
                            "driver": vdef.driver,
                            "driver_opts": dict(vdef.driver_opts),
                            "labels": dict(vdef.labels),
                        }
                    ),
                    labels.VERSION: __version__,
                },
            )

    services: dict[str, DesiredService] = {}
    for name, svc in active.items():
        services[name] = _service(
            name,
            svc,
            loaded,
            networks,
            volumes,
            secret_values,
            keys,
            (build_digests or {}).get(name, ""),
            (image_overrides or {}).get(name),
            config_values or {},
        )
    return DesiredProject(
        project=project,
        environment=loaded.environment,
        project_dir=str(loaded.project_dir),
        services=services,
        networks=networks,
        volumes=volumes,
        bind_dirs=bind_dirs(loaded, active),
    )


def _service(
    name: str,
    svc: Service,
    loaded: LoadedSpec,
    networks: Mapping[str, DesiredNetwork],
    volumes: Mapping[str, DesiredVolume],
    secret_values: Mapping[str, bytes],
    keys: Keys,
    build_digest: str,
    image_override: str | None,
    config_values: Mapping[str, bytes],
) -> DesiredService:
    env, _unset = service_env(loaded.env_files.get(name, {}), svc.env, loaded.variables)

    mounts: list[Mount] = []
    tmpfs: list[tuple[str, str]] = []
    for m in svc.volumes:
        if m.type == "tmpfs":
            tmpfs.append((m.target, ""))
        elif m.type == "bind":
            mounts.append(
                Mount(
                    "bind",
                    m.target,
                    loaded.bind_sources[m.source],
                    m.read_only,
                    m.selinux or "",
                    m.propagation or "",
                )
            )
        elif m.source:
            mounts.append(
                Mount("volume", m.target, volumes[m.source].name, m.read_only, m.selinux or "")
            )
        else:
            mounts.append(Mount("volume", m.target, "", m.read_only))
    for entry in svc.tmpfs:
        path, _, opts = entry.partition(":")
        tmpfs.append((path, opts))

    attachments = []
    mode, joined = network_mode(svc, loaded)
    for key, net in ({} if mode else svc.networks or {"default": None}).items():  # type: ignore[dict-item]
        aliases = [name, *(net.aliases if net else [])]
        attachments.append(
            NetworkAttachment(
                networks[key].name,
                tuple(dict.fromkeys(aliases)),
                net.ipv4_address if net else "",
                net.ipv6_address if net else "",
            )
        )

    hc: Healthcheck | None = None
    if svc.healthcheck is not None:
        if svc.healthcheck.disable:
            hc = Healthcheck(("NONE",))
        else:
            h = svc.healthcheck
            hc = Healthcheck(
                tuple(h.test), h.interval, h.timeout, h.retries, h.start_period, h.start_interval
            )

    secret_files = tuple(
        SecretFile(
            target=s.path,
            uid=int(s.uid),
            gid=int(s.gid),
            mode=s.mode,
            value=secret_values.get(s.source, b""),
        )
        for s in svc.secrets
    )

    build: DesiredBuild | None = None
    if svc.build is not None:
        build = DesiredBuild(
            context=loaded.build_contexts[svc.build.context],
            dockerfile=svc.build.dockerfile,
            args=dict(sorted(svc.build.args.items())),
            target=svc.build.target,
            digest=build_digest,
        )
    image_ref = svc.image or build_tag(loaded.project, name)
    if image_override:
        image_ref = image_override

    template = ContainerCreate(
        name="",
        image=image_ref,
        labels=dict(sorted(svc.labels.items())),
        command=tuple(svc.command) if svc.command is not None else None,
        entrypoint=tuple(svc.entrypoint) if svc.entrypoint is not None else None,
        working_dir=svc.working_dir,
        user=svc.user,
        hostname=svc.hostname,
        env=tuple(sorted(env.items())),
        ports=tuple(
            PortBinding(p.target, p.protocol, p.host_ip, p.published or None) for p in svc.ports
        ),
        mounts=tuple(mounts),
        tmpfs=tuple(tmpfs),
        networks=tuple(attachments),
        healthcheck=hc,
        restart=svc.restart,
        restart_max_attempts=svc.restart_max_attempts,
        init=svc.init,
        stop_signal=svc.stop_signal,
        stop_timeout=max(0, math.ceil(svc.stop_grace_period)),
        read_only=svc.read_only,
        cap_add=tuple(sorted(svc.cap_add)),
        cap_drop=tuple(sorted(svc.cap_drop)),
        secrets=secret_files,
        tty=svc.tty,
        stdin_open=svc.stdin_open,
        host=host_settings(loaded.project, svc),
        # configs (Compose's `configs`: read-only files)
        configs=tuple(
            ConfigFile(
                target=c.path,
                uid=int(c.uid),
                gid=int(c.gid),
                mode=c.mode,
                value=config_values.get(c.source, b""),
            )
            for c in svc.configs
        ),
        # names and networking
        exposed=exposed(svc.expose),
        network_mode=mode,
    )
    depends_on = {
        dep: DesiredDependency(d.condition, d.required, d.restart)
        for dep, d in svc.depends_on.items()
    }
    for dep in shared_namespace_services(svc):
        # Compose's rule: sharing a service's namespace starts it first.
        depends_on.setdefault(dep, DesiredDependency("started"))
    if joined:
        # network_mode service:NAME, as Compose: NAME first, and restarted with it
        # (each start of NAME makes a new network namespace; a restart rejoins it).
        depends_on.setdefault(joined, DesiredDependency("started", restart=True))
    return DesiredService(
        name=name,
        replicas=svc.replicas,
        depends_on=depends_on,
        fixed_name=svc.container_name or "",
        image_ref=image_ref,
        pull=svc.pull,
        build=build,
        template=template,
        restart=svc.restart,
        secret_digests=tuple(keys.digest(f.value) for f in secret_files),
        heal=DesiredHeal(
            svc.heal.enabled, svc.heal.max, float(svc.heal.window), float(svc.heal.backoff)
        ),
        oneshot=svc.oneshot,
        post_start=tuple(exec_hook(h) for h in svc.post_start),
        pre_stop=tuple(exec_hook(h) for h in svc.pre_stop),
    )


def exec_hook(hook: Hook) -> ExecHook:
    """A spec hook (lifecycle or sync+exec) as the engine-neutral value."""
    return ExecHook(
        tuple(hook.command),
        ExecOptions(
            user=hook.user,
            privileged=hook.privileged,
            working_dir=hook.working_dir,
            env=tuple(sorted(hook.environment.items())),
        ),
    )


def container_for(
    project: DesiredProject, service: DesiredService, replica: int, image_id: str
) -> ContainerCreate:
    """The exact create request for one replica, with its config-hash labels."""
    # The hash covers the image *id* (a re-pulled or rebuilt tag recreates),
    # while the container is created from the reference so `docker ps` reads well.
    full, fields = config_hash(
        replace(service.template, image=image_id), service.secret_digests, hooks_view(service)
    )
    spec = service.template
    envd_labels = {
        labels.PROJECT: project.project,
        labels.SERVICE: service.name,
        labels.REPLICA: str(replica),
        labels.CONFIG_HASH: full,
        labels.FIELD_HASHES: fields,
        labels.VERSION: __version__,
    }
    if project.environment:
        envd_labels[labels.ENVIRONMENT] = project.environment
    return replace(
        spec,
        name=service.container_name(project.project, replica),
        labels={**spec.labels, **envd_labels},
    )
