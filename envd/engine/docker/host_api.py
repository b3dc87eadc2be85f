"""The engine call of the container-level host settings (issue 12), mixed
into ``DockerEngine``: a container's host settings as inspected. (Which API
version a create speaks is the negotiated one: ``envd.engine.docker.versions``.)
"""

from __future__ import annotations

from typing import Any

from envd.engine.docker import host_payloads
from envd.engine.docker.payloads import Json
from envd.engine.docker.transport import Response
from envd.values.types import HostSettings


class HostSettingsApi:
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

    def container_host(self, container_id: str) -> HostSettings:
        """The container's host settings as the engine reports them (one inspect)."""
        return host_payloads.observed_host(self._inspect_container(container_id))
