"""What envd learns from the engine's ping is what its ``/version`` answer says."""

from __future__ import annotations

from typing import Any

from envd.engine.docker import versions
from envd.engine.docker.client import DockerEngine
from envd.engine.docker.transport import get_once


def test_the_ping_headers_agree_with_version(docker_client: Any) -> None:
    """On this engine the ping names the same engine, version and API version as /version,
    and DockerEngine.ping learns them without a /version call."""
    eng = DockerEngine()
    status, headers = get_once(eng._endpoint.connect, "/_ping", 10)
    assert status == 200
    from_ping = versions.from_ping(headers, eng.host)
    from_version = versions.negotiate(docker_client.version(), eng.host)
    assert from_ping is not None
    assert (from_ping.kind, from_ping.version, from_ping.api_version, from_ping.api_used) == (
        from_version.kind,
        from_version.version,
        from_version.api_version,
        from_version.api_used,
    )
    eng.ping()
    assert eng._info == from_ping
