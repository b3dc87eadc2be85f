"""The small interface envd needs from a container engine.

Implementations: ``envd.engine.docker.client.DockerEngine`` (the only module that
speaks to Docker), ``envd.engine.fake.FakeEngine`` (in memory, for unit
tests) and ``envd.engine.exploding.ExplodingEngine`` (fails every call, for
proving that pure code paths never touch the engine). A contract suite in
``tests/contract`` runs against both the fake and the real engine so the fake
cannot drift.

Errors: every method raises ``envd.values.errors.EngineUnavailable`` when the engine
cannot be reached, ``NotFound`` for a missing object, ``Conflict`` for a name
in use, and ``EngineError`` for anything else the engine refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from envd.values.limit_support import LimitSupport
from envd.values.types import (
    BuildRequest,
    ContainerCreate,
    ContainerState,
    ExecOptions,
    HostSettings,
    IpamPool,
    ObservedContainer,
    ObservedImage,
    ObservedMount,
    ObservedNetwork,
    ObservedVolume,
)

ProgressFn = Callable[[str], None]


class Engine(Protocol):
    def ping(self) -> None:
        """Raise EngineUnavailable unless the engine answers."""

    def describe(self) -> dict[str, str]:
        """Which engine this is, for ``status``: ``endpoint``, ``context``, ``name``
        ("Docker", "Podman"), ``version`` and ``api_version`` (the one spoken)."""

    def ignored_limits(self) -> LimitSupport:
        """The resource limits this engine would create a container without while saying
        so nowhere the caller sees (rootless Podman on cgroups v1 drops them all, Docker
        without a cgroup manager the cgroup ones, Docker on a kernel without swap
        accounting the swap limit), with the engine named; ``APPLIES_ALL`` for most.
        Asked only when a spec sets such a limit; an engine may ask its own info once."""

    # --- observe -----------------------------------------------------------
    def list_containers(self, project: str) -> list[ObservedContainer]:
        """All containers (any state) labelled with this project, in one call."""

    def list_networks(self, project: str) -> list[ObservedNetwork]: ...

    def list_volumes(self, project: str) -> list[ObservedVolume]: ...

    def inspect_image(self, ref: str) -> ObservedImage | None:
        """The local image for a reference or id, or None when absent."""

    def container_state(self, container_id: str) -> ContainerState: ...

    def container_mounts(self, container_id: str) -> list[ObservedMount]:
        """The container's mounts (one inspect), anonymous and secret volumes marked."""

    def container_host(self, container_id: str) -> HostSettings:
        """The container's host settings (one inspect), with the engine's defaults filled in."""

    # --- images ------------------------------------------------------------
    def pull_image(self, ref: str, progress: ProgressFn | None = None) -> ObservedImage: ...

    def build_image(
        self, req: BuildRequest, progress: ProgressFn | None = None
    ) -> ObservedImage: ...

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
        """Create a network; ``ipam`` pools fix its subnets (static addresses need one)."""

    def remove_network(self, name: str) -> None: ...

    def network_containers(self, name: str) -> list[str]:
        """Names of the containers the engine lists as attached to network ``name``."""
        ...

    def create_volume(
        self,
        name: str,
        labels: dict[str, str],
        driver: str = "local",
        driver_opts: dict[str, str] | None = None,
    ) -> str: ...

    def remove_volume(self, name: str) -> None: ...

    def volume_exists(self, name: str) -> bool: ...

    def network_exists(self, name: str) -> bool: ...

    # --- containers --------------------------------------------------------
    def container_name_owner(self, name: str) -> str | None:
        """The project label of the container named exactly ``name`` ("" when it has
        none), or None when no container has that name (a ``container_name`` check)."""

    def create_container(self, spec: ContainerCreate) -> str:
        """Create (not start) a container, attach its networks, write its secrets."""

    def start_container(self, container_id: str) -> None: ...

    def stop_container(self, container_id: str, timeout: int | None) -> None:
        """Stop with the container's own stop signal, SIGKILL after ``timeout`` s.

        ``None``: after the grace period the container was created with.
        """

    def remove_container(
        self, container_id: str, volumes: bool = False, mounted: tuple[str, ...] | None = None
    ) -> None:
        """Remove a (stopped) container and envd's secret volumes with it.

        Its other anonymous volumes stay unless ``volumes`` is set; then they go
        too, including ones handed over from a replaced container. Named
        volumes always stay. ``mounted``: the volume names a list showed it
        mounting (``ObservedContainer.volumes``), which may spare an inspect.
        """

    def rename_container(self, container_id: str, name: str) -> None: ...

    def put_archive(self, container_id: str, path: str, data: bytes) -> None:
        """Extract a tar archive into the container at ``path``."""

    def exec_run(
        self, container_id: str, cmd: list[str], options: ExecOptions | None = None
    ) -> tuple[int, bytes]:
        """Run a command in a running container, wait, return (code, output).

        ``options``: user, privileged, working directory and extra variables
        (hooks and sync+exec); None runs it as the container's own user.
        """

    def container_logs(self, container_id: str, tail: int = 50) -> list[str]: ...

    def stream_logs(
        self, container_id: str, tail: int | None = None, follow: bool = True
    ) -> Iterator[str]: ...

    def stream_events(
        self, project: str, since: float | None = None, until: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """The project's container events as they happen (blocks between events);
        with ``since`` (a Unix time) those from then on first, with ``until`` ending then."""
