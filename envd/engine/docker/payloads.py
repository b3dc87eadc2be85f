"""Engine values to Docker API requests, and engine errors to envd's: pure, no IO.

``DockerEngine`` (and the swarm engine built on it) sends what these build;
the answers come back through ``envd.engine.docker.answers``. Both can be
checked from small tables without an engine. Secret values only ever go into the tar archive
``secrets_tar`` builds, never into JSON.
"""

from __future__ import annotations

import io
import json
import posixpath
import time
from collections.abc import Mapping, Sequence
from typing import Any

from envd.engine.docker import host_payloads, versions
from envd.engine.docker.answers import ANONYMOUS_NAME
from envd.engine.docker.versions import Version
from envd.engine.secret_paths import secret_roots
from envd.values import labels
from envd.values.errors import Conflict, EngineError, NotFound
from envd.values.types import (
    ConfigFile,
    ContainerCreate,
    ExecOptions,
    Healthcheck,
    IpamPool,
    NetworkAttachment,
    SecretFile,
)

Json = Any  # a decoded JSON value from the engine


def engine_message(body: bytes) -> str:
    """The engine's own error message from an error answer's body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"]).strip()
    return body.decode("utf-8", "replace").strip()


# Podman answers 500 where Docker answers 404 / 409 (or 403), naming the
# kind of failure in a "cause" field.
_PODMAN_NOT_FOUND = frozenset({"network not found", "no such container", "no such volume"})
_PODMAN_CONFLICT = frozenset(
    {
        "that name is already in use",
        "network already exists",
        "volume already exists",
        "container state improper",
        "network is being used",
        "volume is being used",
        # removing a namespace owner while others join it ("has dependent containers")
        "container already exists",
    }
)


def engine_cause(body: bytes) -> str:
    """Podman's ``cause`` of an error answer ("" for Docker's answers)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    cause = doc.get("cause") if isinstance(doc, dict) else None
    return cause.strip().lower() if isinstance(cause, str) else ""


def api_error(status: int, message: str, what: str = "", cause: str = "") -> EngineError:
    """The envd error for an engine's error answer."""
    if status == 500 and cause in _PODMAN_NOT_FOUND:
        status = 404
    elif status == 500 and cause in _PODMAN_CONFLICT:
        status = 409
    msg = message or f"HTTP {status}"
    if what and what.rsplit(" ", 1)[-1] not in msg:
        msg = f"{what}: {msg}"
    # In swarm mode the engine wraps a missing network's 404 in a 500
    # carrying the gRPC code; it is the same missing object.
    if status == 404 or "code = NotFound" in msg:
        return NotFound(msg, status)
    if status == 409:
        return Conflict(msg, status)
    return EngineError(msg, status)


def nanos(seconds: float) -> int:
    """Seconds as the nanoseconds the API wants for durations."""
    return round(seconds * 1_000_000_000)


def filters(**by: list[str]) -> str:
    """The ``filters`` query parameter of the list endpoints."""
    return json.dumps(by, separators=(",", ":"))


def label_filter(wanted: Mapping[str, str]) -> dict[str, str]:
    """A query listing only objects carrying every one of these labels."""
    return {"filters": filters(label=[f"{k}={v}" for k, v in sorted(wanted.items())])}


def project_filter(project: str) -> dict[str, str]:
    return {"filters": filters(label=[f"{labels.PROJECT}={project}"])}


def events_filter(project: str, podman: bool = False) -> str:
    """The ``/events`` filter for one project's container events.

    Podman 4.3 filters on its own event names ("died", "remove") though it
    reports Docker's ("die", "destroy"): ask for both there.
    """
    return filters(
        type=["container"],
        label=[f"{labels.PROJECT}={project}"],
        # Healthcheck execs fire three events a second per container: noise.
        event=[
            "create",
            "start",
            "die",
            "destroy",
            "kill",
            "oom",
            "stop",
            "rename",
            "pause",
            "unpause",
            "health_status",
            *(("died", "remove") if podman else ()),
        ],
    )


def split_ref(ref: str) -> tuple[str, str | None]:
    """``name[:tag][@digest]`` → (repository, tag or digest) as the pull API wants."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        slash, colon = repo.rfind("/"), repo.rfind(":")
        return (repo[:colon] if colon > slash else repo), digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def healthcheck(hc: Healthcheck, start_interval: bool = False) -> dict[str, Any]:
    """A ``Healthcheck`` (containers) or ``HealthCheck`` (services) payload.

    ``start_interval``: the request goes to API 1.44 or newer, which reads it.
    """
    if hc.test and hc.test[0] == "NONE":
        return {"Test": ["NONE"]}
    body = {
        "Test": list(hc.test),
        "Interval": nanos(hc.interval_s),
        "Timeout": nanos(hc.timeout_s),
        "Retries": hc.retries,
        "StartPeriod": nanos(hc.start_period_s),
    }
    if start_interval and hc.start_interval_s:
        body["StartInterval"] = nanos(hc.start_interval_s)
    return body


def secrets_tar(
    secrets: Sequence[SecretFile | ConfigFile], root: str, parents: bool = True
) -> bytes:
    """A tar holding each secret (or config) at its target path (relative to ``root``).

    ``parents=False`` leaves out the entries of parent directories: the engine
    creates a missing one (0755, root) and leaves an existing one as it is,
    where an entry would reset its mode (``/tmp`` would lose its 1777).
    """
    import tarfile  # lazy: only containers with secrets need it

    buf = io.BytesIO()
    now = int(time.time())
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for secret in secrets:
            rel = posixpath.relpath(posixpath.normpath(secret.target), root)
            parent = posixpath.dirname(rel)
            chain: list[str] = []
            while parents and parent and parent not in dirs:
                chain.append(parent)
                parent = posixpath.dirname(parent)
            for d in reversed(chain):
                dirs.add(d)
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                info.mtime = now
                tar.addfile(info)
            info = tarfile.TarInfo(rel)
            info.size = len(secret.value)
            info.mode = secret.mode
            info.uid = secret.uid
            info.gid = secret.gid
            info.mtime = now
            tar.addfile(info, io.BytesIO(secret.value))
    return buf.getvalue()


# --------------------------------------------------------------------------- requests


def exec_body(cmd: list[str], options: ExecOptions | None) -> dict[str, Any]:
    """An exec create request: attached output, the hook's user, privilege, cwd, variables."""
    body: dict[str, Any] = {"AttachStdout": True, "AttachStderr": True, "Tty": False}
    body["Cmd"] = list(cmd)
    if options is not None:
        if options.user:
            body["User"] = options.user
        if options.privileged:
            body["Privileged"] = True
        if options.working_dir:
            body["WorkingDir"] = options.working_dir
        if options.env:
            body["Env"] = [f"{k}={v}" for k, v in options.env]
    return body


def create_body(spec: ContainerCreate, api: Version = versions.OLDEST) -> dict[str, Any]:
    """The ``/containers/create`` payload for API ``api`` (secrets go in later, by archive)."""
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in spec.ports:
        key = f"{p.container_port}/{p.protocol}"
        exposed[key] = {}
        bindings.setdefault(key, []).append(
            {"HostIp": p.host_ip, "HostPort": "" if p.host_port is None else str(p.host_port)}
        )
    for key in spec.exposed:
        exposed[key] = {}
    mounts: list[dict[str, Any]] = []
    binds: list[str] = []
    for m in spec.mounts:
        if m.type in ("bind", "volume") and m.selinux and m.source:
            # The Mounts API has no relabel option; `Binds` takes "src:dst:ro,z,rshared"
            # (a named volume's data is relabelled the same way).
            modes = ["ro" if m.read_only else "rw", m.selinux, m.propagation]
            binds.append(f"{m.source}:{m.target}:{','.join(x for x in modes if x)}")
            continue
        mount: dict[str, Any] = {"Type": m.type, "Target": m.target, "ReadOnly": m.read_only}
        if m.source and m.type != "tmpfs":
            mount["Source"] = m.source
        if m.type == "bind" and m.propagation:
            mount["BindOptions"] = {"Propagation": m.propagation}
        mounts.append(mount)
    secret_mounts: list[str] = []
    if spec.secrets and spec.read_only:
        mounted = {posixpath.normpath(m.target) for m in spec.mounts}
        for d in secret_roots(spec.secrets):
            if d not in mounted:
                # An anonymous volume: the archive API may write into it.
                # Labelled, so removing the container always removes it
                # (a secret must not stay on disk after `down`).
                vol_labels = {labels.SECRETS_VOLUME: "1"}
                if labels.PROJECT in spec.labels:
                    vol_labels[labels.PROJECT] = spec.labels[labels.PROJECT]
                mounts.append(
                    {"Type": "volume", "Target": d, "VolumeOptions": {"Labels": vol_labels}}
                )
                secret_mounts.append(d)
    host: dict[str, Any] = {
        "PortBindings": bindings,
        "Mounts": mounts,
        **({"Binds": binds} if binds else {}),
        "Tmpfs": dict(spec.tmpfs),
        "RestartPolicy": {
            "Name": "" if spec.restart in ("no", "") else spec.restart,
            "MaximumRetryCount": spec.restart_max_attempts if spec.restart == "on-failure" else 0,
        },
        "Init": spec.init,
        "ReadonlyRootfs": spec.read_only,
        "CapAdd": list(spec.cap_add) or None,
        "CapDrop": list(spec.cap_drop) or None,
        "AutoRemove": spec.auto_remove,
        **host_payloads.host_config(spec.host),
    }
    body: dict[str, Any] = {
        "Image": spec.image,
        "Labels": dict(spec.labels),
        "Env": [f"{k}={v}" for k, v in spec.env],
        "WorkingDir": spec.working_dir,
        "User": spec.user,
        "Hostname": spec.hostname,
        "ExposedPorts": exposed,
        "StopSignal": spec.stop_signal or None,
        "StopTimeout": spec.stop_timeout,
        "Tty": spec.tty,
        "OpenStdin": spec.stdin_open,
        # Like `docker run -i`: stdin closes with the first attached
        # client's EOF, so a pipe ends the one-off and /dev/null can't hang it.
        "StdinOnce": spec.stdin_open,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "HostConfig": host,
    }
    if spec.host.domainname:
        body["Domainname"] = spec.host.domainname
    if spec.anonymous_volumes:
        body["Labels"][labels.ANONYMOUS_VOLUMES] = ",".join(spec.anonymous_volumes)
    if secret_mounts:
        body["Labels"][labels.SECRET_MOUNTS] = ",".join(secret_mounts)
    hex_named = sorted(
        {m.source for m in spec.mounts if m.type == "volume" and ANONYMOUS_NAME.fullmatch(m.source)}
    )
    if hex_named:
        body["Labels"][labels.HEX_NAMED_VOLUMES] = ",".join(hex_named)
    if spec.command is not None:
        body["Cmd"] = list(spec.command)
    if spec.entrypoint is not None:
        # An empty list clears the image's entrypoint (and its default Cmd).
        body["Entrypoint"] = list(spec.entrypoint)
    if spec.healthcheck is not None:
        body["Healthcheck"] = healthcheck(spec.healthcheck, api >= versions.START_INTERVAL)
    if spec.network_mode:
        host["NetworkMode"] = spec.network_mode
    elif spec.networks:
        first = spec.networks[0]
        host["NetworkMode"] = first.network
        at_create = spec.networks if api >= versions.MULTI_NETWORK_CREATE else spec.networks[:1]
        body["NetworkingConfig"] = {
            "EndpointsConfig": {a.network: endpoint_config(a) for a in at_create}
        }
    return body


def endpoint_config(att: NetworkAttachment) -> dict[str, Any]:
    """A network attachment's ``EndpointConfig`` (create and connect)."""
    config: dict[str, Any] = {"Aliases": list(att.aliases) or None}
    addresses = {
        k: v for k, v in (("IPv4Address", att.ipv4_address), ("IPv6Address", att.ipv6_address)) if v
    }
    if addresses:
        config["IPAMConfig"] = addresses
    return config


def networks_to_connect(spec: ContainerCreate, api: Version) -> tuple[NetworkAttachment, ...]:
    """The networks joined after create: before API 1.44 create takes only one."""
    return () if api >= versions.MULTI_NETWORK_CREATE else spec.networks[1:]


def network_body(
    name: str,
    net_labels: Mapping[str, str],
    driver: str,
    internal: bool,
    api: Version,
    ipam_driver: str = "",
    ipam: tuple[IpamPool, ...] = (),
    enable_ipv6: bool = False,
) -> dict[str, Any]:
    """The ``/networks/create`` payload for API ``api``."""
    body: dict[str, Any] = {
        "Name": name,
        "Driver": driver,
        "Internal": internal,
        "Labels": dict(net_labels),
    }
    if api < versions.NO_CHECK_DUPLICATE:
        # Deprecated in 1.44, where a duplicate name always fails.
        body["CheckDuplicate"] = True
    if ipam_driver or ipam:
        pools = []
        for p in ipam:
            fields = {"Subnet": p.subnet, "IPRange": p.ip_range, "Gateway": p.gateway}
            pool: dict[str, Any] = {k: v for k, v in fields.items() if v}
            if p.aux_addresses:
                pool["AuxiliaryAddresses"] = dict(p.aux_addresses)
            pools.append(pool)
        body["IPAM"] = {"Driver": ipam_driver or "default", "Config": pools}
    if enable_ipv6:
        body["EnableIPv6"] = True
    return body


# --------------------------------------------------------------------------- answers
