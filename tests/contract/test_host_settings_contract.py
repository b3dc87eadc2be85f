"""Container-level host settings (issue 12) on the fake and the real engine:
after a create the engine reports the limits, sysctls, host entries, ulimits,
DNS, devices, log driver and device requests it was asked for (with its own
defaults filled in the same way), and on the real engine the running
container sees them."""

from __future__ import annotations

from envd.engine.host_defaults import ENGINE_SHM_SIZE, engine_filled
from envd.values.types import (
    DeviceMapping,
    DeviceRequest,
    HostSettings,
    LogConfig,
    Ulimit,
)
from tests.contract.conftest import World
from tests.helpers import wait_for

MIB = 1024 * 1024

# Values an unprivileged container on this engine accepts: a namespaced
# sysctl in the container's own network namespace, a harmless device.
ASKED = HostSettings(
    nano_cpus=500_000_000,
    memory=64 * MIB,
    memory_reservation=32 * MIB,
    memory_swap=128 * MIB,
    pids_limit=100,
    shm_size=32 * MIB,
    ulimits=(Ulimit("nofile", 1024, 2048),),
    sysctls=(("net.core.somaxconn", "512"),),
    extra_hosts=("example.internal:10.1.2.3",),
    dns=("10.0.0.53",),
    dns_search=("corp.example",),
    dns_options=("ndots:2",),
    devices=(DeviceMapping("/dev/null", "/dev/xnull", "rwm"),),
    domainname="example.test",
    runtime="runc",
    security_opt=("no-new-privileges",),
    ipc_mode="shareable",
    log_config=LogConfig("json-file", (("max-file", "2"), ("max-size", "1m"))),
)


def test_host_settings_are_what_the_engine_reports(world: World) -> None:
    """A container created with every host setting reports each of them back, runs, and (real
    engine) sees the sysctl, the nofile ulimit, the /etc/hosts line, the DNS and the device."""
    eng = world.engine
    cid = eng.create_container(world.spec("limits", host=ASKED))
    assert eng.container_host(cid) == ASKED
    eng.start_container(cid)
    assert wait_for(lambda: eng.container_state(cid).status == "running", timeout=30)
    if world.kind != "real":
        return  # the fake runs no processes: what it reports above is its contract
    script = (
        "cat /proc/sys/net/core/somaxconn; ulimit -n; ulimit -Hn;"
        " grep example.internal /etc/hosts; grep nameserver /etc/resolv.conf;"
        " grep search /etc/resolv.conf; test -c /dev/xnull && echo device"
    )
    code, out = eng.exec_run(cid, ["sh", "-c", script])
    assert code == 0, out
    words = out.decode().split()
    assert words[:3] == ["512", "1024", "2048"]
    assert {"10.1.2.3", "example.internal", "10.0.0.53", "corp.example", "device"} <= set(words)


def test_unset_host_settings_read_back_as_the_engines_defaults(world: World) -> None:
    """Without host settings the engine fills in its own (64m shm, runc, private ipc, json-file)."""
    eng = world.engine
    cid = eng.create_container(world.spec("defaults"))
    seen = eng.container_host(cid)
    assert seen == engine_filled(HostSettings())
    assert seen.shm_size == ENGINE_SHM_SIZE and seen.runtime == "runc"
    # A memory limit alone: the engine allows as much swap again.
    only_memory = HostSettings(memory=64 * MIB, pids_limit=-1)
    cid2 = eng.create_container(world.spec("memory-only", host=only_memory))
    seen2 = eng.container_host(cid2)
    assert seen2.memory_swap == 128 * MIB and seen2.pids_limit == 0


def test_device_requests_are_passed_through(world: World) -> None:
    """GPU device requests reach the engine as DeviceRequests (created, not started: no GPU here)."""
    eng = world.engine
    asked = HostSettings(
        device_requests=(
            DeviceRequest(count=-1, capabilities=(("gpu",),)),
            DeviceRequest(
                driver="nvidia", device_ids=("0", "1"), capabilities=(("gpu", "utility"),)
            ),
        )
    )
    cid = eng.create_container(world.spec("gpus", host=asked))
    assert eng.container_host(cid).device_requests == asked.device_requests


def test_platform_is_a_create_parameter(world: World) -> None:
    """A platform the local image matches is accepted at create; an inspect does not report it."""
    eng = world.engine
    cid = eng.create_container(world.spec("platform", host=HostSettings(platform="linux")))
    assert eng.container_host(cid).platform == ""
    eng.start_container(cid)
    assert wait_for(lambda: eng.container_state(cid).status == "running", timeout=30)
