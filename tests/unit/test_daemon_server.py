"""The control API over a real unix socket in tmp_path, driving a reconciler on the fake engine."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import structlog

from tests.helpers import DAEMON_SPEC as SPEC
from tests.helpers import DaemonWorld as World


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_reload_over_the_socket_hands_the_environment_to_the_reconciler(
    tmp_path: Path, world: World
) -> None:
    """The client sends its environment with the reload; the daemon acknowledges it, keeps
    it for its plan endpoint too, and refuses an environment that is not strings."""
    from envd.daemon.client import DaemonClient
    from envd.daemon.server import make_server
    from envd.values.errors import EnvdError

    world.write(SPEC.replace('"{web_color}"', '"${{UNITD_COLOR}}"').format(worker_color="red"))
    sock = tmp_path / "d.sock"
    log = structlog.wrap_logger(logging.getLogger("test.daemon"))
    server = make_server(sock, world.reconciler, world.hub, lambda: None, log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = DaemonClient(sock)
        reply = client.reload(wait_timeout=5.0, environ={"UNITD_COLOR": "teal"})
        assert reply.environ_applied and reply.generation == world.reconciler.state.generation
        assert world.reconciler.environ == {"UNITD_COLOR": "teal"}
        assert client.reload().environ_applied  # none sent: the last one stays
        assert world.reconciler.environ == {"UNITD_COLOR": "teal"}
        world.run_next()
        web = world.containers()["unitd-web-1"]
        assert dict(world.engine.container_spec(web.id).env)["COLOR"] == "teal"
        assert client.plan()["changes"] == 0  # the plan endpoint reads with it too
        with pytest.raises(EnvdError, match="environ must be an object of strings"):
            client._request("POST", "/v1/reload", {"environ": {"X": 1}})
        assert world.reconciler.environ == {"UNITD_COLOR": "teal"}
    finally:
        server.shutdown()
        server.server_close()
