"""``envd export --format swarm``: a version 3.9 stack file for ``docker stack deploy``.

Mapped as ``envd deploy --target swarm`` maps the spec (restart condition,
update order, tmpfs sizes, overlay networks): the rules come from the pure
``envd.swarm.mapping``, never from the engine side of ``envd.swarm``.
"""

from __future__ import annotations

from typing import Any

from envd.core.desired import desire
from envd.interop.compose_fields import (
    common_service,
    escape_dollars,
    service_networks,
    top_networks,
    top_volumes,
    volume_short,
)
from envd.interop.compose_host import stack_host
from envd.interop.render import Export
from envd.interop.tmpfs import tmpfs_size
from envd.spec.compose_words import build_tag, restart_condition
from envd.spec.load import LoadedSpec
from envd.spec.models import Heal
from envd.swarm.mapping import swarm_net_notes, update_order
from envd.values.keys import Keys

ENDPOINT_MODES = ("vip", "dnsrr")


def to_stack(loaded: LoadedSpec, endpoint_mode: str = "vip") -> Export:
    """A stack file (Compose 3.9) for ``docker stack deploy``, mapped like ``envd deploy``.

    ``endpoint_mode`` as ``envd deploy --endpoint-mode``: "vip" publishes ports
    on the routing mesh; "dnsrr" (kernels without IPVS) resolves service names
    to the tasks and publishes ports in host mode, which changes the update order.
    """
    if endpoint_mode not in ENDPOINT_MODES:
        raise ValueError(f"unknown endpoint mode {endpoint_mode!r}")
    publish_mode = "ingress" if endpoint_mode == "vip" else "host"
    spec = loaded.spec
    # The deploy's own desired state, so the update order is the deploy's rule.
    # Without secret values nothing here is hashed: no user key is read.
    desired = desire(loaded, {}, keys=Keys(b""))
    notes: list[str] = []
    services: dict[str, Any] = {}
    active = loaded.active_services()
    for name, svc in spec.services.items():
        where = f"services.{name}"
        if name not in active:
            notes.append(
                f"{where}: left out, its profiles ({', '.join(svc.profiles)}) are not active"
                " (a stack has no profiles; pass --profile to include it)"
            )
            continue
        out = common_service(name, svc)
        if svc.build is not None:
            tag = svc.image or build_tag(loaded.project, name)
            out = {"image": tag, **out}
            notes.append(
                f"{where}.build: a stack cannot build; build and push {tag} to a registry"
                " every node can pull from"
            )
        if svc.pull != "missing":
            notes.append(
                f"{where}.pull: swarm nodes always pull tags; pull = {svc.pull!r} is unused"
            )
        ports = []
        for p in svc.ports:
            port: dict[str, Any] = {
                "target": p.target,
                "protocol": p.protocol,
                "mode": publish_mode,
            }
            if p.published:
                port["published"] = p.published
            if p.host_ip:
                notes.append(
                    f"{where}.ports: host_ip {p.host_ip} cannot be expressed in a stack; the"
                    + (
                        " routing mesh publishes on every interface"
                        if endpoint_mode == "vip"
                        else " port is published on every interface of each node running a task"
                    )
                )
            ports.append(port)
        if ports:
            out["ports"] = ports
        volumes: list[Any] = []
        for m in svc.volumes:
            volumes.append(volume_short(m))
            if m.type == "bind":
                notes.append(
                    f"{where}.volumes: bind mount {m.source} must exist on every node (a stack"
                    " resolves it relative to the stack file)"
                )
            if m.selinux:
                notes.append(
                    f"{where}.volumes: SELinux relabel {m.selinux} of {m.target} is ignored by"
                    " docker stack deploy (swarm services cannot relabel)"
                )
        for entry in svc.tmpfs:
            path, size, rest = tmpfs_size(entry)
            tm: dict[str, Any] = {"type": "tmpfs", "target": path}
            if size is not None:
                tm["tmpfs"] = {"size": size}
            if rest:
                notes.append(
                    f"{where}.tmpfs: options {','.join(rest)} of {path} cannot be expressed in"
                    " a stack (a size only)"
                )
            volumes.append(tm)
        if volumes:
            out["volumes"] = volumes
        nets = service_networks(svc)
        if nets is not None:
            out["networks"] = nets
        if svc.depends_on:
            notes.append(
                f"{where}.depends_on: `docker stack deploy` ignores depends_on; the service must"
                " retry until its dependencies answer"
            )
        deploy: dict[str, Any] = {"replicas": svc.replicas}
        deploy["restart_policy"] = {"condition": restart_condition(svc.restart)}
        if svc.restart == "on-failure" and svc.restart_max_attempts:
            deploy["restart_policy"]["max_attempts"] = svc.restart_max_attempts
        if endpoint_mode != "vip":
            deploy["endpoint_mode"] = endpoint_mode
        order, _why = update_order(desired.services[name], endpoint_mode)
        deploy["update_config"] = {"parallelism": 1, "order": order, "failure_action": "rollback"}
        host_fields, host_deploy = stack_host(where, svc, notes)  # issue 12's host settings
        if (out.get("healthcheck") or {}).pop("start_interval", None):
            notes.append(f"{where}.healthcheck.start_interval: a 3.9 stack file has none; left out")
        out.update(host_fields)
        deploy.update(host_deploy)
        out["deploy"] = deploy
        if svc.watch:
            notes.append(f"{where}.watch: a stack has no hot reload; the rules are unused")
        # supervisor: the daemon's healing and one-shot marks have no stack field
        if svc.heal != Heal():
            notes.append(f"{where}.heal: unused; swarm replaces an unhealthy task itself")
        if svc.oneshot:
            notes.append(f"{where}.oneshot: unused; a stack service is restarted by its policy")
        for key in ("post_start", "pre_stop"):
            if getattr(svc, key):
                notes.append(f"{where}.{key}: `docker stack deploy` runs no lifecycle hooks")
        notes.extend(swarm_net_notes(where, svc))
        services[name] = out
    doc: dict[str, Any] = {"version": "3.9", "services": services}
    if spec.volumes:
        doc["volumes"] = top_volumes(spec)
    networks = top_networks(spec, stack=True)
    for key, net in spec.networks.items():
        pools = net.ipam.config if net.ipam is not None else []
        if any(c.ip_range or c.gateway or c.aux_addresses for c in pools) or net.enable_ipv6:
            notes.append(
                f"networks.{key}: a stack file takes an ipam pool's subnet only; ip_range,"
                " gateway, aux_addresses and enable_ipv6 are left out"
            )
    used = {n for s in active.values() for n in (s.networks or ["default"])}
    if "default" in used and "default" not in networks:
        networks["default"] = {"driver": "overlay", "attachable": True}
    if networks:
        doc["networks"] = networks
    if spec.secrets:
        secrets: dict[str, Any] = {}
        for key, sdef in spec.secrets.items():
            if sdef.file is not None:
                secrets[key] = {"file": sdef.file}
            else:
                secrets[key] = {"external": True, "name": f"{loaded.project}_{key}"}
                how = f"${sdef.env}" if sdef.env else f"`{' '.join(sdef.command or [])}`"
                notes.append(
                    f"secrets.{key}: a stack reads secrets from files; create it first:"
                    f" printf %s {how} | docker secret create {loaded.project}_{key} -"
                )
        doc["secrets"] = secrets
    if spec.configs:  # configs (Compose's `configs`: read-only files)
        from envd.interop.config_export import stack_configs

        doc["configs"] = stack_configs(spec, loaded.project, notes)
    header = (
        f"# Exported by envd from {loaded.file.name} (project {loaded.project}).\n"
        f"# Deploy it with: docker stack deploy -c FILE {loaded.project}\n"
    )
    return Export("swarm", [escape_dollars(doc)], notes, header)
