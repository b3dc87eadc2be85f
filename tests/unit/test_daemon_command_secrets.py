"""Command secret values are read once per reload, not on every daemon pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import DaemonWorld as World

SPEC = """\
[project]
name = "unitd"

[services.web]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
secrets = ["token"]

[secrets.token]
command = ["sh", "-c", "echo x >> count; printf token-; wc -l < count | tr -d ' '"]
"""


def _web(world: World) -> tuple[str, bytes]:
    web = world.containers()["unitd-web-1"]
    return web.id, world.engine.container_spec(web.id).secrets[0].value


def test_a_new_value_each_run_recreates_only_at_a_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passes without a reload reuse the value read at the last one (no recreate loop);
    an `envd up` or a spec change reads it again."""
    monkeypatch.setenv("ENVD_HASH_KEY", "ab" * 32)
    monkeypatch.setenv("ENVD_ALLOW", "1")
    world = World(tmp_path, SPEC)
    r = world.reconciler

    r.trigger("envd up", environ=dict(os.environ))
    world.run_next()
    first, value = _web(world)
    assert value == b"token-1"

    for why in ("periodic resync", "container unitd-web-1: die"):
        r.trigger(why)
        world.run_next()
        assert _web(world) == (first, b"token-1"), f"recreated on a pass ({why})"
    assert (tmp_path / "count").read_text() == "x\n", "the command ran again on a pass"

    r.trigger("envd up", environ=dict(os.environ))
    world.run_next()
    second, value = _web(world)
    assert value == b"token-2" and second != first

    world.write(SPEC.replace('command = ["sleep", "3600"]', 'command = ["sleep", "3601"]'))
    r.trigger("files changed: envd.toml")
    world.run_next()
    third, value = _web(world)
    assert value == b"token-3" and third != second
