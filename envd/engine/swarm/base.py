"""The interface envd's swarm target needs from a Docker Swarm manager.

Implementations: ``envd.engine.swarm.real.DockerSwarmEngine`` (the Docker API)
and ``envd.engine.swarm.fake.FakeSwarm`` (in memory, for unit tests). The
contract suite ``tests/contract/test_swarm_contract.py`` runs one set of cases
against both, so the fake cannot drift.

Errors are the engine's (``envd.values.errors``): ``EngineUnavailable`` when
the engine cannot be reached, ``NotFound`` for a missing object, ``Conflict``
for a name taken or an object in use, ``EngineError`` otherwise. Secret
values go in once, on create, and no call ever returns them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from envd.engine.base import ProgressFn
from envd.values.swarm_types import (
    ObservedConfig,
    ObservedSecret,
    ObservedService,
    ObservedSwarmNetwork,
    ObservedTask,
    SwarmInfo,
    SwarmServiceSpec,
)
from envd.values.types import BuildRequest, ObservedImage, ObservedVolume


class SwarmEngine(Protocol):
    @property
    def host(self) -> str:
        """Where the engine listens (named in messages)."""

    def ping(self) -> None:
        """Raise EngineUnavailable unless the engine answers."""

    def ipvs_missing(self) -> bool:
        """Whether the manager's kernel lacks IPVS: no virtual IPs, no routing mesh.

        Then a service is reachable only by DNS round robin and through ports
        published in host mode on the node running each task.
        """

    # --- the swarm -----------------------------------------------------------
    def swarm_info(self) -> SwarmInfo: ...

    def node_names(self) -> dict[str, str]:
        """Node id → hostname."""

    # --- images (on this node) -----------------------------------------------
    def inspect_image(self, ref: str) -> ObservedImage | None: ...

    def build_image(
        self, req: BuildRequest, progress: ProgressFn | None = None
    ) -> ObservedImage: ...

    # --- services and tasks --------------------------------------------------
    def list_services(self, labels: Mapping[str, str]) -> list[ObservedService]:
        """The services carrying every one of ``labels``."""

    def create_service(
        self,
        spec: SwarmServiceSpec,
        secret_ids: Mapping[str, str],
        config_ids: Mapping[str, str] | None = None,
    ) -> str:
        """Create a service (``Conflict`` if the name is taken); its id.

        ``secret_ids`` and ``config_ids`` map the versioned names the spec
        mounts to the objects' ids."""

    def update_service(
        self,
        service_id: str,
        version: int,
        spec: SwarmServiceSpec,
        secret_ids: Mapping[str, str],
        config_ids: Mapping[str, str] | None = None,
    ) -> None:
        """Replace a service's spec; ``version`` must be the one last observed."""

    def remove_service(self, service_id: str) -> None:
        """Remove a service (and its tasks); a missing one is no error."""

    def list_tasks(self, service_ids: list[str]) -> list[ObservedTask]:
        """The tasks (current and recent history) of these services."""

    def container_ports(self, container_id: str) -> list[str] | None:
        """A task container's published ports as ``IP:PORT->TARGET/PROTO``; None if not here."""

    # --- secrets -------------------------------------------------------------
    def list_secrets(self, labels: Mapping[str, str]) -> list[ObservedSecret]: ...

    def create_secret(self, name: str, labels: Mapping[str, str], value: bytes) -> str:
        """Create a secret (``Conflict`` if the name is taken); its id."""

    def remove_secret(self, secret_id: str) -> None:
        """Remove a secret (``Conflict`` while a service uses it); a missing one is no error."""

    # --- configs (Compose's `configs`: not secret, but immutable like secrets) ---
    def list_configs(self, labels: Mapping[str, str]) -> list[ObservedConfig]: ...

    def create_config(self, name: str, labels: Mapping[str, str], value: bytes) -> str:
        """Create a config (``Conflict`` if the name is taken); its id."""

    def remove_config(self, config_id: str) -> None:
        """Remove a config (``Conflict`` while a service uses it); a missing one is no error."""

    # --- networks and volumes ------------------------------------------------
    def list_swarm_networks(self, labels: Mapping[str, str]) -> list[ObservedSwarmNetwork]: ...

    def find_network(self, name: str) -> ObservedSwarmNetwork | None:
        """The network named exactly ``name`` (any scope), or None."""

    def create_overlay_network(
        self, name: str, labels: Mapping[str, str], internal: bool = False, driver: str = "overlay"
    ) -> str: ...

    def remove_network(self, name: str) -> None:
        """Remove a network by name or id (``NotFound`` if absent, ``Conflict`` while in use)."""

    def list_volumes(self, project: str) -> list[ObservedVolume]:
        """This node's volumes labelled with the project."""

    def remove_volume(self, name: str) -> None: ...
