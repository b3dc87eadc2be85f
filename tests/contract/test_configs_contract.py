"""Configs (Compose's ``configs``) on the fake and the real engine: files with their content, owner and mode."""

from __future__ import annotations

import pytest

from envd.values.errors import EngineError
from envd.values.types import ConfigFile, SecretFile

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
    """The engine cannot write a config into a read-only rootfs: the create fails and leaves no container."""
    eng = world.engine
    spec = world.spec("ro", read_only=True, configs=(ConfigFile("/x.conf", value=b"x"),))
    with pytest.raises(EngineError):
        eng.create_container(spec)
    assert not [c for c in eng.list_containers(world.project) if c.name == spec.name]
