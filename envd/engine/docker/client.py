"""``DockerEngine``: the only module in envd that talks to Docker (or Podman's Docker API).

It maps the ``Engine`` protocol onto Docker API calls. Those go through the
minimal HTTP/1.1 client of ``envd.engine.docker.transport`` (one keep-alive
connection per thread), because importing the Docker SDK alone costs more
than a no-op ``envd up`` may take in total. The JSON it sends and reads is
built and parsed by the pure functions of ``envd.engine.docker.payloads``;
building and pulling images (the only SDK use) is ``envd.engine.docker.images``.

Every failure becomes one of the errors of ``envd.values.errors``: ``EngineUnavailable``
when the engine cannot be reached, ``NotFound`` (404), ``Conflict`` (409) and
``EngineError`` with the engine's own message otherwise. Secret values are
never logged nor put in an error message.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from envd.engine.docker import payloads, versions
from envd.engine.docker.images import SdkImages
from envd.engine.docker.payloads import Json
from envd.engine.docker.transport import (
    Connection,
    Endpoint,
    ProtocolError,
    Response,
    StaleConnection,
    demux,
    failure_reason,
    get_once,
    is_multiplexed,
    json_objects,
    stream_lines,
)
from envd.engine.docker.versions import EngineInfo
from envd.engine.secret_paths import secrets_by_root
from envd.spec import engine_host
from envd.spec.engine_host import EngineHost
from envd.values import labels
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
)

if TYPE_CHECKING:
    from envd.engine.base import ProgressFn

DEFAULT_TIMEOUT = 60.0
_DEFAULT_TIMEOUT = -1.0  # "the engine's default read timeout"; None: no limit
_JSON = {"Content-Type": "application/json"}


class DockerEngine:
    """``Engine`` against a real Docker engine (API 1.41 or newer) or Podman's Docker API.

    The API version is negotiated on first use (``engine_info``): the lower of
    the engine's and the newest envd knows.
    """

    def __init__(
        self, host: str | EngineHost | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        if host is None:
            target = engine_host.resolve()
        elif isinstance(host, str):
            target = engine_host.explicit(host)
        else:
            target = host
        self.target = target
        self.host = target.host
        self.timeout = timeout
        self._endpoint = Endpoint(target)
        self._local = threading.local()
        self._info: EngineInfo | None = None
        self._info_lock = threading.Lock()
        self._images = SdkImages(
            target, timeout, self.api_version, self._api_error, self._unavailable
        )

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

    def engine_info(self) -> EngineInfo:
        """What the engine is and the API version envd speaks to it (asked once)."""
        with self._info_lock:
            if self._info is None:
                doc = self._send("GET", "/version", versioned=False)
                if doc.status != 200:
                    raise self._unavailable(f"it answered HTTP {doc.status} to /version")
                try:
                    answer = doc.json()
                except ValueError:
                    answer = None
                self._info = versions.negotiate(answer, self.host)
            return self._info

    def api_version(self) -> str:
        return self.engine_info().api_used

    @property
    def api(self) -> versions.Version:
        return self.engine_info().api

    def _url(self, path: str, query: Mapping[str, str | int] | None, versioned: bool = True) -> str:
        url = f"/v{self.api_version()}{path}" if versioned else path
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
        versioned: bool = True,
    ) -> Response:
        """One request on this thread's keep-alive connection, retried once if stale."""
        url = self._url(path, query, versioned)
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
        return payloads.api_error(resp.status, payloads.engine_message(resp.body), what)

    _api_error = staticmethod(payloads.api_error)

    # --- observe -----------------------------------------------------------
    def ping(self) -> None:
        try:
            status = get_once(self._endpoint.connect, "/_ping", self.timeout)
        except (OSError, ProtocolError, StaleConnection, ValueError) as exc:
            raise self._unavailable(exc) from None
        if status != 200:
            raise self._unavailable(f"it answered HTTP {status} to a ping")
        self.engine_info()  # an engine too old for envd is refused here, once

    def list_containers(self, project: str) -> list[ObservedContainer]:
        q: dict[str, str | int] = {"all": 1, **payloads.project_filter(project)}
        return payloads.observed_containers(self._call("GET", "/containers/json", q).json())

    def list_networks(self, project: str) -> list[ObservedNetwork]:
        q = payloads.project_filter(project)
        return payloads.observed_networks(self._call("GET", "/networks", q).json())

    def list_volumes(self, project: str) -> list[ObservedVolume]:
        q = payloads.project_filter(project)
        return payloads.observed_volumes(self._call("GET", "/volumes", q).json())

    def inspect_image(self, ref: str) -> ObservedImage | None:
        resp = self._send("GET", f"/images/{quote(ref, safe='/:@')}/json")
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._error(resp, f"image {ref}")
        return payloads.observed_image(ref, resp.json())

    def registry_digest(self, ref: str) -> str | None:
        """The manifest digest the registry serves for ``ref`` now (no pull), or None
        (offline, unknown repository): the engine's credentials and registry settings."""
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
        return payloads.container_state(self._inspect_container(container_id))

    # --- images ------------------------------------------------------------
    def pull_image(self, ref: str, progress: ProgressFn | None = None) -> ObservedImage:
        self._images.pull(ref, progress)
        image = self.inspect_image(ref)
        if image is None:
            raise EngineError(f"pulling {ref} finished but the image is not in the engine")
        return image

    def build_image(self, req: BuildRequest, progress: ProgressFn | None = None) -> ObservedImage:
        image_id = self._images.build(req, progress)
        image = self.inspect_image(req.tag) or (self.inspect_image(image_id) if image_id else None)
        if image is None:
            raise EngineError(f"building {req.tag} finished but the image is not in the engine")
        return image

    # --- networks and volumes ---------------------------------------------
    def create_network(
        self, name: str, labels: dict[str, str], driver: str = "bridge", internal: bool = False
    ) -> str:
        body = payloads.network_body(name, labels, driver, internal, self.api)
        doc = self._call("POST", "/networks/create", body=body, what=f"network {name}").json()
        return str(doc["Id"])

    def remove_network(self, name: str) -> None:
        resp = self._send("DELETE", f"/networks/{quote(name)}")
        if resp.status in (200, 204):
            return
        if resp.status == 403:  # "has active endpoints"
            raise Conflict(f"network {name}: {payloads.engine_message(resp.body)}", 403)
        raise self._error(resp, f"network {name}")

    def network_containers(self, name: str) -> list[str]:
        doc = self._call("GET", f"/networks/{quote(name)}", what=f"network {name}").json()
        attached = (doc or {}).get("Containers") or {}
        return sorted(str(c.get("Name") or cid) for cid, c in attached.items())

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
        return self._exists("volume", name)

    def network_exists(self, name: str) -> bool:
        return self._exists("network", name)

    def _exists(self, kind: str, name: str) -> bool:
        resp = self._send("GET", f"/{kind}s/{quote(name)}")
        if resp.status == 404:
            return False
        if resp.status != 200:
            raise self._error(resp, f"{kind} {name}")
        # The engine also matches a network id prefix; only an exact name counts.
        return bool(resp.json().get("Name") == name)

    # --- containers --------------------------------------------------------
    def create_container(self, spec: ContainerCreate) -> str:
        body = payloads.create_body(spec, self.api)
        doc = self._call(
            "POST",
            "/containers/create",
            {"name": spec.name},
            body,
            what=f"creating container {spec.name}",
        ).json()
        cid = str(doc["Id"])
        try:
            for att in payloads.networks_to_connect(spec, self.api):
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
            with contextlib.suppress(EngineError):
                self._delete_container(cid, volumes=True)
            raise
        return cid

    def _write_secrets(self, cid: str, spec: ContainerCreate) -> None:
        what = f"writing secrets into container {spec.name}"
        if not spec.read_only:
            self._put_archive(cid, "/", payloads.secrets_tar(spec.secrets, "/"), what)
            return
        # A read-only root filesystem: the engine only writes into volumes, and
        # only when the archive's destination path lies in one.
        for root, group in secrets_by_root(spec.secrets).items():
            self._put_archive(cid, root, payloads.secrets_tar(group, root), what)

    def start_container(self, container_id: str) -> None:
        self._call(
            "POST", f"/containers/{quote(container_id)}/start", what=f"container {container_id}"
        )

    def stop_container(self, container_id: str, timeout: int | None) -> None:
        if timeout is None:
            timeout = payloads.stop_timeout(self._inspect_container(container_id))
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
        out = payloads.mounts(doc)
        if any(m.anonymous for m in out):
            q = {"filters": payloads.filters(label=[f"{labels.SECRETS_VOLUME}=1"])}
            vols = self._call("GET", "/volumes", q, what="listing volumes").json()
            out = payloads.mark_secret_volumes(out, vols)
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
        lines = data.decode("utf-8", "replace").splitlines()
        return lines[-tail:] if tail > 0 else lines

    def _stream(self, path: str, q: Mapping[str, str | int]) -> Iterator[bytes]:
        """A streamed answer's body on a dedicated connection with no read timeout
        (it may idle for ever), closed when done."""
        conn = Connection(self._endpoint.connect)
        try:
            try:
                status, headers = conn.request("GET", self._url(path, q), {}, None, None)
            except (OSError, ProtocolError, StaleConnection, ValueError) as exc:
                raise self._unavailable(exc) from None
            chunks = conn.body_chunks("GET", status, headers)
            if status != 200:
                raise self._error(Response(status, b"".join(chunks), headers))
            yield from chunks
        finally:
            conn.close()

    def stream_logs(
        self, container_id: str, tail: int | None = None, follow: bool = True
    ) -> Iterator[str]:
        """Log lines as they come."""
        tty = bool((self._inspect_container(container_id).get("Config") or {}).get("Tty"))
        q: dict[str, str | int] = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(follow),
            "tail": "all" if tail is None else str(tail),
        }
        yield from stream_lines(self._stream(f"/containers/{quote(container_id)}/logs", q), tty)

    def stream_events(self, project: str) -> Iterator[dict[str, Any]]:
        """The engine's container events for one project, until the connection closes
        (the stream idles between events, and the daemon must not poll)."""
        q: dict[str, str | int] = {"filters": payloads.events_filter(project)}
        yield from json_objects(self._stream("/events", q))
