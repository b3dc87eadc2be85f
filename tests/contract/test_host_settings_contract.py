"""Container-level host settings (issue 12) on the fake and the real engine:
after a create the engine reports the limits, sysctls, host entries, ulimits,
DNS, devices, log driver and device requests it was asked for (with its own
defaults filled in the same way), and on the real engine the running
container sees them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from envd.engine.host_defaults import ENGINE_SHM_SIZE, engine_filled
from envd.values.errors import EngineError
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
# sysctl in the container's own network namespace, a harmless device. nproc is
# given with nofile: rootful Podman raises a limit left out to 1048576, which
# a start without CAP_SYS_RESOURCE cannot set (docs/compatibility.md, Podman).
ASKED = HostSettings(
    nano_cpus=500_000_000,
    memory=64 * MIB,
    memory_reservation=32 * MIB,
    memory_swap=128 * MIB,
    pids_limit=100,
    shm_size=32 * MIB,
    ulimits=(Ulimit("nofile", 1024, 2048), Ulimit("nproc", 16384, 32768)),
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

# What Podman 4.3's Docker API reports where Docker's differs (docs/compatibility.md,
# Podman): its own defaults for a pids limit and /dev/shm, and for the pid and ipc modes.
PODMAN_PIDS_LIMIT = 2048
PODMAN_SHM_SIZE = 65_536_000
PODMAN_DEFAULT_ULIMITS = {"RLIMIT_NOFILE", "RLIMIT_NPROC"}  # from the service's containers.conf


def podman_reported(h: HostSettings, default_ulimits: tuple[Ulimit, ...]) -> HostSettings:
    """``h`` as Podman's inspect reports it back after a create: ulimits named as the
    kernel does, runtime "oci", and no sysctls, domain name, device permissions or log
    options (those it applies are read inside the container or from Podman's own inspect)."""
    return replace(
        engine_filled(h),
        pids_limit=h.pids_limit or PODMAN_PIDS_LIMIT,  # -1 (unlimited) reads back as -1
        shm_size=h.shm_size or PODMAN_SHM_SIZE,
        ulimits=tuple(Ulimit(f"RLIMIT_{u.name.upper()}", u.soft, u.hard) for u in h.ulimits)
        or default_ulimits,
        sysctls=(),
        devices=tuple(replace(d, permissions="") for d in h.devices),
        domainname="",
        runtime="oci",
        pid_mode=h.pid_mode or "private",
        ipc_mode=h.ipc_mode or "shareable",
        log_config=LogConfig(h.log_config.driver if h.log_config else "json-file"),
    )


def reported(world: World, h: HostSettings, seen: HostSettings) -> HostSettings:
    """What this engine's inspect reports after a create asking for ``h`` (``seen``: what it
    did report, for Podman's default ulimits, which come from the service's own config)."""
    if not world.podman:
        return engine_filled(h)
    if not h.ulimits:
        assert {u.name for u in seen.ulimits} == PODMAN_DEFAULT_ULIMITS
    return podman_reported(h, seen.ulimits)


def libpod_host(world: World, cid: str) -> dict[str, object]:
    """The container's HostConfig from Podman's own inspect, which shows some settings its
    Docker API leaves out (log options)."""
    from envd.engine.docker.client import DockerEngine

    assert isinstance(world.engine, DockerEngine)
    resp = world.engine._call("GET", f"/v4.0.0/libpod/containers/{cid}/json", versioned=False)
    host: dict[str, object] = resp.json()["HostConfig"]
    return host


def test_host_settings_are_what_the_engine_reports(world: World) -> None:
    """A container created with every host setting reports each of them back (Podman: each its
    inspect shows), runs, and (real engine) sees the sysctl, the ulimits, the /etc/hosts line,
    the DNS, the device, /dev/shm's size and the domain name (which Podman 4.3 ignores)."""
    eng = world.engine
    cid = eng.create_container(world.spec("limits", host=ASKED))
    seen = eng.container_host(cid)
    assert seen == reported(world, ASKED, seen)
    if world.podman:
        # Of the log options Podman keeps max-size only (its json-file has no rotation count).
        log = libpod_host(world, cid)["LogConfig"]
        assert isinstance(log, dict) and (log["Type"], log["Size"]) == ("json-file", "1MB")
    eng.start_container(cid)
    assert wait_for(lambda: eng.container_state(cid).status == "running", timeout=30)
    if world.kind != "real":
        return  # the fake runs no processes: what it reports above is its contract
    # The limits of the container's own process: Podman's exec sessions run with
    # the soft nofile raised to the hard one.
    script = (
        "cat /proc/sys/net/core/somaxconn;"
        " awk '/Max open files|Max processes/ {print $(NF-2), $(NF-1)}' /proc/1/limits;"
        " df -k /dev/shm | awk 'NR == 2 {print $2}'; cat /proc/sys/kernel/domainname;"
        " grep example.internal /etc/hosts; grep nameserver /etc/resolv.conf;"
        " grep search /etc/resolv.conf; test -c /dev/xnull && echo device"
    )
    code, out = eng.exec_run(cid, ["sh", "-c", script])
    assert code == 0, out
    words = out.decode().split()
    domain = "(none)" if world.podman else "example.test"
    assert words[:8] == ["512", "16384", "32768", "1024", "2048", "32768", domain, "10.1.2.3"]
    assert {"example.internal", "10.0.0.53", "corp.example", "device"} <= set(words)


def test_unset_host_settings_read_back_as_the_engines_defaults(world: World) -> None:
    """Without host settings the engine fills in its own (Docker: 64m shm, runc, private ipc,
    json-file; Podman: its own, listed in docs/compatibility.md)."""
    eng = world.engine
    cid = eng.create_container(world.spec("defaults"))
    seen = eng.container_host(cid)
    assert seen == reported(world, HostSettings(), seen)
    if not world.podman:
        assert seen.shm_size == ENGINE_SHM_SIZE and seen.runtime == "runc"
    # A memory limit alone: the engine allows as much swap again.
    only_memory = HostSettings(memory=64 * MIB, pids_limit=-1)
    cid2 = eng.create_container(world.spec("memory-only", host=only_memory))
    seen2 = eng.container_host(cid2)
    assert seen2 == reported(world, only_memory, seen2)
    assert seen2.memory_swap == 128 * MIB


GPUS = HostSettings(
    device_requests=(
        DeviceRequest(count=-1, capabilities=(("gpu",),)),
        DeviceRequest(driver="nvidia", device_ids=("0", "1"), capabilities=(("gpu", "utility"),)),
    )
)


def test_device_requests_are_passed_through(world: World) -> None:
    """GPU device requests reach the engine as DeviceRequests (created, not started: no GPU
    here); Podman's Docker API would drop them, so envd refuses them there in one sentence."""
    eng = world.engine
    spec = world.spec("gpus", host=GPUS)
    if world.podman:
        with pytest.raises(EngineError) as info:
            eng.create_container(spec)
        assert str(info.value) == (
            f"container {spec.name}: Podman's Docker API ignores GPU device requests (gpus),"
            " so the container would start without its GPUs"
        )
        assert eng.list_containers(world.project) == []
        return
    cid = eng.create_container(spec)
    assert eng.container_host(cid).device_requests == GPUS.device_requests


def test_platform_is_a_create_parameter(world: World) -> None:
    """A platform the local image matches is accepted at create; an inspect does not report it."""
    eng = world.engine
    cid = eng.create_container(world.spec("platform", host=HostSettings(platform="linux")))
    assert eng.container_host(cid).platform == ""
    eng.start_container(cid)
    assert wait_for(lambda: eng.container_state(cid).status == "running", timeout=30)


def test_the_engine_says_truly_whether_it_drops_limits(world: World) -> None:
    """``ignored_limits`` names the engine exactly when a created container's memory limit
    and ulimits do not read back (rootless Podman on cgroups v1), and is "" where they do."""
    eng = world.engine
    asked = HostSettings(memory=64 * MIB, ulimits=(Ulimit("nofile", 1024, 2048),))
    cid = eng.create_container(world.spec("dropped", host=asked))
    seen = eng.container_host(cid)
    kept = seen.memory == 64 * MIB and any(u.soft == 1024 for u in seen.ulimits)
    dropped = seen.memory == 0 and not any(u.soft == 1024 for u in seen.ulimits)
    assert kept != dropped, seen
    support = eng.ignored_limits()
    assert support.engine == ("" if kept else "rootless Podman on cgroups v1")
    assert {"mem_limit", "ulimits"} <= support.drops if dropped else not support.drops
