"""The environment a pass reads the spec with: the one the last `envd up` sent."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import DAEMON_SPEC as SPEC
from tests.helpers import DaemonWorld as World


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# --------------------------------------------------------------------------- the environment of `envd up`

ENV_SPEC = """\
[project]
name = "unitd"

[services.web]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
env = { TAG = "${UNITD_TAG}" }
secrets = ["pw"]

[secrets.pw]
env = "UNITD_PW"
"""


def _web(world: World) -> tuple[str, str, bytes]:
    """(container id, its TAG, the value of its secret file) of unitd-web-1."""
    web = world.containers()["unitd-web-1"]
    spec = world.engine.container_spec(web.id)
    return web.id, dict(spec.env)["TAG"], spec.secrets[0].value


def test_pass_uses_the_environment_sent_with_the_trigger_and_later_passes_keep_it(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`envd up` sends its environment with the reload: that pass reads variables and
    `env` secrets from it, and so do later passes (file change, resync, drift repair)
    until the next `up` sends another; before any, the daemon's own environment."""
    monkeypatch.setenv("ENVD_HASH_KEY", "ab" * 32)
    monkeypatch.setenv("UNITD_TAG", "daemon-own")
    monkeypatch.setenv("UNITD_PW", "daemon-own-pw")
    caplog.set_level(logging.DEBUG, logger="test.daemon")
    world.write(ENV_SPEC)
    r = world.reconciler

    r.trigger("daemon started")
    world.run_next()
    first, tag, pw = _web(world)
    assert (tag, pw) == ("daemon-own", b"daemon-own-pw")

    r.trigger("envd up", wait_timeout=5.0, environ={"UNITD_TAG": "a", "UNITD_PW": "pw-one"})
    world.run_next()
    second, tag, pw = _web(world)
    assert second != first and (tag, pw) == ("a", b"pw-one")
    assert r.state.last_result == "ok"

    # Later passes without an environment keep the one `up` sent, not the daemon's own.
    calls = len(world.engine.mutating_calls())
    world.write(ENV_SPEC + "\n")
    r.trigger("files changed: envd.toml")
    world.run_next()
    _, reasons = world.run_next()
    assert reasons == ["periodic resync"]
    world.engine.remove_container(second)
    r.trigger("container unitd-web-1: destroy")
    world.run_next()
    third, tag, pw = _web(world)
    assert third != second and (tag, pw) == ("a", b"pw-one")
    assert r.state.last_result == "ok"
    after_repair = len(world.engine.mutating_calls())
    assert after_repair > calls

    # The next `up` replaces it: a new value of the variable and a rotated secret.
    r.trigger("envd up", wait_timeout=5.0, environ={"UNITD_TAG": "b", "UNITD_PW": "pw-two"})
    world.run_next()
    fourth, tag, pw = _web(world)
    assert fourth != third and (tag, pw) == ("b", b"pw-two")

    # An `up` whose environment lacks the secret's variable fails the pass like
    # `up --once` would, even though the daemon's own environment has it.
    r.trigger("envd up", wait_timeout=5.0, environ={"UNITD_TAG": "b"})
    world.run_next()
    assert r.state.last_result == "invalid-spec"
    assert "UNITD_PW is not set" in r.state.last_error
    assert _web(world)[0] == fourth

    # The values went nowhere but the containers: not events, status or log.
    published = json.dumps(world.drain()) + json.dumps(r.status())
    for value in ("pw-one", "pw-two", "daemon-own-pw"):
        assert value not in published
        assert value not in caplog.text


def test_a_running_pass_keeps_its_environment_when_a_new_one_arrives(world: World) -> None:
    """An environment sent while a pass runs is for the next pass, which covers that trigger."""
    world.write(SPEC.replace('"{web_color}"', '"${{UNITD_COLOR}}"').format(worker_color="red"))
    r = world.reconciler
    late: list[int] = []

    def up_during_pass(_: Any) -> None:
        if not late:
            late.append(r.trigger("envd up", environ={"UNITD_COLOR": "two"}))

    r.on_desired(up_during_pass)
    r.trigger("envd up", environ={"UNITD_COLOR": "one"})
    world.run_next()
    web = world.containers()["unitd-web-1"]
    assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "one"
    generation, _ = world.run_next()
    assert generation == late[0]
    web = world.containers()["unitd-web-1"]
    assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "two"
