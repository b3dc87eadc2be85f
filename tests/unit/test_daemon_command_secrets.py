"""The daemon runs no host command: command secret values come from `envd up`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envd.inputs.secrets import CommandValue
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


COMMAND = ("sh", "-c", "echo x >> count; printf token-; wc -l < count | tr -d ' '")


def _held(world: World) -> list[str]:
    return [str(e["message"]) for e in world.hub.subscribe(0).queue if e.get("kind") == "held"]


def test_the_daemon_uses_the_values_up_sent_and_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passes take the value the last `envd up` sent (no recreate loop, no command run by
    the daemon, which ran it on every reload before); a new `up` value recreates; a spec
    change that keeps the command reuses the value."""
    monkeypatch.setenv("ENVD_HASH_KEY", "ab" * 32)
    monkeypatch.setenv("ENVD_ALLOW", "1")
    world = World(tmp_path, SPEC)
    r = world.reconciler

    r.trigger("envd up", environ=dict(os.environ), commands={"token": CommandValue(COMMAND, b"v1")})
    world.run_next()
    first, value = _web(world)
    assert value == b"v1"

    for why in ("periodic resync", "container unitd-web-1: die"):
        r.trigger(why)
        world.run_next()
        assert _web(world) == (first, b"v1"), f"recreated on a pass ({why})"

    r.trigger("envd up", environ=dict(os.environ), commands={"token": CommandValue(COMMAND, b"v2")})
    world.run_next()
    second, value = _web(world)
    assert value == b"v2" and second != first

    world.write(SPEC.replace('command = ["sleep", "3600"]', 'command = ["sleep", "3601"]'))
    r.trigger("files changed: envd.toml")
    world.run_next()
    third, value = _web(world)
    assert value == b"v2" and third != second
    assert not (tmp_path / "count").exists(), "the daemon ran the secret's command"


def test_without_a_value_from_up_the_consumer_is_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command secret `envd up` sent no value for (none yet, or its command was edited
    since) is never run by the daemon: its consumer is neither created nor recreated with
    an empty secret, and an event says to run `envd up`."""
    monkeypatch.setenv("ENVD_HASH_KEY", "ab" * 32)
    monkeypatch.setenv("ENVD_ALLOW", "1")
    world = World(tmp_path, SPEC)
    r = world.reconciler

    r.trigger("daemon started", environ=dict(os.environ))
    world.run_next()
    assert "unitd-web-1" not in world.containers()
    assert any("only `envd up` runs" in m for m in _held(world))

    r.trigger("envd up", commands={"token": CommandValue(COMMAND, b"v1")})
    world.run_next()
    first, value = _web(world)
    assert value == b"v1"

    world.write(SPEC.replace("printf token-", "printf other-"))
    r.trigger("files changed: envd.toml")
    world.run_next()
    assert _web(world) == (first, b"v1"), "a consumer of an edited command was recreated"
    assert r.state.last_result == "ok"
    assert not (tmp_path / "count").exists(), "the daemon ran the secret's command"
