"""Configs (Compose's ``configs``) on the fake and the real engine: files with their content, owner and mode."""

from __future__ import annotations

import pytest

from envd.values.errors import EngineError
from envd.values.types import ConfigFile, Mount, SecretFile

from .conftest import World


def test_configs_are_files_with_content_owner_and_mode(world: World) -> None:
    """A config arrives before start at its target (a new directory included) with its uid, gid and mode."""
    eng = world.engine
    configs = (
        ConfigFile("/app.ini", value=b"[server]\nworkers = 4\n"),
        ConfigFile("/etc/app/log.conf", uid=1000, gid=1001, mode=0o440, value=b"fmt=%(m)s"),
    )
    secrets = (SecretFile("/run/secrets/pw", value=b"pw"),)
    cid = eng.create_container(world.spec("cfg", configs=configs, secrets=secrets))
    eng.start_container(cid)
    code, out = eng.exec_run(cid, ["stat", "-c", "%a %u %g", "/app.ini", "/etc/app/log.conf"])
    assert (code, out.decode().split("\n")[:2]) == (0, ["444 0 0", "440 1000 1001"])
    assert eng.exec_run(cid, ["cat", "/app.ini"]) == (0, b"[server]\nworkers = 4\n")
    assert eng.exec_run(cid, ["cat", "/etc/app/log.conf"]) == (0, b"fmt=%(m)s")
    assert eng.exec_run(cid, ["cat", "/run/secrets/pw"]) == (0, b"pw")


def test_configs_refused_on_a_read_only_root_filesystem(world: World) -> None:
    """envd refuses a config on a read-only rootfs before creating anything, in one sentence
    naming the container and the file (Docker would refuse the write, Podman would perform it)."""
    eng = world.engine
    spec = world.spec("ro", read_only=True, configs=(ConfigFile("/x.conf", value=b"x"),))
    with pytest.raises(EngineError) as info:
        eng.create_container(spec)
    assert str(info.value) == (
        f"container {spec.name}: configs (/x.conf) cannot be written into a read-only root"
        " filesystem (read_only = true)"
    )
    assert eng.list_containers(world.project) == []


def test_configs_refused_in_a_read_only_mount(world: World) -> None:
    """A config whose target lies in a read-only mount is refused before anything is created
    (Podman would write it into the volume behind the mount)."""
    eng = world.engine
    vol = world.name("ro")
    eng.create_volume(vol, world.labels())
    spec = world.spec(
        "in-mount",
        mounts=(Mount("volume", "/etc/app", vol, read_only=True),),
        configs=(ConfigFile("/etc/app/site.conf", value=b"x"),),
    )
    with pytest.raises(EngineError) as info:
        eng.create_container(spec)
    assert str(info.value) == (
        f"container {spec.name}: config /etc/app/site.conf cannot be written into read-only"
        " mount /etc/app"
    )
    assert eng.list_containers(world.project) == []
