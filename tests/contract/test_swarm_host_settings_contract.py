"""Container-level host settings (issue 12) in a swarm task, on ``FakeSwarm`` and
a real one-node swarm: the service with resources, hosts, DNS, sysctls,
ulimits, a log driver and a tty is accepted and its task runs; on the real
swarm the task's container has them."""

from __future__ import annotations

from dataclasses import replace

from envd.values.types import HostSettings, LogConfig, Ulimit
from tests.contract.conftest import SwarmWorld
from tests.contract.test_swarm_contract import _running

MIB = 1024 * 1024

HOST = HostSettings(
    nano_cpus=500_000_000,
    memory=64 * MIB,
    memory_reservation=32 * MIB,
    pids_limit=100,
    ulimits=(Ulimit("nofile", 1024, 2048),),
    sysctls=(("net.core.somaxconn", "512"),),
    extra_hosts=("example.internal:10.1.2.3",),
    dns=("10.0.0.53",),
    dns_search=("corp.example",),
    dns_options=("ndots:2",),
    log_config=LogConfig("json-file", (("max-size", "1m"),)),
)


def test_a_task_runs_with_the_host_settings(swarm_world: SwarmWorld) -> None:
    """A service whose task has host settings runs; the real task's container shows each one."""
    eng, w = swarm_world.engine, swarm_world
    spec = w.service("limits", replicas=1)
    spec = replace(spec, container=replace(spec.container, host=HOST, tty=True))
    sid = eng.create_service(spec, {})
    (task,) = _running(w, sid, "h1", 1)
    if w.fake is not None:
        return  # the fake keeps no task containers: running is its part of the contract
    from envd.engine.swarm.real import DockerSwarmEngine

    assert isinstance(eng, DockerSwarmEngine)
    seen = eng.container_host(task.container_id)
    # A swarm reservation is for scheduling: the task's container has no soft limit.
    assert (seen.nano_cpus, seen.memory, seen.memory_reservation, seen.pids_limit) == (
        500_000_000,
        64 * MIB,
        0,
        100,
    )
    assert seen.ulimits == HOST.ulimits and seen.sysctls == HOST.sysctls
    assert seen.extra_hosts == ("example.internal:10.1.2.3",)
    assert (seen.dns, seen.dns_search, seen.dns_options) == (
        HOST.dns,
        HOST.dns_search,
        HOST.dns_options,
    )
    assert seen.log_config == HOST.log_config
