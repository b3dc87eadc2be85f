"""Compose fields that mean the same in a Compose file and a stack file.

Shared by ``compose_export`` and ``stack_export`` so both write a port, a
volume, a healthcheck or a secret reference the same way.
"""

from __future__ import annotations

from typing import Any

from envd.spec.compose_words import COMPOSE_SECRET_MODE
from envd.spec.durations import format_duration
from envd.spec.models import Healthcheck, Port, Service, ServiceSecret, Spec, VolumeMount


def port_short(p: Port) -> str:
    """``[HOST_IP:][PUBLISHED:]TARGET/PROTO``: the syntax every Compose accepts."""
    text = str(p.target)
    if p.published:
        text = f"{p.published}:{text}"
    elif p.host_ip:
        text = f":{text}"
    if p.host_ip:
        ip = f"[{p.host_ip}]" if ":" in p.host_ip else p.host_ip
        text = f"{ip}:{text}"
    return f"{text}/{p.protocol}" if p.protocol != "tcp" else text


def volume_short(m: VolumeMount) -> str | dict[str, Any]:
    if m.type == "tmpfs":
        return {"type": "tmpfs", "target": m.target}
    if m.type == "bind" and not m.creates_host_path:
        # The long syntax: the short one always creates a missing source.
        # `bind.create_host_path` itself is Compose v2's only (the export puts
        # it in x-envd); without it Compose does not create one either.
        out: dict[str, Any] = {"type": "bind", "source": m.source, "target": m.target}
        if m.read_only:
            out["read_only"] = True
        bind = {k: v for k, v in (("selinux", m.selinux), ("propagation", m.propagation)) if v}
        if bind:
            out["bind"] = bind
        return out
    if not m.source:
        return m.target
    source = m.source
    if m.type == "bind" and not source.startswith((".", "/", "~")):
        source = "./" + source
    modes = [x for x in ("ro" if m.read_only else "", m.selinux, m.propagation) if x]
    return f"{source}:{m.target}" + (":" + ",".join(modes) if modes else "")


def healthcheck(h: Healthcheck) -> dict[str, Any]:
    if h.disable or (h.test and h.test[0] == "NONE"):
        return {"disable": True}
    out: dict[str, Any] = {
        "test": list(h.test),
        "interval": format_duration(h.interval),
        "timeout": format_duration(h.timeout),
        "retries": h.retries,
        "start_period": format_duration(h.start_period),
    }
    if h.start_interval:
        out["start_interval"] = format_duration(h.start_interval)
    return out


def secret_ref(s: ServiceSecret) -> str | dict[str, Any]:
    """A bare name when the reference has Compose's defaults, the long form otherwise."""
    if not s.target and s.uid == "0" and s.gid == "0" and s.mode == COMPOSE_SECRET_MODE:
        return str(s.source)
    out: dict[str, Any] = {"source": s.source}
    if s.target:
        out["target"] = s.target
    out.update({"uid": s.uid, "gid": s.gid, "mode": s.mode})
    return out


def env(svc: Service) -> dict[str, str | None]:
    return dict(svc.env)


def common_service(name: str, svc: Service) -> dict[str, Any]:
    """Fields that mean the same in a Compose file and a stack file."""
    out: dict[str, Any] = {}
    if svc.image:
        out["image"] = svc.image
    if svc.command is not None:
        out["command"] = list(svc.command)
    if svc.entrypoint is not None:
        out["entrypoint"] = list(svc.entrypoint)
    if svc.working_dir:
        out["working_dir"] = svc.working_dir
    if svc.user:
        out["user"] = svc.user
    if svc.hostname:
        out["hostname"] = svc.hostname
    if svc.env:
        out["environment"] = env(svc)
    if svc.env_file:
        out["env_file"] = list(svc.env_file)
    if svc.healthcheck is not None:
        out["healthcheck"] = healthcheck(svc.healthcheck)
    out["init"] = svc.init
    if svc.stop_signal != "SIGTERM":
        out["stop_signal"] = svc.stop_signal
    if svc.stop_grace_period != 10.0:
        out["stop_grace_period"] = format_duration(svc.stop_grace_period)
    if svc.secrets:
        out["secrets"] = [secret_ref(s) for s in svc.secrets]
    if svc.labels:
        out["labels"] = dict(svc.labels)
    if svc.read_only:
        out["read_only"] = True
    if svc.cap_add:
        out["cap_add"] = list(svc.cap_add)
    if svc.cap_drop:
        out["cap_drop"] = list(svc.cap_drop)
    if svc.configs:  # configs (Compose's `configs`: read-only files)
        from envd.interop.config_export import config_ref

        out["configs"] = [config_ref(c) for c in svc.configs]
    return out


def service_networks(svc: Service) -> list[str] | dict[str, Any] | None:
    if not svc.networks:
        return None
    out: dict[str, Any] = {}
    for k, n in svc.networks.items():
        entry: dict[str, Any] = {}
        if n.aliases:
            entry["aliases"] = list(n.aliases)
        for field in ("ipv4_address", "ipv6_address"):  # static addresses
            if getattr(n, field):
                entry[field] = getattr(n, field)
        out[k] = entry or None
    if all(v is None for v in out.values()):
        return list(out)
    return out


def top_volumes(spec: Spec) -> dict[str, Any]:
    """Top-level volumes with what differs from Compose's defaults (the same in a stack)."""
    out: dict[str, Any] = {}
    for key, v in spec.volumes.items():
        d: dict[str, Any] = {}
        if v.external:
            d["external"] = True
        if v.name:
            d["name"] = v.name
        if v.driver != "local":
            d["driver"] = v.driver
        if v.driver_opts:
            d["driver_opts"] = dict(v.driver_opts)
        if v.labels:
            d["labels"] = dict(v.labels)
        out[key] = d
    return out


def top_networks(spec: Spec, stack: bool) -> dict[str, Any]:
    """Top-level networks; in a stack, bridge becomes an attachable overlay."""
    out: dict[str, Any] = {}
    for key, n in spec.networks.items():
        d: dict[str, Any] = {}
        if n.external:
            d["external"] = True
        if n.name:
            d["name"] = n.name
        driver = n.driver
        if stack and driver == "bridge":
            driver = "overlay"
        if driver != "bridge" or stack:
            d["driver"] = driver
        if stack and not n.external:
            d["attachable"] = True
        if n.internal:
            d["internal"] = True
        if n.labels:
            d["labels"] = dict(n.labels)
        if n.ipam is not None:  # static addressing
            ipam: dict[str, Any] = {}
            if n.ipam.driver:
                ipam["driver"] = n.ipam.driver
            if n.ipam.config:
                # A stack file (3.9) takes a pool's subnet only.
                ipam["config"] = [
                    {
                        k: v
                        for k, v in {
                            "subnet": c.subnet,
                            "ip_range": "" if stack else c.ip_range,
                            "gateway": "" if stack else c.gateway,
                            "aux_addresses": {} if stack else dict(c.aux_addresses),
                        }.items()
                        if v
                    }
                    for c in n.ipam.config
                ]
            d["ipam"] = ipam
        if n.enable_ipv6 and not stack:
            d["enable_ipv6"] = True
        out[key] = d
    return out


def escape_dollars(value: Any) -> Any:
    """Every string value with ``$`` written ``$$``: Compose interpolates what it reads.

    The spec's values are already interpolated, so a ``$`` left in them is a
    literal one (``pg_isready -d $${POSTGRES_DB}`` in the spec is the text
    ``${POSTGRES_DB}``); unescaped, Compose would substitute the host's variable.
    Keys are not interpolated by Compose and stay as they are.
    """
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value
