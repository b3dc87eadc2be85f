"""Answers the planner and apply ask of every service, which must stay exact once
made O(1) per service for 500-service projects: which services a pid/ipc mode
joins, and which services are one-shots."""

from __future__ import annotations

from dataclasses import replace

from envd.core.desired import DesiredDependency, DesiredProject, DesiredService
from envd.core.host_settings import joined_services
from envd.values.types import ContainerCreate, HostSettings


def _svc(name: str, **host: str) -> DesiredService:
    return DesiredService(
        name=name,
        replicas=1,
        depends_on={},
        image_ref="busybox",
        pull="missing",
        build=None,
        template=ContainerCreate(
            name="",
            image="busybox",
            labels={},
            host=HostSettings(**host),  # type: ignore[arg-type]
        ),
        restart="no",
    )


def test_joined_services_names_exactly_the_service_a_mode_points_at() -> None:
    """A mode names the one service whose first container it is, hyphens and all."""
    services = {n: _svc(n) for n in ("a", "a-1", "b", "c")}
    one = _svc("x", pid_mode="container:p-a-1-1", ipc_mode="container:p-a-1")
    assert joined_services("p", one, services) == {"a-1", "a"}
    other = _svc("y", pid_mode="container:q-b-1", ipc_mode="host")
    assert joined_services("p", other, services) == set()
    assert joined_services("p", _svc("z", pid_mode="container:p-gone-1"), services) == set()
    assert joined_services("p", _svc("w"), services) == set()


def test_oneshot_is_a_marked_service_or_a_completed_dependency() -> None:
    """A service is a one-shot when marked, or when another waits for it to complete."""
    services = {
        "migrate": _svc("migrate"),
        "db": _svc("db"),
        "job": replace(_svc("job"), oneshot=True),
        "api": replace(
            _svc("api"),
            depends_on={
                "migrate": DesiredDependency("completed"),
                "db": DesiredDependency("healthy"),
            },
        ),
    }
    project = DesiredProject("p", None, "/x", services, {}, {})
    assert {n for n in services if project.oneshot(n)} == {"migrate", "job"}
    assert not project.oneshot("missing")
    changed = replace(project, services={**services, "api": _svc("api")})
    assert {n for n in services if changed.oneshot(n)} == {"job"}
