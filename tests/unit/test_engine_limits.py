"""Resource limits an engine would silently drop (rootless Podman on cgroups v1) are refused
before anything is created; the engine is asked about it once, and only when a spec sets one."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from envd.cli import project
from envd.core.desired import DesiredProject, desire
from envd.daemon import process
from envd.engine.fake import FakeEngine
from envd.run.converge import converge
from envd.run.oneoff import run_one_off
from envd.spec.load import load
from envd.values.errors import UsageError
from envd.values.keys import Keys
from envd.values.limit_support import ALL_LIMITS, APPLIES_ALL, CGROUP_LIMITS, LimitSupport
from tests.engine_replay import ReplayEngine
from tests.helpers import DAEMON_SPEC, DaemonWorld, cli_in_process

KEYS = Keys(b"unit-test-hash-key")
ROOTLESS_V1 = LimitSupport(
    drops=frozenset(ALL_LIMITS),
    engine="rootless Podman on cgroups v1",
    remedy="use rootful Podman or a host with cgroups v2",
)
IMAGE = "envd-local/busybox:latest"

LIMITED = f"""
[project]
name = "limits"

[services.web]
image = "{IMAGE}"
cpus = 0.5
mem_limit = "64m"

[services.db]
image = "{IMAGE}"
pids_limit = 100

[services.cache]
image = "{IMAGE}"
"""

# -1 asks for no limit (unlimited pids, unlimited swap); shm_size is a tmpfs size.
UNLIMITED = f"""
[project]
name = "limits"

[services.web]
image = "{IMAGE}"
pids_limit = -1
memswap_limit = -1
shm_size = "64m"
"""

REFUSAL = (
    "service 'db' sets pids_limit (so does service 'web'), which rootless Podman on cgroups v1"
    " silently ignores: the containers would run without those limits; use rootful Podman"
    " or a host with cgroups v2, or remove the limits from the spec"
)


def _desired(tmp_path: Path, text: str) -> DesiredProject:
    (tmp_path / "envd.toml").write_text(textwrap.dedent(text))
    return desire(load(tmp_path, environ={}), {}, keys=KEYS)


def _fake(support: LimitSupport = APPLIES_ALL) -> FakeEngine:
    eng = FakeEngine()
    eng.add_image(IMAGE)
    eng.limit_support = support
    return eng


def test_converge_refuses_limits_the_engine_drops_before_creating_anything(
    tmp_path: Path,
) -> None:
    """On rootless cgroups-v1 Podman a service with a cpu/memory/pids limit is refused in one
    sentence naming the service and field, exit 2, with no engine object made."""
    eng = _fake(ROOTLESS_V1)
    with pytest.raises(UsageError) as info:
        converge(eng, _desired(tmp_path, LIMITED), wait_ready=False)
    assert str(info.value) == REFUSAL
    assert info.value.exit_code == 2
    assert eng.calls == []
    assert eng.list_containers("limits") == [] and eng.list_networks("limits") == []


def test_every_limit_field_is_named(tmp_path: Path) -> None:
    """cpus, mem_limit, mem_reservation, memswap_limit and ulimits are each named when set."""
    text = f"""
    [services.web]
    image = "{IMAGE}"
    cpus = 1
    mem_limit = "64m"
    mem_reservation = "32m"
    memswap_limit = "128m"
    ulimits = {{ nofile = 1024 }}
    """
    with pytest.raises(UsageError) as info:
        converge(_fake(ROOTLESS_V1), _desired(tmp_path, text), wait_ready=False)
    assert str(info.value).startswith(
        "service 'web' sets cpus, mem_limit, mem_reservation, memswap_limit and ulimits, which"
        " rootless Podman on cgroups v1 silently ignores"
    )


def test_limits_converge_where_the_engine_applies_them(tmp_path: Path) -> None:
    """Docker, rootful Podman and cgroups-v2 Podman (no reason given) take the limits, and
    the engine is asked once for the whole pass."""
    eng = _fake()
    desired = _desired(tmp_path, LIMITED)
    converge(eng, desired, wait_ready=False)
    assert eng.limit_queries == 1
    [web] = [c for c in eng.list_containers("limits") if c.name == "limits-web-1"]
    assert eng.container_host(web.id).memory == 64 * 1024**2


def test_the_engine_is_not_asked_when_no_limit_is_set(tmp_path: Path) -> None:
    """A spec without resource limits (-1, shm_size) converges on rootless cgroups-v1
    Podman without asking the engine about limits at all."""
    eng = _fake(ROOTLESS_V1)
    converge(eng, _desired(tmp_path, UNLIMITED), wait_ready=False)
    assert eng.limit_queries == 0
    assert [c.name for c in eng.list_containers("limits")] == ["limits-web-1"]


def test_a_one_off_is_refused_too(tmp_path: Path) -> None:
    """`envd run` of a limited service on rootless cgroups-v1 Podman creates nothing."""
    eng = _fake(ROOTLESS_V1)
    with pytest.raises(UsageError):
        run_one_off(eng, _desired(tmp_path, LIMITED), "db", None, rm=True)
    assert eng.calls == []


@pytest.mark.usefixtures("private_state")
@pytest.mark.parametrize("once", [True, False])
def test_up_exits_2_with_one_sentence_and_starts_no_daemon(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    once: bool,
) -> None:
    """`envd up` (with and without --once) prints the refusal, exits 2, creates nothing and
    starts no daemon."""
    eng = _fake(ROOTLESS_V1)
    monkeypatch.setattr(project, "engine", lambda: eng)
    (tmp_path / "envd.toml").write_text(textwrap.dedent(LIMITED))
    code, _, err = cli_in_process(capsys, "up", *(["--once"] if once else []), "-C", tmp_path)
    assert (code, err.strip()) == (2, f"envd: {REFUSAL}")
    assert eng.calls == []
    assert process.running(tmp_path, None) is None


# --------------------------------------------------------------------------- the real adapter

PODMAN_VERSION = {
    "Version": "4.3.1",
    "ApiVersion": "1.41",
    "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}],
}
DOCKER_VERSION = {"Version": "20.10.24", "ApiVersion": "1.41", "Components": []}


def _exchange(path: str, answer: dict[str, Any]) -> dict[str, Any]:
    return {"method": "GET", "path": path, "status": 200, "answer": answer}


@pytest.mark.parametrize(
    ("info", "support"),
    [
        ({"Rootless": True, "CgroupVersion": "1"}, ROOTLESS_V1),
        ({"Rootless": False, "CgroupVersion": "1", "SwapLimit": False}, APPLIES_ALL),
        ({"Rootless": True, "CgroupVersion": "2"}, APPLIES_ALL),
    ],
)
def test_podman_is_asked_its_info_once(info: dict[str, Any], support: LimitSupport) -> None:
    """The adapter reads Podman's /info (Rootless, CgroupVersion) once, however often asked:
    only rootless on cgroups v1 drops limits."""
    eng = ReplayEngine([_exchange("/version", PODMAN_VERSION), _exchange("/info", info)])
    assert (eng.ignored_limits(), eng.ignored_limits()) == (support, support)
    assert eng.script == []


# Docker 20.10's /info on this machine (rootful, cgroups v1, every controller there).
DOCKER_INFO = {
    "CgroupDriver": "cgroupfs",
    "CgroupVersion": "1",
    "MemoryLimit": True,
    "SwapLimit": True,
    "CpuCfsPeriod": True,
    "CpuCfsQuota": True,
    "PidsLimit": True,
    "SecurityOptions": ["name=seccomp,profile=default"],
}


@pytest.mark.parametrize(
    ("changes", "drops"),
    [
        ({}, frozenset()),
        # Rootless Docker without a cgroup manager: every cgroup limit, not ulimits.
        (
            {"CgroupDriver": "none", "SecurityOptions": ["name=rootless"]},
            frozenset(CGROUP_LIMITS),
        ),
        # A kernel without swap accounting (Docker warns "No swap limit support").
        ({"SwapLimit": False}, frozenset({"memswap_limit"})),
        ({"MemoryLimit": False}, frozenset({"mem_limit", "mem_reservation"})),
        ({"PidsLimit": False, "CpuCfsQuota": False}, frozenset({"pids_limit", "cpus"})),
    ],
)
def test_docker_is_asked_its_info_once(changes: dict[str, Any], drops: frozenset[str]) -> None:
    """Docker's /info is read once: a cgroup driver "none" drops every cgroup limit, a
    capability flag that is false drops the limits it governs, and ulimits always apply."""
    info = {**DOCKER_INFO, **changes}
    eng = ReplayEngine([_exchange("/version", DOCKER_VERSION), _exchange("/info", info)])
    first, second = eng.ignored_limits(), eng.ignored_limits()
    assert first == second and first.drops == drops
    assert bool(first.engine) == bool(drops)
    assert eng.script == []


def test_rootless_docker_refusal_names_the_engine_and_spares_ulimits(tmp_path: Path) -> None:
    """On Docker without cgroups a cpus/mem_limit service is refused naming the engine;
    a service with only ulimits is not."""
    info = {**DOCKER_INFO, "CgroupDriver": "none"}
    eng = ReplayEngine([_exchange("/version", DOCKER_VERSION), _exchange("/info", info)])
    support = eng.ignored_limits()
    fake = _fake(support)
    with pytest.raises(UsageError) as refused:
        converge(fake, _desired(tmp_path, LIMITED), wait_ready=False)
    assert str(refused.value) == (
        "service 'db' sets pids_limit (so does service 'web'), which Docker without cgroups"
        " (rootless, no cgroup manager) silently ignores: the containers would run without"
        " those limits; run rootless Docker on cgroups v2 with systemd, or rootful Docker,"
        " or remove the limits from the spec"
    )
    only_ulimits = f"""
    [services.web]
    image = "{IMAGE}"
    ulimits = {{ nofile = 1024 }}
    """
    converge(_fake(support), _desired(tmp_path, only_ulimits), wait_ready=False)


def test_a_kernel_without_swap_accounting_refuses_only_the_swap_limit(tmp_path: Path) -> None:
    """SwapLimit false: memswap_limit is refused, naming only that field; mem_limit alone
    converges."""
    info = {**DOCKER_INFO, "SwapLimit": False}
    support = ReplayEngine(
        [_exchange("/version", DOCKER_VERSION), _exchange("/info", info)]
    ).ignored_limits()
    text = f"""
    [services.web]
    image = "{IMAGE}"
    mem_limit = "64m"
    memswap_limit = "128m"
    """
    with pytest.raises(UsageError) as refused:
        converge(_fake(support), _desired(tmp_path, text), wait_ready=False)
    assert str(refused.value).startswith(
        "service 'web' sets memswap_limit, which this Docker engine (its kernel lacks"
        " SwapLimit support) silently ignores"
    )
    eng = _fake(support)
    desired = _desired(tmp_path, text.replace('memswap_limit = "128m"', ""))
    converge(eng, desired, wait_ready=False)
    assert len(eng.list_containers(desired.project)) == 1


def test_a_daemon_pass_refuses_an_added_limit_and_keeps_what_runs(tmp_path: Path) -> None:
    """A spec edited to add a limit on rootless cgroups-v1 Podman: the daemon's pass records
    the refusal as invalid-spec (no retry loop) and leaves the running containers alone."""
    world = DaemonWorld(tmp_path)
    world.engine.limit_support = ROOTLESS_V1
    r = world.reconciler
    r.trigger("start")
    world.run_next()
    assert r.state.last_result == "ok" and world.engine.limit_queries == 0
    ids = {n: c.id for n, c in world.containers().items()}
    calls = len(world.engine.mutating_calls())
    world.write(DAEMON_SPEC.format(web_color="x", worker_color="y") + 'mem_limit = "64m"\n')
    r.trigger("files changed: envd.toml")
    world.run_next()
    assert r.state.last_result == "invalid-spec"
    assert r.state.last_error.startswith("service 'worker' sets mem_limit, which rootless Podman")
    assert {n: c.id for n, c in world.containers().items()} == ids
    assert world.engine.mutating_calls()[calls:] == []
