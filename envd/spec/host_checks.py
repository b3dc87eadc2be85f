"""Checks of the container-level host settings (issue 12) that one service
cannot make alone, and the warnings they give: a ``service:NAME`` namespace
names a service of the spec, and a healthcheck ``start_interval`` needs an
engine newer than many in use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from envd.spec.hints import did_you_mean

if TYPE_CHECKING:
    from envd.spec.models import Service

Problem = tuple[str, tuple[str | int, ...]]

START_INTERVAL_WARNING = (
    "healthcheck.start_interval needs Docker API 1.44 (Engine 25) or newer; envd sends it"
    " only to such an engine, and an older one probes at 'interval' from the start"
)


def host_problems(name: str, svc: Service, services: Mapping[str, Service]) -> Iterator[Problem]:
    """Problems of one service's host settings, each with its field path."""
    for field in ("pid", "ipc"):
        mode: str = getattr(svc, field)
        kind, _, target = mode.partition(":")
        if kind != "service":
            continue
        path: tuple[str | int, ...] = ("services", name, field)
        if target == name:
            yield f"service {name!r}: {field} = {mode!r} names the service itself", path
        elif target not in services:
            yield (
                f"service {name!r}: {field} = {mode!r} names an unknown service"
                f"{did_you_mean(target, services)}",
                path,
            )
        elif field == "ipc" and services[target].ipc not in ("shareable", "host"):
            yield (
                f"service {name!r}: ipc = {mode!r} needs ipc = 'shareable' on service"
                f" {target!r} (the engine shares only such a namespace)",
                path,
            )


def start_interval_paths(data: Any) -> list[tuple[str | int, ...]]:
    """Where a raw spec (overlay merged) sets ``healthcheck.start_interval``."""
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        return []
    found: list[tuple[str | int, ...]] = []
    for name, body in services.items():
        hc = body.get("healthcheck") if isinstance(body, dict) else None
        if isinstance(hc, dict) and hc.get("start_interval") not in (None, 0, "0", "0s", ""):
            found.append(("services", str(name), "healthcheck", "start_interval"))
    return found
