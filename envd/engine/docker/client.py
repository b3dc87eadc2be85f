"""``DockerEngine``: the only module in envd that talks to Docker (or Podman's Docker API).

It maps the ``Engine`` protocol onto Docker API calls. Those go through
``envd.engine.docker.session`` (the endpoint, the negotiated API version and
the error mapping) over the minimal HTTP/1.1 client of
``envd.engine.docker.transport``, because importing the Docker SDK alone costs
more than a no-op ``envd up`` may take in total. The JSON it sends and reads
is built and parsed by the pure functions of ``envd.engine.docker.payloads``;
building and pulling images (the only SDK use) is ``envd.engine.docker.images``.
Where Podman's Docker API differs, the difference is handled here and listed
in docs/compatibility.md. Secret values are never logged nor put in an error
message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import posixpath
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from envd.engine.docker import answers, host_payloads, payloads
from envd.engine.docker.host_api import HostSettingsApi
from envd.engine.docker.payloads import Json
from envd.engine.docker.session import DEFAULT_TIMEOUT, EngineSession
from envd.engine.docker.transport import (
    ProtocolError,
    StaleConnection,
    demux,
    get_once,
    is_multiplexed,
    json_objects,
    stream_lines,
)
from envd.engine.secret_paths import config_refusal, secrets_by_root
from envd.values import labels
from envd.values.errors import Conflict, EngineError, NotFound
from envd.values.types import (
    BuildRequest,
    ContainerCreate,
    ContainerState,
    ExecOptions,
    IpamPool,
    ObservedContainer,
    ObservedImage,
    ObservedMount,
    ObservedNetwork,
    ObservedVolume,
)

if TYPE_CHECKING:
    from envd.engine.base import ProgressFn

__all__ = ["DEFAULT_TIMEOUT", "DockerEngine"]


def _inside(path: str, root: str) -> bool:
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


class DockerEngine(EngineSession, HostSettingsApi):
    """``Engine`` against a real Docker engine (API 1.41 or newer) or Podman's Docker API.

    The API version is negotiated on first use (``engine_info``): the lower of
    the engine's and the newest envd knows.
    """

    # --- observe -----------------------------------------------------------
    def ping(self) -> None:
        try:
            status, headers = get_once(self._endpoint.connect, "/_ping", self.timeout)
        except (OSError, ProtocolError, StaleConnection, ValueError) as exc:
            raise self._unavailable(exc) from None
        if status != 200:
            raise self._unavailable(f"it answered HTTP {status} to a ping")
        self.learn_from_ping(headers)
        self.engine_info()  # an engine too old for envd is refused here, once

    # status at 500 services (issue 15): the list's answer, read again, is often
    # byte for byte the last one (the engine's "Up 3 minutes" moves once a
    # minute); its parse, a pure function of those bytes, is then reused.
    _listed: tuple[str, bytes, tuple[ObservedContainer, ...]] | None = None

    def list_containers(self, project: str) -> list[ObservedContainer]:
        q: dict[str, str | int] = {"all": 1, **payloads.project_filter(project)}
        body = self._call("GET", "/containers/json", q).body
        last = self._listed
        if last is not None and last[0] == project and last[1] == body:
            found = list(last[2])
        else:
            found = answers.observed_containers(json.loads(body) if body else None)
            self._listed = (project, body, tuple(found))
        if self.engine_info().is_podman:
            # Podman's list shows neither health nor HostConfig (the planner needs
            # the id a `container:` network mode joined): ask each one's inspect.
            found = [self._podman_inspected(c) for c in found]
        return found

    def _podman_inspected(self, c: ObservedContainer) -> ObservedContainer:
        try:
            doc = self._inspect_container(c.id)
        except NotFound:
            return c
        mode = str((doc.get("HostConfig") or {}).get("NetworkMode") or "")
        if c.status != "running":
            return dataclasses.replace(c, network_mode=mode)
        health = answers.container_state(doc).health
        return dataclasses.replace(c, health=health, network_mode=mode)

    def list_networks(self, project: str) -> list[ObservedNetwork]:
        q = payloads.project_filter(project)
        return answers.observed_networks(self._call("GET", "/networks", q).json())

    def list_volumes(self, project: str) -> list[ObservedVolume]:
        q = payloads.project_filter(project)
        return answers.observed_volumes(self._call("GET", "/volumes", q).json())

    def inspect_image(self, ref: str) -> ObservedImage | None:
        resp = self._send("GET", f"/images/{quote(ref, safe='/:@')}/json")
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._error(resp, f"image {ref}")
        return answers.observed_image(ref, resp.json())

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
        return answers.container_state(self._inspect_container(container_id))

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
        self,
        name: str,
        labels: dict[str, str],
        driver: str = "bridge",
        internal: bool = False,
        ipam_driver: str = "",
        ipam: tuple[IpamPool, ...] = (),
        enable_ipv6: bool = False,
    ) -> str:
        body = payloads.network_body(
            name, labels, driver, internal, self.api, ipam_driver, ipam, enable_ipv6
        )
        for attempt in range(3):
            try:
                doc = self._call("POST", "/networks/create", body=body, what=f"network {name}")
                return str(doc.json()["Id"])
            except EngineError as exc:
                # Podman picks a free subnet by walking the host's interfaces and
                # fails ("route ip+net: no such network interface") when one goes
                # away meanwhile (another engine's bridge or veth); nothing was made.
                if attempt == 2 or "no such network interface" not in str(exc):
                    raise
        raise AssertionError("unreachable")

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
        names = {str(c.get("Name") or cid) for cid, c in attached.items()}
        if attached and self.engine_info().is_podman:
            # Podman lists stopped members too; only running ones count.
            running = self._call("GET", "/containers/json").json() or []
            names &= {str(n).lstrip("/") for c in running for n in c.get("Names") or []}
        return sorted(names)

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
    def container_name_owner(self, name: str) -> str | None:
        resp = self._send("GET", f"/containers/{quote(name)}/json")
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._error(resp, f"container {name}")
        doc = resp.json()
        # The engine also matches an id prefix; only an exact name counts.
        if str(doc.get("Name") or "") != f"/{name}":
            return None
        return str(((doc.get("Config") or {}).get("Labels") or {}).get(labels.PROJECT) or "")

    def create_container(self, spec: ContainerCreate) -> str:
        refusal = config_refusal(spec)
        if refusal is None and spec.host.device_requests and self.engine_info().is_podman:
            # Podman 4's Docker API accepts DeviceRequests and drops them (podman#22645).
            refusal = (
                f"container {spec.name}: Podman's Docker API ignores GPU device requests"
                " (gpus), so the container would start without its GPUs"
            )
        if refusal is not None:
            raise EngineError(refusal)
        body = payloads.create_body(spec, self.api)
        if spec.entrypoint == () and self.engine_info().is_podman:
            # Podman reads an empty Entrypoint as unset and keeps the image's;
            # [""] clears it there, as the Docker CLI's `--entrypoint ''` does.
            body["Entrypoint"] = [""]
        doc = self._call(
            "POST",
            "/containers/create",
            host_payloads.create_query(spec),
            body,
            what=f"creating container {spec.name}",
        ).json()
        cid = str(doc["Id"])
        try:
            for att in payloads.networks_to_connect(spec, self.api):
                self._call(
                    "POST",
                    f"/networks/{quote(att.network)}/connect",
                    body={"Container": cid, "EndpointConfig": payloads.endpoint_config(att)},
                    what=f"connecting {spec.name} to network {att.network}",
                )
            if spec.secrets or spec.configs:
                self._write_secrets(cid, spec)
        except BaseException:
            # The engine's own `v=1`: the volumes it made for this container go
            # (secrets among them); the ones handed over by name stay.
            with contextlib.suppress(EngineError):
                if self.engine_info().is_podman:
                    self._podman_undo_create(cid, spec.anonymous_volumes)
                else:
                    self._delete_container(cid, volumes=True)
            raise
        return cid

    def _write_secrets(self, cid: str, spec: ContainerCreate) -> None:
        if spec.configs:  # read-only files (config_refusal checked where they may go)
            tar = payloads.secrets_tar(spec.configs, "/", parents=False)
            self._put_archive(cid, "/", tar, f"writing configs into container {spec.name}")
        what = f"writing secrets into container {spec.name}"
        for secret in spec.secrets:
            for m in spec.mounts:
                if m.read_only and _inside(secret.target, m.target):
                    # Docker refuses the archive; Podman would write the secret
                    # into the volume or host directory behind the mount.
                    raise EngineError(f"{what}: {secret.target} lies in read-only mount {m.target}")
        if spec.secrets and not spec.read_only:
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
            timeout = answers.stop_timeout(self._inspect_container(container_id))
        self._call(
            "POST",
            f"/containers/{quote(container_id)}/stop",
            {"t": int(timeout)},
            what=f"container {container_id}",
            timeout=max(self.timeout, timeout + 30.0),
        )

    def remove_container(
        self, container_id: str, volumes: bool = False, mounted: tuple[str, ...] | None = None
    ) -> None:
        podman = self.engine_info().is_podman
        if mounted is not None and not podman and not answers.may_be_anonymous(mounted):
            # The list showed no volume the engine named: none to take along,
            # so no inspect (one call per container less in `down`).
            self._delete_container(container_id, volumes)
            return
        # Anonymous volumes holding secrets go with their container even when
        # the others stay (`down` without -v). With -v the engine removes the
        # anonymous volumes it created, not those handed over by name: we do.
        resp = self._send("GET", f"/containers/{quote(container_id)}/json")
        mounts = self._mounts(resp.json()) if resp.status == 200 else []
        # Podman's v=1 also removes an anonymous volume another container
        # mounts by name (Docker's only the ones made for this one): we do it.
        self._delete_container(container_id, volumes and not podman)
        for m in mounts:
            if m.secrets or (volumes and m.anonymous):
                with contextlib.suppress(NotFound, Conflict):
                    self.remove_volume(m.source)

    def _podman_undo_create(self, cid: str, handed: tuple[str, ...]) -> None:
        """Remove a half-made container and the volumes made for it, not those handed over."""
        made = [m.source for m in self.container_mounts(cid) if m.anonymous]
        self._delete_container(cid, volumes=False)
        for name in made:
            if name not in handed:
                with contextlib.suppress(NotFound, Conflict):
                    self.remove_volume(name)

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
        out = answers.mounts(doc, self.engine_info().is_podman)
        if any(m.anonymous and not m.secrets for m in out):
            q = {"filters": payloads.filters(label=[f"{labels.SECRETS_VOLUME}=1"])}
            vols = self._call("GET", "/volumes", q, what="listing volumes").json()
            out = answers.mark_secret_volumes(out, vols)
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
        for attempt in (0, 1):
            try:
                self._call(
                    "PUT",
                    f"/containers/{quote(container_id)}/archive",
                    {"path": path},
                    data=data,
                    headers={"Content-Type": "application/x-tar"},
                    what=what,
                )
                return
            except EngineError as exc:
                # Podman's copier process now and then dies mid-archive under
                # load ("passing bulk input to subprocess"); writing it again
                # is harmless, the files are simply replaced.
                if attempt or "bulk input to subprocess" not in str(exc):
                    raise

    def exec_run(
        self, container_id: str, cmd: list[str], options: ExecOptions | None = None
    ) -> tuple[int, bytes]:
        created = self._call(
            "POST",
            f"/containers/{quote(container_id)}/exec",
            body=payloads.exec_body(cmd, options),
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

    def stream_events(
        self, project: str, since: float | None = None, until: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """The engine's container events for one project, until the connection closes
        (the stream idles between events, and the daemon must not poll)."""
        podman = self.engine_info().is_podman
        q: dict[str, str | int] = {"filters": payloads.events_filter(project, podman)}
        # readiness: replay from `since` (no gap before the stream connects), end at `until`
        if since is not None:
            q["since"] = f"{since:.9f}"
        if until is not None:
            q["until"] = f"{until:.9f}"
        yield from json_objects(self._stream("/events", q))
