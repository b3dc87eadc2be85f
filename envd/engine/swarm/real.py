"""``DockerSwarmEngine``: the ``SwarmEngine`` of ``envd.engine.swarm.base`` on the Docker API.

It extends ``DockerEngine`` (same HTTP client over the unix socket, same error
mapping) with swarm inspect, services, tasks, secrets and overlay networks.
Values crossing this boundary are the frozen dataclasses in
``envd.values.swarm_types``; the translation to and from API payloads is
``envd.engine.swarm.payloads``. Secret values are sent once, base64-encoded,
to ``/secrets/create`` and never logged nor put in an error message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from urllib.parse import quote

from envd.engine.docker.client import DockerEngine
from envd.engine.docker.payloads import engine_message, filters, label_filter
from envd.engine.swarm import payloads
from envd.values.errors import Conflict, EngineError, NotFound, UsageError
from envd.values.swarm_types import (
    ObservedConfig,
    ObservedSecret,
    ObservedService,
    ObservedSwarmNetwork,
    ObservedTask,
    SwarmInfo,
    SwarmServiceSpec,
)


def ipvs_missing(host: str) -> bool:
    """Whether the engine runs on this machine under a kernel built without IPVS.

    Swarm's virtual IPs and routing mesh are IPVS; without it a service name
    resolves to an address nobody answers. Only a local engine can be
    checked, and only a kernel that publishes its config says so for sure.
    """
    if not (host.startswith("unix://") or host.startswith("/")):
        return False
    try:
        import gzip

        with gzip.open("/proc/config.gz", "rt") as fh:
            return "# CONFIG_IP_VS is not set" in fh.read()
    except OSError:
        return False


class DockerSwarmEngine(DockerEngine):
    """``DockerEngine`` plus the swarm calls (API 1.41 or newer; never Podman)."""

    def ipvs_missing(self) -> bool:
        return ipvs_missing(self.host)

    # --- swarm ---------------------------------------------------------------
    def swarm_info(self) -> SwarmInfo:
        info = self.engine_info()
        if info.is_podman:
            raise UsageError(
                f"the engine at {self.host} is Podman {info.version}, and Swarm has no Podman"
                " counterpart; deploy to a Docker engine in swarm mode (DOCKER_HOST or"
                " DOCKER_CONTEXT) or use `envd export --format k8s`"
            )
        return payloads.swarm_info(self._call("GET", "/info").json())

    def node_names(self) -> dict[str, str]:
        """Node id → hostname."""
        return payloads.node_names(self._call("GET", "/nodes").json())

    # --- services ------------------------------------------------------------
    def list_services(self, labels: Mapping[str, str]) -> list[ObservedService]:
        q: dict[str, str | int] = {**label_filter(labels), "status": "true"}
        return payloads.observed_services(self._call("GET", "/services", q).json())

    def create_service(
        self,
        spec: SwarmServiceSpec,
        secret_ids: Mapping[str, str],
        config_ids: Mapping[str, str] | None = None,
    ) -> str:
        doc = self._call(
            "POST",
            "/services/create",
            body=payloads.service_payload(spec, secret_ids, config_ids),
            what=f"creating service {spec.name}",
        ).json()
        return str(doc["ID"])

    def update_service(
        self,
        service_id: str,
        version: int,
        spec: SwarmServiceSpec,
        secret_ids: Mapping[str, str],
        config_ids: Mapping[str, str] | None = None,
    ) -> None:
        self._call(
            "POST",
            f"/services/{quote(service_id)}/update",
            {"version": version},
            body=payloads.service_payload(spec, secret_ids, config_ids),
            what=f"updating service {spec.name}",
        )

    def remove_service(self, service_id: str) -> None:
        try:
            self._call("DELETE", f"/services/{quote(service_id)}", what=f"service {service_id}")
        except NotFound:
            pass

    def list_tasks(self, service_ids: list[str]) -> list[ObservedTask]:
        if not service_ids:
            return []
        q: dict[str, str | int] = {"filters": filters(service=sorted(service_ids))}
        return payloads.observed_tasks(self._call("GET", "/tasks", q).json())

    def container_ports(self, container_id: str) -> list[str] | None:
        """A local container's published ports as ``IP:PORT->TARGET/PROTO``; None if not here.

        A task's own port report has no address, and with IPv6 enabled the
        engine binds 0.0.0.0 and :: to different host ports.
        """
        resp = self._send("GET", f"/containers/{quote(container_id)}/json")
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._error(resp, f"container {container_id}")
        return payloads.container_ports(resp.json())

    # --- secrets and configs: the same object API under /secrets and /configs --
    def list_secrets(self, labels: Mapping[str, str]) -> list[ObservedSecret]:
        return payloads.observed_secrets(self._call("GET", "/secrets", label_filter(labels)).json())

    def create_secret(self, name: str, labels: Mapping[str, str], value: bytes) -> str:
        return self._create_object("secret", name, labels, value)

    def remove_secret(self, secret_id: str) -> None:
        self._remove_object("secret", secret_id)

    def list_configs(self, labels: Mapping[str, str]) -> list[ObservedConfig]:
        return payloads.observed_configs(self._call("GET", "/configs", label_filter(labels)).json())

    def create_config(self, name: str, labels: Mapping[str, str], value: bytes) -> str:
        return self._create_object("config", name, labels, value)

    def remove_config(self, config_id: str) -> None:
        self._remove_object("config", config_id)

    def _create_object(self, kind: str, name: str, labels: Mapping[str, str], value: bytes) -> str:
        body = {
            "Name": name,
            "Labels": dict(labels),
            "Data": base64.b64encode(value).decode("ascii"),
        }
        # _send, not _call: an error must never echo the request (a secret's
        # value, a config's possibly large content); it names the object.
        resp = self._send("POST", f"/{kind}s/create", body=body)
        if resp.status in (200, 201):
            return str(resp.json()["ID"])
        msg = f"creating {kind} {name}: {engine_message(resp.body) or f'HTTP {resp.status}'}"
        if resp.status == 409:
            raise Conflict(msg, resp.status)
        raise EngineError(msg, resp.status)

    def _remove_object(self, kind: str, object_id: str) -> None:
        resp = self._send("DELETE", f"/{kind}s/{quote(object_id)}")
        if resp.status in (200, 204, 404):
            return
        msg = f"removing {kind} {object_id}: {engine_message(resp.body)}"
        # "… is in use by the following service": 400 on 20.10, 409 elsewhere.
        if resp.status in (400, 409) and "in use" in msg:
            raise Conflict(msg, resp.status)
        raise EngineError(msg, resp.status)

    # --- networks ------------------------------------------------------------
    def list_swarm_networks(self, labels: Mapping[str, str]) -> list[ObservedSwarmNetwork]:
        doc = self._call("GET", "/networks", label_filter(labels)).json()
        return [payloads.observed_network(n) for n in doc or []]

    def find_network(self, name: str) -> ObservedSwarmNetwork | None:
        """The network named exactly ``name`` (not an id prefix), or None."""
        q = {"filters": json.dumps({"name": [name]})}
        for n in self._call("GET", "/networks", q).json() or []:
            if n.get("Name") == name:
                return payloads.observed_network(n)
        return None

    def create_overlay_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False, driver: str = "overlay"
    ) -> str:
        body = payloads.overlay_network_body(name, labels, internal, driver, self.api)
        doc = self._call("POST", "/networks/create", body=body, what=f"network {name}").json()
        return str(doc["Id"])
