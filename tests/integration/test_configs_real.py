"""Configs on the real engine: directories around a config's target keep what the image made of them."""

from __future__ import annotations

import secrets

import pytest

from envd.engine.docker.client import DockerEngine
from envd.values import labels
from envd.values.types import ConfigFile, ContainerCreate
from tests.helpers import BUSYBOX

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("busybox_image")]


def test_a_config_leaves_existing_directories_as_they_are() -> None:
    """A config in /tmp keeps /tmp at 1777 (the image's), and missing parents are created 0755 for root."""
    engine = DockerEngine()
    project = f"t-{secrets.token_hex(4)}"
    spec = ContainerCreate(
        name=f"{project}-web-1",
        image=BUSYBOX,
        labels={labels.PROJECT: project},
        command=("sleep", "3600"),
        stop_timeout=1,
        configs=(
            ConfigFile("/tmp/app.conf", value=b"a"),
            ConfigFile("/opt/app/conf.d/b.conf", uid=1000, value=b"b"),
        ),
    )
    cid = engine.create_container(spec)
    try:
        engine.start_container(cid)
        code, out = engine.exec_run(
            cid, ["stat", "-c", "%a %u %n", "/tmp", "/opt/app", "/opt/app/conf.d/b.conf"]
        )
        assert (code, out.decode().splitlines()) == (
            0,
            ["1777 0 /tmp", "755 0 /opt/app", "444 1000 /opt/app/conf.d/b.conf"],
        )
    finally:
        engine.remove_container(cid)
