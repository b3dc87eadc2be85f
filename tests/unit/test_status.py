"""``envd status`` as a pure function of the desired state, one observation and the plan."""

from __future__ import annotations

from typing import Any

import pytest

from envd.core.desired import DesiredProject, DesiredService
from envd.core.observed import Observed
from envd.core.plan import Action, Plan
from envd.core.status import project_status
from envd.values import labels
from envd.values.types import ContainerCreate, ObservedContainer


def _service(name: str, replicas: int = 1) -> DesiredService:
    return DesiredService(
        name=name,
        replicas=replicas,
        depends_on={},
        image_ref=f"img/{name}:1",
        pull="missing",
        build=None,
        template=ContainerCreate(name="", image=f"img/{name}:1", labels={}),
        restart="no",
    )


def _desired(*services: DesiredService) -> DesiredProject:
    return DesiredProject(
        project="shop",
        environment="dev",
        project_dir="/srv/shop",
        services={s.name: s for s in services},
        networks={},
        volumes={},
    )


def _container(
    service: str,
    replica: int = 1,
    status: str = "running",
    health: str | None = None,
    exit_code: int | None = None,
) -> ObservedContainer:
    return ObservedContainer(
        id=f"{service}{replica}".ljust(64, "0"),
        name=f"shop-{service}-{replica}",
        labels={labels.PROJECT: "shop", labels.SERVICE: service, labels.REPLICA: str(replica)},
        status=status,
        health=health,
        exit_code=exit_code,
    )


def _status(
    containers: list[ObservedContainer], actions: tuple[Action, ...] = (), replicas: int = 1
) -> dict[str, Any]:
    desired = _desired(_service("web", replicas))
    return project_status(desired, Observed(containers=tuple(containers)), Plan("shop", actions))


# (containers of "web", the health status reports)
HEALTH = [
    ([], None),
    ([_container("web")], None),  # no healthcheck
    ([_container("web", health="healthy")], "healthy"),
    ([_container("web", health="starting")], "starting"),
    ([_container("web", 1, health="healthy"), _container("web", 2, health="starting")], "starting"),
    (
        [_container("web", 1, health="starting"), _container("web", 2, health="unhealthy")],
        "unhealthy",
    ),
    # An exited container's last health does not count.
    ([_container("web", status="exited", health="unhealthy", exit_code=1)], None),
]


@pytest.mark.parametrize(("containers", "health"), HEALTH)
def test_health_is_the_worst_of_the_running_replicas(
    containers: list[ObservedContainer], health: str | None
) -> None:
    """unhealthy beats starting beats healthy; no healthcheck (or nothing running) is None."""
    assert _status(containers, replicas=2)["services"][0]["health"] == health


# (containers of "web", the "actual" text, the running count)
ACTUAL = [
    ([], "0 running", 0),
    ([_container("web", 1), _container("web", 2)], "2 running", 2),
    (
        [_container("web", 1), _container("web", 2, status="exited", exit_code=137)],
        "1 running, 1 exited (137)",
        1,
    ),
    (
        [
            _container("web", 1, status="exited", exit_code=0),
            _container("web", 2, status="exited", exit_code=2),
        ],
        "0 running, 2 exited (0,2)",
        0,
    ),
    ([_container("web", 1, status="created")], "0 running", 0),
]


@pytest.mark.parametrize(("containers", "actual", "running"), ACTUAL)
def test_actual_counts_running_and_exited_with_codes(
    containers: list[ObservedContainer], actual: str, running: int
) -> None:
    """The actual column counts running replicas and lists exited ones with their exit codes."""
    web = _status(containers, replicas=2)["services"][0]
    assert (web["actual"], web["running"], web["desired_replicas"]) == (actual, running, 2)


# (the plan's actions, drift lines, in sync)
DRIFT = [
    ((), [], True),
    ((Action("ok", "service web #1", "up to date", service="web"),), [], True),
    (
        (Action("recreate", "service web #1", "env changed", service="web"),),
        ["recreate: env changed"],
        False,
    ),
    (
        (Action("pending", "service web #1", "waiting for db", service="web"),),
        ["pending: waiting for db"],
        False,
    ),
    # Another service's drift is not web's.
    ((Action("create", "service api #1", "missing", service="api"),), [], True),
]


@pytest.mark.parametrize(("actions", "drift", "in_sync"), DRIFT)
def test_drift_lists_the_services_mutating_or_pending_actions(
    actions: tuple[Action, ...], drift: list[str], in_sync: bool
) -> None:
    """A service is in sync when its plan has nothing to change and nothing pending."""
    report = _status([_container("web")], actions)
    web = report["services"][0]
    assert (web["drift"], web["in_sync"], report["in_sync"]) == (drift, in_sync, in_sync)


def test_containers_are_listed_by_replica_with_short_ids() -> None:
    """Each service lists its containers ordered by replica, ids cut to 12 characters."""
    report = _status([_container("web", 2), _container("web", 1)], replicas=2)
    listed = report["services"][0]["containers"]
    assert [c["replica"] for c in listed] == [1, 2]
    assert listed[0] == {
        "id": "web100000000",
        "name": "shop-web-1",
        "status": "running",
        "health": None,
        "exit_code": None,
        "replica": 1,
        "status_text": "",
        "image_id": "",
        "ports": [],
    }


def test_orphans_are_containers_of_services_no_longer_desired() -> None:
    """A container whose service left the spec is an orphan and puts the project out of sync."""
    report = _status([_container("web"), _container("old", status="exited", exit_code=0)])
    assert report["orphans"] == [
        {"id": "old100000000", "name": "shop-old-1", "service": "old", "status": "exited"}
    ]
    assert report["services"][0]["in_sync"] is True
    assert report["in_sync"] is False


def test_report_names_the_project_environment_and_images() -> None:
    """The report carries the project, the environment and each service's image, sorted by name."""
    desired = _desired(_service("web"), _service("api"))
    report = project_status(desired, Observed(), Plan("shop", ()))
    assert (report["project"], report["environment"]) == ("shop", "dev")
    assert [(s["name"], s["image"]) for s in report["services"]] == [
        ("api", "img/api:1"),
        ("web", "img/web:1"),
    ]


def test_a_network_or_volume_the_project_lacks_is_project_drift() -> None:
    """A project-level action (a network or volume to create) is listed as the
    report's own drift and puts the project out of sync, though no service drifts."""
    actions = (
        Action("create-network", "network shop_default", "does not exist", name="shop_default"),
        Action("create-volume", "volume shop_data", "does not exist", name="shop_data"),
    )
    report = _status([_container("web")], actions)
    assert report["drift"] == [
        "create-network network shop_default: does not exist",
        "create-volume volume shop_data: does not exist",
    ]
    assert report["services"][0]["in_sync"] is True
    assert report["in_sync"] is False


def test_the_text_status_prints_the_project_drift() -> None:
    """`envd status` (text) names each project-level drift below the table."""
    from envd.cli._status_text import render

    action = Action("create-network", "network shop_default", "does not exist", name="x")
    lines = render(_status([_container("web")], (action,)))
    assert "project drift: create-network network shop_default: does not exist" in lines
