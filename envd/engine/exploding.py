"""``ExplodingEngine``: fails every call, to prove a code path is pure.

Validation and plan rendering from a given observation must never touch the
engine; running them against this engine turns any stray call into a test
failure that names the method.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

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

if TYPE_CHECKING:
    from envd.engine.base import ProgressFn


def _explode(method: str) -> NoReturn:
    raise AssertionError(
        f"ExplodingEngine.{method} was called: this code path must not touch the engine"
    )


class ExplodingEngine:
    """An ``Engine`` whose every method raises ``AssertionError``."""

    def ping(self) -> None:
        _explode("ping")

    def describe(self) -> dict[str, str]:
        _explode("describe")

    def ignored_limits(self) -> LimitSupport:
        _explode("ignored_limits")

    def list_containers(self, project: str) -> list[ObservedContainer]:
        _explode("list_containers")

    def list_networks(self, project: str) -> list[ObservedNetwork]:
        _explode("list_networks")

    def list_volumes(self, project: str) -> list[ObservedVolume]:
        _explode("list_volumes")

    def inspect_image(self, ref: str) -> ObservedImage | None:
        _explode("inspect_image")

    def container_state(self, container_id: str) -> ContainerState:
        _explode("container_state")

    def container_mounts(self, container_id: str) -> list[ObservedMount]:
        _explode("container_mounts")

    def container_host(self, container_id: str) -> HostSettings:
        _explode("container_host")

    def pull_image(self, ref: str, progress: ProgressFn | None = None) -> ObservedImage:
        _explode("pull_image")

    def build_image(self, req: BuildRequest, progress: ProgressFn | None = None) -> ObservedImage:
        _explode("build_image")

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
        _explode("create_network")

    def remove_network(self, name: str) -> None:
        _explode("remove_network")

    def network_containers(self, name: str) -> list[str]:
        _explode("network_containers")

    def create_volume(
        self,
        name: str,
        labels: dict[str, str],
        driver: str = "local",
        driver_opts: dict[str, str] | None = None,
    ) -> str:
        _explode("create_volume")

    def remove_volume(self, name: str) -> None:
        _explode("remove_volume")

    def volume_exists(self, name: str) -> bool:
        _explode("volume_exists")

    def network_exists(self, name: str) -> bool:
        _explode("network_exists")

    def container_name_owner(self, name: str) -> str | None:
        _explode("container_name_owner")

    def create_container(self, spec: ContainerCreate) -> str:
        _explode("create_container")

    def start_container(self, container_id: str) -> None:
        _explode("start_container")

    def stop_container(self, container_id: str, timeout: int | None) -> None:
        _explode("stop_container")

    def remove_container(
        self, container_id: str, volumes: bool = False, mounted: tuple[str, ...] | None = None
    ) -> None:
        _explode("remove_container")

    def rename_container(self, container_id: str, name: str) -> None:
        _explode("rename_container")

    def put_archive(self, container_id: str, path: str, data: bytes) -> None:
        _explode("put_archive")

    def exec_run(
        self, container_id: str, cmd: list[str], options: ExecOptions | None = None
    ) -> tuple[int, bytes]:
        _explode("exec_run")

    def container_logs(self, container_id: str, tail: int = 50) -> list[str]:
        _explode("container_logs")

    def stream_logs(
        self, container_id: str, tail: int | None = None, follow: bool = True
    ) -> Iterator[str]:
        _explode("stream_logs")

    def stream_events(
        self, project: str, since: float | None = None, until: float | None = None
    ) -> Iterator[dict[str, Any]]:
        _explode("stream_events")
