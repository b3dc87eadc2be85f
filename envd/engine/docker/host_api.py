"""The engine calls of the container-level host settings (issue 12), mixed
into ``DockerEngine``: the engine's API version (asked once, only when a
create needs more than 1.41) and a container's host settings as inspected.
"""

from __future__ import annotations

from typing import Any

from envd.engine.docker import host_payloads, payloads
from envd.engine.docker.payloads import Json
from envd.engine.docker.transport import Response
from envd.values.errors import EngineError
from envd.values.types import ContainerCreate, HostSettings


class HostSettingsApi:
    _engine_api_seen: str = ""

    # Provided by DockerEngine.
    def _call(
        self,
        method: str,
        path: str,
        query: Any = None,
        body: Json = None,
        *,
        what: str = "",
        ok: tuple[int, ...] = (200, 201, 204, 304),
        **kw: Any,
    ) -> Response:
        raise NotImplementedError

    def _inspect_container(self, container_id: str) -> Json:
        raise NotImplementedError

    def _engine_api(self) -> str:
        """The newest API version the engine speaks (``GET /version``), asked once."""
        if not self._engine_api_seen:
            try:
                doc = self._call("GET", "/version", what="asking the engine's version").json()
                self._engine_api_seen = str(doc.get("ApiVersion") or host_payloads.BASE_API)
            except EngineError:
                # Not known: stay on the version every supported engine reads.
                self._engine_api_seen = host_payloads.BASE_API
        return self._engine_api_seen

    def _create_request(self, spec: ContainerCreate) -> tuple[dict[str, str | int], Json, str]:
        """The query, body and API version of ``spec``'s create."""
        api = host_payloads.create_api(spec, self._engine_api)
        return host_payloads.create_query(spec), payloads.create_body(spec, api), api

    def container_host(self, container_id: str) -> HostSettings:
        """The container's host settings as the engine reports them (one inspect)."""
        return host_payloads.observed_host(self._inspect_container(container_id))
