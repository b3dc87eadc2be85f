"""``desire_swarm`` (pure): a ``DesiredProject`` as swarm services, overlay
networks, versioned secrets ``<project>_<secret>_<digest[:12]>`` (the digest is
the keyed HMAC of the value, so a name never reveals it) and versioned configs
``<project>_<config>_<sha256[:12]>`` of their (not secret) content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from envd import __version__
from envd.core.desired import DesiredProject
from envd.spec.host_isolation import SWARM_MISSING
from envd.spec.load import LoadedSpec
from envd.swarm.mapping import (
    CONFIG_LABEL,
    IMAGE_ID_LABEL,
    SECRET_LABEL,
    SECRETS_DIR,
    STACK_NAMESPACE,
    SwarmConfig,
    SwarmDesired,
    SwarmNetwork,
    SwarmSecret,
    SwarmService,
    check_swarm_config,
    config_name,
    parse_tmpfs,
    project_labels,
    restart_condition,
    secret_name,
    service_name,
    spec_hashes,
    swarm_net_notes,
    update_order,
)
from envd.values import labels
from envd.values.swarm_types import (
    TASK_HASH_LABEL,
    ConfigRef,
    PublishedPort,
    SecretRef,
    SwarmServiceSpec,
    TmpfsMount,
    VolumeOptions,
)
from envd.values.types import NetworkAttachment


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

    def stack_labels(**extra: str) -> dict[str, str]:
        """The labels of every swarm object of this deploy, and ``extra``."""
        return {**common, **env_labels, STACK_NAMESPACE: project, **extra}

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
            labels={**user, **stack_labels(**{labels.NETWORK: key, labels.VERSION: __version__})},
            internal=net.internal,
            driver=driver,
        )

    secrets: dict[str, SwarmSecret] = {}
    configs: dict[str, SwarmConfig] = {}
    services: dict[str, SwarmService] = {}
    spec_services = loaded.spec.services
    for name in sorted(desired.services):
        dsvc = desired.services[name]
        svc = spec_services[name]
        t = dsvc.template
        where = f"services.{name}"

        refs: list[SecretRef] = []
        for ssec, sfile, value_digest in zip(
            svc.secrets, t.secrets, dsvc.secret_digests, strict=True
        ):
            sname = secret_name(project, ssec.source, value_digest)
            secrets[sname] = SwarmSecret(
                key=ssec.source,
                name=sname,
                labels=stack_labels(**{SECRET_LABEL: ssec.source}),
                value=sfile.value,
            )
            target = sfile.target
            if target.startswith(SECRETS_DIR):
                target = target[len(SECRETS_DIR) :]
            refs.append(SecretRef(sname, target, str(sfile.uid), str(sfile.gid), sfile.mode))

        # configs (Compose's `configs`): the name holds the content's digest
        config_refs: list[ConfigRef] = []
        for scfg, cfile in zip(svc.configs, t.configs, strict=True):
            check_swarm_config(scfg.source, cfile.value)
            cname = config_name(project, scfg.source, cfile.value)
            configs[cname] = SwarmConfig(
                key=scfg.source,
                name=cname,
                labels=stack_labels(**{CONFIG_LABEL: scfg.source}),
                value=cfile.value,
            )
            config_refs.append(
                ConfigRef(cname, cfile.target, str(cfile.uid), str(cfile.gid), cfile.mode)
            )

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
            if m.selinux:
                # A service's mount has no relabel option (propagation it has).
                notes.append(
                    f"{where}.volumes: SELinux relabel {m.selinux} of {m.target} cannot be"
                    " expressed on a swarm; left out"
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
        for key, why in SWARM_MISSING.items():  # issue 12's host settings
            if getattr(svc, key):
                notes.append(f"{where}.{key}: {why}; left out")
        for key in ("post_start", "pre_stop"):
            if getattr(svc, key):
                notes.append(f"{where}.{key}: a swarm deploy runs no lifecycle hooks")
        notes.extend(swarm_net_notes(where, svc))
        if t.restart_max_attempts:
            notes.append(
                f"{where}.restart: the retry count {t.restart_max_attempts} is not carried;"
                " swarm restarts a failed task without limit"
            )
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
            configs=(),
            tmpfs=(),
            exposed=(),  # names and networking: see swarm_net_notes
            network_mode="",
        )
        spec = SwarmServiceSpec(
            name=service_name(project, name),
            labels=stack_labels(**{labels.SERVICE: name}),
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
            configs=tuple(config_refs),
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
        configs=configs,
    )


# --------------------------------------------------------------------------- plan
