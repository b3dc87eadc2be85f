"""The test plumbing against the real engine: it answers, the local images
exist and run, and project clean-up removes what a test leaves behind."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import (
    BUSYBOX,
    DEBIAN,
    PROJECT_LABEL,
    project_cleanup,
    remaining_project_objects,
    run_to_end,
    wait_for,
)


def test_engine_answers(docker_client: Any, request: pytest.FixtureRequest) -> None:
    """A Docker engine answers, and tests here carry the docker marker automatically."""
    assert docker_client.ping() is True
    assert docker_client.version()["ApiVersion"]
    assert request.node.get_closest_marker("docker") is not None


@pytest.mark.parametrize("image", [BUSYBOX, DEBIAN])
def test_local_test_image_exists(docker_client: Any, image: str) -> None:
    """scripts/build-test-images.sh has built the image envd's tests run."""
    assert docker_client.images.get(image).id.startswith("sha256:")


def test_busybox_image_runs_the_applets_tests_use(busybox_image: str, docker_client: Any) -> None:
    """The busybox image starts in a second and has sh, httpd, nc, wget and sleep."""
    applets = ("sh", "httpd", "nc", "wget", "sleep")
    out = run_to_end(
        docker_client,
        busybox_image,
        ["sh", "-c", f"for a in {' '.join(applets)}; do [ -x /bin/$a ] && echo $a; done"],
    )
    assert tuple(out.decode().split()) == applets


def _make_project_objects(client: Any, project: str, image: str) -> None:
    """A running container on a network with a volume, all labelled with ``project``."""
    labels = {PROJECT_LABEL: project}
    client.networks.create(f"{project}-net", labels=labels)
    client.volumes.create(f"{project}-data", labels=labels)
    container = client.containers.run(
        image,
        ["sleep", "3600"],
        name=f"{project}-sleeper-1",
        labels=labels,
        network=f"{project}-net",
        volumes={f"{project}-data": {"bind": "/data", "mode": "rw"}},
        detach=True,
    )
    wait_for(lambda: container.reload() or container.status == "running", timeout=30)


def test_cleanup_removes_project_objects_even_when_the_test_fails(
    docker_client: Any, busybox_image: str, project_name: str
) -> None:
    """What the project fixture runs at teardown removes a labelled running container,
    its network and volume, even when the body raised."""
    project = f"{project_name}-inner"
    with (
        pytest.raises(RuntimeError, match="the test failed"),
        project_cleanup(project, lambda: docker_client),
    ):
        _make_project_objects(docker_client, project, busybox_image)
        assert len(remaining_project_objects(docker_client, project)) == 3
        raise RuntimeError("the test failed")
    assert remaining_project_objects(docker_client, project) == []


def test_cleanup_removes_project_objects_a_passing_test_left(
    docker_client: Any, busybox_image: str, project_name: str
) -> None:
    """What the project fixture runs at teardown removes the labelled container, network
    and volume a test that passed left behind (each test makes its own objects)."""
    project = f"{project_name}-left"
    with project_cleanup(project, lambda: docker_client):
        _make_project_objects(docker_client, project, busybox_image)
        assert len(remaining_project_objects(docker_client, project)) == 3
    assert remaining_project_objects(docker_client, project) == []
