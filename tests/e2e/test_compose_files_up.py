"""A Compose project split over files, imported and brought up: the running container is what Compose meant."""

from __future__ import annotations

from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe

pytestmark = pytest.mark.usefixtures("busybox_image")


def test_imported_override_with_bind_modes_and_escapes_runs_as_compose_meant(
    project_dir: Any,
    project_name: str,
    envd_cli: Callable[..., CompletedProcess[str]],
    docker_client: Any,
    engine_is_podman: bool,
) -> None:
    """compose.yaml + override imported, then `up --once`: relabel and propagation binds, the
    interpolated bind source and the `$$` escape reach the container."""
    project_dir.write(
        f"""
services:
  app:
    image: {BUSYBOX}
    command: ["sh", "-c", "echo $${{HOME}}; exec sleep 100000"]
    volumes: ["./data:/data:z,ro"]
    stop_signal: SIGKILL
""",
        "compose.yaml",
    )
    project_dir.write(
        """
services:
  app:
    volumes: ["${LOGS:-./logs}:/logs:private"]
""",
        "compose.override.yml",
    )
    (project_dir / "data").mkdir()
    (project_dir / "logs").mkdir()
    imported = envd_cli("import", "-o", "envd.toml")
    assert imported.returncode == 0, describe(imported)
    up = envd_cli("up", "--once", "--timeout", "60")
    assert up.returncode == 0, describe(up)
    try:
        [summary] = docker_client.api.containers(
            filters={"label": f"dev.envd.project={project_name}"}
        )
        info = docker_client.api.inspect_container(summary["Id"])
        assert info["Config"]["Cmd"] == ["sh", "-c", "echo ${HOME}; exec sleep 100000"]
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        if engine_is_podman:
            # Podman lists every bind under Binds with the options it applied, and drops
            # the relabel where SELinux is off (docs/compatibility.md).
            binds = {b.split(":")[1]: b.split(":") for b in info["HostConfig"]["Binds"]}
            assert binds["/data"][0] == str(project_dir / "data")
            assert "ro" in binds["/data"][2].split(",")
            assert "private" in binds["/logs"][2].split(",")
            assert mounts["/data"]["RW"] is False
            assert mounts["/logs"]["Propagation"] == "private"
        else:
            assert info["HostConfig"]["Binds"] == [f"{project_dir / 'data'}:/data:ro,z"]
            assert (mounts["/data"]["Mode"], mounts["/data"]["RW"]) == ("ro,z", False)
            assert mounts["/logs"]["Propagation"] == "private"
        assert mounts["/logs"]["Source"] == str(project_dir / "logs")
        # Whatever shape the engine reports the binds in, envd sees no drift.
        again = envd_cli("up", "--once", "--timeout", "60")
        assert again.returncode == 0, describe(again)
        assert (summary["Id"],) == tuple(
            c["Id"]
            for c in docker_client.api.containers(
                filters={"label": f"dev.envd.project={project_name}"}
            )
        )
    finally:
        down = envd_cli("down")
        assert down.returncode == 0, describe(down)
