"""``DockerEngine``: the only module in envd that talks to Docker.

It maps the ``Engine`` protocol onto Docker API calls. Those go through the
minimal HTTP/1.1 client of ``envd.engine.docker.transport`` (one keep-alive
connection per thread), because importing the Docker SDK alone costs more
than a no-op ``envd up`` may take in total.
The SDK is imported lazily, and only for building and pulling images (build
contexts honouring ``.dockerignore``, registry credentials).

Every failure becomes one of the errors of ``envd.values.errors``: ``EngineUnavailable``
when the engine cannot be reached, ``NotFound`` (404), ``Conflict`` (409) and
``EngineError`` with the engine's own message otherwise. Secret values are
never logged nor put in an error message.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from envd.engine.docker.transport import (
    Connection,
    Endpoint,
    Json,
    ProtocolError,
    Response,
    StaleConnection,
    demux,
    failure_reason,
    is_multiplexed,
    json_objects,
    stream_lines,
)
from envd.values.errors import Conflict, EngineError, EngineUnavailable, NotFound
from envd.values.types import (
    BuildRequest,
    ContainerCreate,
    ContainerState,
    ObservedContainer,
    ObservedImage,
    ObservedMount,
    ObservedNetwork,
    ObservedVolume,
    PortBinding,
    SecretFile,
)

if TYPE_CHECKING:
    from envd.engine.base import ProgressFn

API_VERSION = "1.41"
DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 60.0
_DEFAULT_TIMEOUT = -1.0  # "the engine's default read timeout"; None: no limit
# Where secrets go when the root filesystem is read-only (an anonymous volume
# is mounted there so the archive API may write into it).
SECRETS_DIR = "/run/secrets"
SECRETS_VOLUME_LABEL = "dev.envd.secrets"
# The anonymous volumes a container was handed over from the one it replaced
# (comma-separated names). It mounts them by name, so the engine's own `v=1`
# would keep them; remove_container(volumes=True) removes them itself.
ANONYMOUS_VOLUMES_LABEL = "dev.envd.anonymous-volumes"
_ANONYMOUS_NAME = re.compile(r"[0-9a-f]{64}")  # how the engine names anonymous volumes
_PROJECT_LABEL = "dev.envd.project"

_HEALTH_RE = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_EXITED_RE = re.compile(r"^Exited \((-?\d+)\)")
_JSON = {"Content-Type": "application/json"}


def _engine_message(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"]).strip()
    return body.decode("utf-8", "replace").strip()


def _lines(text: bytes) -> list[str]:
    return text.decode("utf-8", "replace").splitlines()


def _nanos(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


def _filters(**filters: list[str]) -> str:
    return json.dumps(filters, separators=(",", ":"))


def _project_filter(project: str) -> dict[str, str]:
    return {"filters": _filters(label=[f"dev.envd.project={project}"])}


def _health_from_status(status_text: str) -> str | None:
    m = _HEALTH_RE.search(status_text)
    if not m:
        return None
    return "starting" if m.group(1) == "health: starting" else m.group(1)


def _secrets_tar(secrets: tuple[SecretFile, ...], root: str) -> bytes:
    """A tar holding each secret at its target path (relative to ``root``)."""
    import tarfile  # lazy: only containers with secrets need it

    buf = io.BytesIO()
    now = time.time()
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for secret in secrets:
            rel = posixpath.relpath(posixpath.normpath(secret.target), root)
            parent = posixpath.dirname(rel)
            chain: list[str] = []
            while parent and parent not in dirs:
                chain.append(parent)
                parent = posixpath.dirname(parent)
            for d in reversed(chain):
                dirs.add(d)
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                info.mtime = int(now)
                tar.addfile(info)
            info = tarfile.TarInfo(rel)
            info.size = len(secret.value)
            info.mode = secret.mode
            info.uid = secret.uid
            info.gid = secret.gid
            info.mtime = int(now)
            tar.addfile(info, io.BytesIO(secret.value))
    return buf.getvalue()


def _host_from_env() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


class DockerEngine:
    """``Engine`` against a real Docker engine (API 1.41 or newer)."""

    def __init__(self, host: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host = host or _host_from_env()
        self.timeout = timeout
        self._endpoint = Endpoint(self.host)
        self._local = threading.local()
        self._prefix = f"/v{API_VERSION}"
        self._sdk: Any = None
        self._sdk_lock = threading.Lock()

    # --- transport ---------------------------------------------------------
    def _unavailable(self, exc: BaseException | str) -> EngineUnavailable:
        reason = exc if isinstance(exc, str) else failure_reason(exc)
        return EngineUnavailable(f"the Docker engine is not reachable at {self.host}: {reason}")

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.pid != os.getpid():
            # A connection inherited through fork() belongs to the parent.
            conn = Connection(self._endpoint.connect)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()

    def _url(self, path: str, query: Mapping[str, str | int] | None) -> str:
        url = self._prefix + path
        if query:
            url += "?" + urlencode(query)
        return url

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None = None,
        body: Json = None,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = _DEFAULT_TIMEOUT,
    ) -> Response:
        """One request on this thread's keep-alive connection, retried once if stale."""
        url = self._url(path, query)
        hdrs = dict(headers or {})
        payload = data
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            hdrs.update(_JSON)
        read_timeout = self.timeout if timeout == _DEFAULT_TIMEOUT else timeout
        conn = self._connection()
        for attempt in (0, 1):
            try:
                status, resp_headers = conn.request(method, url, hdrs, payload, read_timeout)
                body_bytes = b"".join(conn.body_chunks(method, status, resp_headers))
                return Response(status, body_bytes, resp_headers)
            except StaleConnection:
                # A keep-alive connection the engine closed while idle: retry
                # once on a fresh one. A fresh connection failing is real.
                conn.close()
                if attempt == 0:
                    continue
                raise self._unavailable("it closed the connection") from None
            except (OSError, ProtocolError, ValueError) as exc:
                conn.close()
                raise self._unavailable(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None = None,
        body: Json = None,
        *,
        what: str = "",
        ok: tuple[int, ...] = (200, 201, 204, 304),
        **kw: Any,
    ) -> Response:
        resp = self._send(method, path, query, body, **kw)
        if resp.status in ok:
            return resp
        raise self._error(resp, what)

    @staticmethod
    def _error(resp: Response, what: str = "") -> EngineError:
        msg = _engine_message(resp.body) or f"HTTP {resp.status}"
        if what and what.rsplit(" ", 1)[-1] not in msg:
            msg = f"{what}: {msg}"
        # In swarm mode the engine wraps a missing network's 404 in a 500
        # carrying the gRPC code; it is the same missing object.
        if resp.status == 404 or "code = NotFound" in msg:
            return NotFound(msg, resp.status)
        if resp.status == 409:
            return Conflict(msg, resp.status)
        return EngineError(msg, resp.status)

    # --- observe -----------------------------------------------------------
    def ping(self) -> None:
        resp = self._send("GET", "/_ping")
        if resp.status != 200:
            raise self._unavailable(f"it answered HTTP {resp.status} to a ping")

    def list_containers(self, project: str) -> list[ObservedContainer]:
        q: dict[str, str | int] = {"all": 1, **_project_filter(project)}
        out: list[ObservedContainer] = []
        for c in self._call("GET", "/containers/json", q).json() or []:
            status = str(c.get("State") or "")
            status_text = str(c.get("Status") or "")
            exit_code: int | None = None
            if status in ("exited", "dead"):
                m = _EXITED_RE.match(status_text)
                exit_code = int(m.group(1)) if m else None
            names = c.get("Names") or []
            ports = tuple(
                PortBinding(
                    container_port=int(p["PrivatePort"]),
                    protocol=str(p.get("Type") or "tcp"),
                    host_ip=str(p.get("IP") or ""),
                    host_port=int(p["PublicPort"]) if p.get("PublicPort") else None,
                )
                for p in c.get("Ports") or []
                if p.get("PublicPort")
            )
            out.append(
                ObservedContainer(
                    id=str(c["Id"]),
                    name=str(names[0]).lstrip("/") if names else "",
                    labels=dict(c.get("Labels") or {}),
                    status=status,
                    health=_health_from_status(status_text) if status == "running" else None,
                    exit_code=exit_code,
                    image_id=str(c.get("ImageID") or ""),
                    ports=ports,
                )
            )
        return out

    def list_networks(self, project: str) -> list[ObservedNetwork]:
        return [
            ObservedNetwork(
                id=str(n["Id"]),
                name=str(n["Name"]),
                labels=dict(n.get("Labels") or {}),
                driver=str(n.get("Driver") or ""),
                internal=bool(n.get("Internal")),
            )
            for n in self._call("GET", "/networks", _project_filter(project)).json() or []
        ]

    def list_volumes(self, project: str) -> list[ObservedVolume]:
        doc = self._call("GET", "/volumes", _project_filter(project)).json() or {}
        return [
            ObservedVolume(name=str(v["Name"]), labels=dict(v.get("Labels") or {}))
            for v in doc.get("Volumes") or []
        ]

    def inspect_image(self, ref: str) -> ObservedImage | None:
        resp = self._send("GET", f"/images/{quote(ref, safe='/:@')}/json")
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._error(resp, f"image {ref}")
        doc = resp.json()
        return ObservedImage(
            ref=ref,
            id=str(doc["Id"]),
            labels=dict((doc.get("Config") or {}).get("Labels") or {}),
            repo_digests=tuple(doc.get("RepoDigests") or ()),
            volumes=tuple(sorted((doc.get("Config") or {}).get("Volumes") or {})),
        )

    def registry_digest(self, ref: str) -> str | None:
        """The manifest digest the registry serves for ``ref`` now (no pull), or None.

        Asks the engine's distribution endpoint, so registry credentials and
        insecure-registry settings are the engine's own. None when the
        registry cannot be asked (offline, unknown repository).
        """
        resp = self._send("GET", f"/distribution/{quote(ref, safe='/:@')}/json")
        if resp.status != 200:
            return None
        digest = ((resp.json() or {}).get("Descriptor") or {}).get("digest")
        return str(digest) if digest else None

    def _inspect_container(self, container_id: str) -> Json:
        return self._call(
            "GET", f"/containers/{quote(container_id)}/json", what=f"container {container_id}"
        ).json()

    def container_state(self, container_id: str) -> ContainerState:
        doc = self._inspect_container(container_id)
        state = doc.get("State") or {}
        status = str(state.get("Status") or "")
        hc = (doc.get("Config") or {}).get("Healthcheck") or {}
        test = hc.get("Test") or []
        has_hc = bool(test) and test[0] != "NONE"
        health = (state.get("Health") or {}).get("Status") or None
        return ContainerState(
            id=str(doc["Id"]),
            status=status,
            exit_code=int(state.get("ExitCode") or 0) if status in ("exited", "dead") else None,
            # Like the list: no health once it stopped (the engine keeps the last).
            health=str(health) if has_hc and health and status == "running" else None,
            has_healthcheck=has_hc,
            oom_killed=bool(state.get("OOMKilled")),
            error=str(state.get("Error") or ""),
        )

    # --- images ------------------------------------------------------------
    def _api_client(self) -> Any:
        with self._sdk_lock:
            if self._sdk is None:
                import docker  # lazy: 190 ms; only builds and pulls need it

                kwargs: dict[str, Any] = {}
                if os.environ.get("DOCKER_HOST") and self.host == _host_from_env():
                    kwargs = docker.utils.kwargs_from_env()  # type: ignore[attr-defined]
                kwargs["base_url"] = self.host
                kwargs.setdefault("version", API_VERSION)
                kwargs.setdefault("timeout", max(self.timeout, 600))
                self._sdk = docker.APIClient(**kwargs)  # type: ignore[attr-defined]
            return self._sdk

    def _sdk_errors(self, exc: Exception, what: str) -> EngineError | EngineUnavailable:
        import docker.errors

        if isinstance(exc, docker.errors.APIError):
            status = exc.status_code or 0
            msg = str(exc.explanation or exc)
            resp = Response(status, json.dumps({"message": msg}).encode())
            return self._error(resp, what)
        if isinstance(exc, docker.errors.DockerException | OSError):
            return self._unavailable(exc)
        return EngineError(f"{what}: {exc}")

    def pull_image(self, ref: str, progress: ProgressFn | None = None) -> ObservedImage:
        import docker.errors

        api = self._api_client()
        repo, tag = _split_ref(ref)
        try:
            for event in api.pull(repo, tag=tag, stream=True, decode=True):
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    detail = event.get("errorDetail") or {}
                    message = str(detail.get("message") or event["error"])
                    raise EngineError(f"pulling {ref} failed: {message}")
                if progress is not None and event.get("status"):
                    line = str(event["status"])
                    if event.get("id"):
                        line = f"{event['id']}: {line}"
                    if event.get("progress"):
                        line += f" {event['progress']}"
                    progress(line)
        except EngineError:
            raise
        except (docker.errors.DockerException, OSError) as exc:
            raise self._sdk_errors(exc, f"pulling {ref} failed") from None
        image = self.inspect_image(ref)
        if image is None:
            raise EngineError(f"pulling {ref} finished but the image is not in the engine")
        return image

    def build_image(self, req: BuildRequest, progress: ProgressFn | None = None) -> ObservedImage:
        import docker.errors

        api = self._api_client()
        image_id = ""
        try:
            for event in api.build(
                path=req.context,
                dockerfile=req.dockerfile,
                buildargs=dict(req.args),
                target=req.target or None,
                labels=dict(req.labels),
                tag=req.tag,
                rm=True,
                forcerm=True,  # a failed step must not leave its container behind
                decode=True,
            ):
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    detail = event.get("errorDetail") or {}
                    message = str(detail.get("message") or event["error"]).strip()
                    raise EngineError(f"building {req.tag} failed: {message}")
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
                if progress is not None and event.get("stream"):
                    for line in str(event["stream"]).splitlines():
                        if line.strip():
                            progress(line)
        except EngineError:
            raise
        except (docker.errors.DockerException, OSError) as exc:
            raise self._sdk_errors(exc, f"building {req.tag} failed") from None
        image = self.inspect_image(req.tag) or (self.inspect_image(image_id) if image_id else None)
        if image is None:
            raise EngineError(f"building {req.tag} finished but the image is not in the engine")
        return image

    # --- networks and volumes ---------------------------------------------
    def create_network(
        self, name: str, labels: dict[str, str], driver: str = "bridge", internal: bool = False
    ) -> str:
        body = {
            "Name": name,
            "CheckDuplicate": True,
            "Driver": driver,
            "Internal": internal,
            "Labels": dict(labels),
        }
        doc = self._call("POST", "/networks/create", body=body, what=f"network {name}").json()
        return str(doc["Id"])

    def remove_network(self, name: str) -> None:
        resp = self._send("DELETE", f"/networks/{quote(name)}")
        if resp.status in (200, 204):
            return
        if resp.status == 403:  # "has active endpoints"
            raise Conflict(f"network {name}: {_engine_message(resp.body)}", 403)
        raise self._error(resp, f"network {name}")

    def create_volume(
        self,
        name: str,
        labels: dict[str, str],
        driver: str = "local",
        driver_opts: dict[str, str] | None = None,
    ) -> str:
        body = {
            "Name": name,
            "Driver": driver,
            "DriverOpts": dict(driver_opts or {}),
            "Labels": dict(labels),
        }
        doc = self._call("POST", "/volumes/create", body=body, what=f"volume {name}").json()
        return str(doc["Name"])

    def remove_volume(self, name: str) -> None:
        self._call("DELETE", f"/volumes/{quote(name)}", what=f"volume {name}")

    def volume_exists(self, name: str) -> bool:
        resp = self._send("GET", f"/volumes/{quote(name)}")
        if resp.status == 404:
            return False
        if resp.status != 200:
            raise self._error(resp, f"volume {name}")
        return bool(resp.json().get("Name") == name)

    def network_exists(self, name: str) -> bool:
        resp = self._send("GET", f"/networks/{quote(name)}")
        if resp.status == 404:
            return False
        if resp.status != 200:
            raise self._error(resp, f"network {name}")
        # The engine also matches an id prefix; only an exact name counts.
        return bool(resp.json().get("Name") == name)

    # --- containers --------------------------------------------------------
    def _create_body(self, spec: ContainerCreate) -> dict[str, Any]:
        exposed: dict[str, dict[str, Any]] = {}
        bindings: dict[str, list[dict[str, str]]] = {}
        for p in spec.ports:
            key = f"{p.container_port}/{p.protocol}"
            exposed[key] = {}
            bindings.setdefault(key, []).append(
                {
                    "HostIp": p.host_ip,
                    "HostPort": "" if p.host_port is None else str(p.host_port),
                }
            )
        mounts: list[dict[str, Any]] = []
        for m in spec.mounts:
            mount: dict[str, Any] = {"Type": m.type, "Target": m.target, "ReadOnly": m.read_only}
            if m.source and m.type != "tmpfs":
                mount["Source"] = m.source
            mounts.append(mount)
        if spec.secrets and spec.read_only:
            mounted = {posixpath.normpath(m.target) for m in spec.mounts}
            for d in _secret_roots(spec.secrets):
                if d not in mounted:
                    # An anonymous volume: the archive API may write into it.
                    # Labelled, so removing the container always removes it
                    # (a secret must not stay on disk after `down`).
                    vol_labels = {SECRETS_VOLUME_LABEL: "1"}
                    if _PROJECT_LABEL in spec.labels:
                        vol_labels[_PROJECT_LABEL] = spec.labels[_PROJECT_LABEL]
                    mounts.append(
                        {"Type": "volume", "Target": d, "VolumeOptions": {"Labels": vol_labels}}
                    )
        host: dict[str, Any] = {
            "PortBindings": bindings,
            "Mounts": mounts,
            "Tmpfs": dict(spec.tmpfs),
            "RestartPolicy": {
                "Name": "" if spec.restart in ("no", "") else spec.restart,
                "MaximumRetryCount": 0,
            },
            "Init": spec.init,
            "ReadonlyRootfs": spec.read_only,
            "CapAdd": list(spec.cap_add) or None,
            "CapDrop": list(spec.cap_drop) or None,
            "AutoRemove": spec.auto_remove,
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
        if spec.anonymous_volumes:
            body["Labels"][ANONYMOUS_VOLUMES_LABEL] = ",".join(spec.anonymous_volumes)
        if spec.command is not None:
            body["Cmd"] = list(spec.command)
        if spec.entrypoint is not None:
            # An empty list clears the image's entrypoint (and its default Cmd).
            body["Entrypoint"] = list(spec.entrypoint)
        if spec.healthcheck is not None:
            hc = spec.healthcheck
            if hc.test and hc.test[0] == "NONE":
                body["Healthcheck"] = {"Test": ["NONE"]}
            else:
                body["Healthcheck"] = {
                    "Test": list(hc.test),
                    "Interval": _nanos(hc.interval_s),
                    "Timeout": _nanos(hc.timeout_s),
                    "Retries": hc.retries,
                    "StartPeriod": _nanos(hc.start_period_s),
                }
        if spec.networks:
            first = spec.networks[0]
            host["NetworkMode"] = first.network
            body["NetworkingConfig"] = {
                "EndpointsConfig": {first.network: {"Aliases": list(first.aliases) or None}}
            }
        return body

    def create_container(self, spec: ContainerCreate) -> str:
        body = self._create_body(spec)
        doc = self._call(
            "POST",
            "/containers/create",
            {"name": spec.name},
            body,
            what=f"creating container {spec.name}",
        ).json()
        cid = str(doc["Id"])
        try:
            for att in spec.networks[1:]:
                self._call(
                    "POST",
                    f"/networks/{quote(att.network)}/connect",
                    body={"Container": cid, "EndpointConfig": {"Aliases": list(att.aliases)}},
                    what=f"connecting {spec.name} to network {att.network}",
                )
            if spec.secrets:
                self._write_secrets(cid, spec)
        except BaseException:
            # The engine's own `v=1`: the volumes it made for this container go
            # (secrets among them); the ones handed over by name stay.
            with contextlib.suppress(EngineError, EngineUnavailable):
                self._delete_container(cid, volumes=True)
            raise
        return cid

    def _write_secrets(self, cid: str, spec: ContainerCreate) -> None:
        what = f"writing secrets into container {spec.name}"
        if not spec.read_only:
            self._put_archive(cid, "/", _secrets_tar(spec.secrets, "/"), what)
            return
        # A read-only root filesystem: the engine only writes into volumes, and
        # only when the archive's destination path lies in one.
        by_dir: dict[str, list[SecretFile]] = {}
        roots = _secret_roots(spec.secrets)
        for s in spec.secrets:
            target = posixpath.normpath(s.target)
            root = next(r for r in roots if _is_under(target, r))
            by_dir.setdefault(root, []).append(s)
        for d, group in sorted(by_dir.items()):
            self._put_archive(cid, d, _secrets_tar(tuple(group), d), what)

    def start_container(self, container_id: str) -> None:
        self._call(
            "POST", f"/containers/{quote(container_id)}/start", what=f"container {container_id}"
        )

    def stop_container(self, container_id: str, timeout: int | None) -> None:
        if timeout is None:
            stop_timeout = (self._inspect_container(container_id).get("Config") or {}).get(
                "StopTimeout"
            )
            timeout = 10 if stop_timeout is None else int(stop_timeout)  # the engine's default
        self._call(
            "POST",
            f"/containers/{quote(container_id)}/stop",
            {"t": int(timeout)},
            what=f"container {container_id}",
            timeout=max(self.timeout, timeout + 30.0),
        )

    def remove_container(self, container_id: str, volumes: bool = False) -> None:
        # Anonymous volumes holding secrets go with their container even when
        # the others stay (`down` without -v). With -v the engine removes the
        # anonymous volumes it created, not those handed over by name: we do.
        resp = self._send("GET", f"/containers/{quote(container_id)}/json")
        mounts = self._mounts(resp.json()) if resp.status == 200 else []
        self._delete_container(container_id, volumes)
        for m in mounts:
            if m.secrets or (volumes and m.anonymous):
                with contextlib.suppress(NotFound, Conflict):
                    self.remove_volume(m.source)

    def _delete_container(self, container_id: str, volumes: bool) -> None:
        self._call(
            "DELETE",
            f"/containers/{quote(container_id)}",
            {"v": int(volumes), "force": 1},
            what=f"container {container_id}",
        )

    def container_mounts(self, container_id: str) -> list[ObservedMount]:
        return self._mounts(self._inspect_container(container_id))

    def _mounts(self, doc: Json) -> list[ObservedMount]:
        """A container's mounts from its inspect (plus one volume list if any is anonymous)."""
        host = doc.get("HostConfig") or {}
        asked = {str(m.get("Source") or "") for m in host.get("Mounts") or []}
        asked |= {str(b).split(":", 1)[0] for b in host.get("Binds") or []}
        labels = (doc.get("Config") or {}).get("Labels") or {}
        handed = set(str(labels.get(ANONYMOUS_VOLUMES_LABEL) or "").split(","))
        out: list[ObservedMount] = []
        for m in doc.get("Mounts") or []:
            kind = str(m.get("Type") or "")
            name = str((m.get("Name") if kind == "volume" else m.get("Source")) or "")
            anonymous = (
                kind == "volume"
                and _ANONYMOUS_NAME.fullmatch(name) is not None
                and (name not in asked or name in handed)
            )
            target = str(m.get("Destination") or "")
            out.append(ObservedMount(kind, target, name, not m.get("RW", True), anonymous))
        if any(m.anonymous for m in out):
            q = {"filters": _filters(label=[f"{SECRETS_VOLUME_LABEL}=1"])}
            vols = self._call("GET", "/volumes", q, what="listing volumes").json() or {}
            secret = {str(v.get("Name")) for v in vols.get("Volumes") or []}
            out = [
                ObservedMount(m.type, m.target, m.source, m.read_only, True, True)
                if m.anonymous and m.source in secret
                else m
                for m in out
            ]
        return out

    def rename_container(self, container_id: str, name: str) -> None:
        self._call(
            "POST",
            f"/containers/{quote(container_id)}/rename",
            {"name": name},
            what=f"renaming container {container_id} to {name}",
        )

    def put_archive(self, container_id: str, path: str, data: bytes) -> None:
        self._put_archive(
            container_id, path, data, f"writing files at {path} into container {container_id}"
        )

    def _put_archive(self, container_id: str, path: str, data: bytes, what: str) -> None:
        # The archive may hold secret values: messages name the path only.
        self._call(
            "PUT",
            f"/containers/{quote(container_id)}/archive",
            {"path": path},
            data=data,
            headers={"Content-Type": "application/x-tar"},
            what=what,
        )

    def exec_run(self, container_id: str, cmd: list[str]) -> tuple[int, bytes]:
        created = self._call(
            "POST",
            f"/containers/{quote(container_id)}/exec",
            body={"AttachStdout": True, "AttachStderr": True, "Tty": False, "Cmd": list(cmd)},
            what=f"container {container_id}",
        ).json()
        exec_id = str(created["Id"])
        out = self._call(
            "POST",
            f"/exec/{exec_id}/start",
            body={"Detach": False, "Tty": False},
            what=f"exec in container {container_id}",
            timeout=None,
        ).body
        info = self._call("GET", f"/exec/{exec_id}/json").json()
        code = info.get("ExitCode")
        return (int(code) if code is not None else -1), demux(out)

    def container_logs(self, container_id: str, tail: int = 50) -> list[str]:
        resp = self._call(
            "GET",
            f"/containers/{quote(container_id)}/logs",
            {"stdout": 1, "stderr": 1, "tail": str(tail)},
            what=f"container {container_id}",
        )
        data = demux(resp.body) if is_multiplexed(resp.body) else resp.body
        lines = _lines(data)
        return lines[-tail:] if tail > 0 else lines

    def stream_logs(
        self, container_id: str, tail: int | None = None, follow: bool = True
    ) -> Iterator[str]:
        """Log lines as they come; a dedicated connection, closed when done."""
        tty = bool((self._inspect_container(container_id).get("Config") or {}).get("Tty"))
        path = f"/containers/{quote(container_id)}/logs"
        q: dict[str, str | int] = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(follow),
            "tail": "all" if tail is None else str(tail),
        }
        conn = Connection(self._endpoint.connect)
        try:
            try:
                # Following may idle for ever: no read timeout.
                status, headers = conn.request("GET", self._url(path, q), {}, None, None)
            except (OSError, ProtocolError, StaleConnection, ValueError) as exc:
                raise self._unavailable(exc) from None
            chunks = conn.body_chunks("GET", status, headers)
            if status != 200:
                raise self._error(Response(status, b"".join(chunks), headers))
            yield from stream_lines(chunks, tty)
        finally:
            conn.close()

    def stream_events(self, project: str) -> Iterator[dict[str, Any]]:
        """The engine's container events for one project, until the connection closes.

        A dedicated connection with no read timeout: the stream idles between
        events, and the daemon must not poll.
        """
        filters = {
            "type": ["container"],
            "label": [f"dev.envd.project={project}"],
            # Healthcheck execs fire three events a second per container: noise.
            "event": [
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
            ],
        }
        q: dict[str, str | int] = {"filters": json.dumps(filters)}
        conn = Connection(self._endpoint.connect)
        try:
            try:
                status, headers = conn.request("GET", self._url("/events", q), {}, None, None)
            except (OSError, ProtocolError, StaleConnection, ValueError) as exc:
                raise self._unavailable(exc) from None
            chunks = conn.body_chunks("GET", status, headers)
            if status != 200:
                raise self._error(Response(status, b"".join(chunks), headers))
            yield from json_objects(chunks)
        finally:
            conn.close()


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _secret_roots(secrets: tuple[SecretFile, ...]) -> list[str]:
    """The fewest directories holding every secret (``/run/secrets`` for its own).

    With a read-only root filesystem an anonymous volume is mounted at each.
    """
    dirs = set()
    for s in secrets:
        target = posixpath.normpath(s.target)
        dirs.add(SECRETS_DIR if _is_under(target, SECRETS_DIR) else posixpath.dirname(target))
    ordered = sorted(dirs, key=len)
    roots: list[str] = []
    for d in ordered:
        if not any(_is_under(d, r) for r in roots):
            roots.append(d)
    return sorted(roots)


def _split_ref(ref: str) -> tuple[str, str | None]:
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
