"""The engine contract: what envd relies on, checked on the fake and the real engine.

Every test runs twice, against ``FakeEngine`` and against the Docker engine
(``-m docker``), so the fake used by the unit tests cannot drift from Docker.
"""

from __future__ import annotations

import io
import itertools
import os
import queue
import socket
import tarfile
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import pytest

from envd.engine.base import Engine
from envd.values.errors import Conflict, EngineError, EngineUnavailable, NotFound
from envd.values.types import (
    BuildRequest,
    ExecOptions,
    Healthcheck,
    Mount,
    NetworkAttachment,
    ObservedContainer,
    PortBinding,
    SecretFile,
)
from tests.helpers import wait_for

from .conftest import World


def fast_check(*test: str) -> Healthcheck:
    """A healthcheck run every 100 ms that settles after one result."""
    return Healthcheck(test, interval_s=0.1, timeout_s=2.0, retries=1)


def observed(w: World, cid: str) -> ObservedContainer | None:
    return next((c for c in w.engine.list_containers(w.project) if c.id == cid), None)


def wait_observed(
    w: World, cid: str, pred: Callable[[ObservedContainer], object], what: str
) -> ObservedContainer:
    """Poll the list until the container satisfies ``pred``; return it."""

    def probe() -> ObservedContainer | None:
        o = observed(w, cid)
        return o if o is not None and pred(o) else None

    return wait_for(probe, timeout=20.0, message=what)


def test_ping(world: World) -> None:
    """A reachable engine answers a ping without raising."""
    world.engine.ping()


def test_unreachable_engine_raises_engine_unavailable(unreachable_engine: Engine) -> None:
    """An engine that cannot be reached raises EngineUnavailable (exit 3) in one sentence."""
    with pytest.raises(EngineUnavailable) as info:
        unreachable_engine.list_containers("any")
    message = str(info.value)
    assert "not reachable" in message
    assert "\n" not in message
    assert info.value.exit_code == 3


def test_container_round_trip(world: World) -> None:
    """Create, start, stop and remove move a container created → running → exited → gone."""
    eng = world.engine
    spec = world.spec("web", labels={"dev.envd.config-hash": "abc"})
    cid = eng.create_container(spec)

    c = observed(world, cid)
    assert c is not None
    assert (c.name, c.status, c.service, c.config_hash) == (spec.name, "created", "web", "abc")
    assert c.labels["dev.envd.project"] == world.project
    image = eng.inspect_image(world.image)
    assert image is not None and c.image_id == image.id

    eng.start_container(cid)
    eng.start_container(cid)  # starting a running container is not an error
    wait_observed(world, cid, lambda o: o.status == "running", "running")
    state = eng.container_state(cid)
    assert (state.id, state.status, state.exit_code) == (cid, "running", None)
    assert (state.has_healthcheck, state.health) == (False, None)

    eng.stop_container(cid, timeout=1)
    eng.stop_container(cid, timeout=1)  # stopping a stopped container is not an error
    c = observed(world, cid)
    assert c is not None and c.status == "exited" and c.exit_code is not None
    assert eng.container_state(cid).status == "exited"

    eng.remove_container(cid)
    assert observed(world, cid) is None
    with pytest.raises(NotFound):
        eng.remove_container(cid)


def test_start_and_exit_times_order_restarts(world: World) -> None:
    """container_state's started_at/finished_at are unset before a start, and each new start
    is later than the previous start and exit (the supervisor compares them)."""
    eng = world.engine
    cid = eng.create_container(world.spec("web"))
    fresh = eng.container_state(cid)
    assert (fresh.started_at, fresh.finished_at) == (None, None)
    eng.start_container(cid)
    first = eng.container_state(cid)
    assert first.started_at is not None
    eng.stop_container(cid, timeout=1)
    stopped = eng.container_state(cid)
    assert stopped.finished_at is not None and stopped.finished_at >= first.started_at
    eng.start_container(cid)
    again = eng.container_state(cid)
    assert again.started_at is not None and again.started_at >= stopped.finished_at
    assert again.started_at > first.started_at


def test_list_is_filtered_by_project_label(world: World) -> None:
    """list_containers returns this project's containers only, in any state."""
    eng = world.engine
    mine = eng.create_container(world.spec("a"))
    other_project = f"{world.project}-other"
    other = eng.create_container(
        world.spec("b", labels={"dev.envd.project": other_project}, command=("true",))
    )
    try:
        assert [c.id for c in eng.list_containers(world.project)] == [mine]
        assert [c.id for c in eng.list_containers(other_project)] == [other]
    finally:
        eng.remove_container(other)


def test_remove_running_container(world: World) -> None:
    """remove_container also removes a container that is still running."""
    eng = world.engine
    cid = eng.create_container(world.spec("run"))
    eng.start_container(cid)
    eng.remove_container(cid, volumes=True)
    assert observed(world, cid) is None


def test_name_conflict(world: World) -> None:
    """A container name in use raises Conflict, on create and on rename."""
    eng = world.engine
    first = eng.create_container(world.spec("dup"))
    with pytest.raises(Conflict):
        eng.create_container(world.spec("dup"))
    second = eng.create_container(world.spec("other"))
    with pytest.raises(Conflict):
        eng.rename_container(second, world.name("dup"))
    eng.rename_container(second, world.name("renamed"))
    names = {c.id: c.name for c in eng.list_containers(world.project)}
    assert names == {first: world.name("dup"), second: world.name("renamed")}


def test_missing_objects_raise_not_found(world: World) -> None:
    """Every call on a missing container, network, volume or image raises NotFound."""
    eng = world.engine
    missing = "0" * 64
    for call in (
        lambda: eng.start_container(missing),
        lambda: eng.stop_container(missing, 1),
        lambda: eng.remove_container(missing),
        lambda: eng.rename_container(missing, world.name("x")),
        lambda: eng.container_state(missing),
        lambda: eng.container_logs(missing),
        lambda: eng.exec_run(missing, ["true"]),
        lambda: eng.put_archive(missing, "/", b""),
        lambda: eng.remove_network(world.name("no-net")),
        lambda: eng.remove_volume(world.name("no-vol")),
        lambda: eng.create_container(world.spec("img", image="envd-test/does-not-exist:0")),
    ):
        with pytest.raises(NotFound):
            call()
    assert eng.list_containers(world.project) == []


def test_missing_network_raises_not_found_at_start(world: World) -> None:
    """A container on a network that does not exist fails to start with NotFound
    (Podman refuses it at create already, also with NotFound)."""
    eng = world.engine
    spec = world.spec("net", networks=(NetworkAttachment(world.name("no-net"), ("x",)),))
    if world.podman:
        with pytest.raises(NotFound):
            eng.create_container(spec)
        assert eng.list_containers(world.project) == []
        return
    cid = eng.create_container(spec)
    with pytest.raises(NotFound):
        eng.start_container(cid)


def test_failed_create_leaves_nothing_behind(world: World) -> None:
    """A create that fails after the container exists (secrets unwritable) removes it."""
    eng = world.engine
    vol = world.name("ro")
    eng.create_volume(vol, world.labels())
    spec = world.spec(
        "half",
        mounts=(Mount("volume", "/run/secrets", vol, read_only=True),),
        secrets=(SecretFile("/run/secrets/pw", value=b"do-not-leak"),),
    )
    with pytest.raises(EngineError) as info:
        eng.create_container(spec)
    assert "do-not-leak" not in str(info.value)
    assert world.name("half") in str(info.value)
    assert eng.list_containers(world.project) == []
    # The name is free again.
    eng.create_container(world.spec("half"))


def test_inspect_image(world: World) -> None:
    """inspect_image gives the id of a present image and None for an absent one."""
    eng = world.engine
    assert eng.inspect_image("envd-test/does-not-exist:0") is None
    img = eng.inspect_image(world.image)
    assert img is not None and img.id.startswith("sha256:")
    assert eng.inspect_image(img.id) is not None


def test_build_image_keeps_labels(world: World) -> None:
    """build_image tags the image and keeps the labels asked for."""
    tag = f"envd-test/{world.project}:built"
    world.images.append(tag)
    with tempfile.TemporaryDirectory() as ctx:
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(f'FROM {world.image}\nCMD ["true"]\n')
        img = world.engine.build_image(
            BuildRequest(context=ctx, tag=tag, labels={"dev.envd.context-digest": "d1"})
        )
    assert img.labels.get("dev.envd.context-digest") == "d1"
    again = world.engine.inspect_image(tag)
    assert again is not None and again.id == img.id


def test_networks(world: World) -> None:
    """Networks are created with labels, listed by project, checked and removed."""
    eng = world.engine
    name = world.name("net")
    assert not eng.network_exists(name)
    nid = eng.create_network(name, world.labels(**{"dev.envd.network": "default"}))
    assert eng.network_exists(name)
    with pytest.raises(Conflict):
        eng.create_network(name, world.labels())
    [net] = eng.list_networks(world.project)
    assert (net.id, net.name, net.labels.get("dev.envd.network")) == (nid, name, "default")
    eng.remove_network(name)
    assert not eng.network_exists(name)
    assert eng.list_networks(world.project) == []


def test_network_in_use_is_a_conflict(world: World) -> None:
    """Removing a network a running container is attached to raises Conflict."""
    eng = world.engine
    name = world.name("busy")
    eng.create_network(name, world.labels())
    cid = eng.create_container(world.spec("user", networks=(NetworkAttachment(name),)))
    eng.start_container(cid)
    with pytest.raises(Conflict):
        eng.remove_network(name)
    eng.remove_container(cid)
    eng.remove_network(name)


def test_network_containers_lists_the_running_attached_ones(world: World) -> None:
    """A network lists the running containers attached to it by name, and none once they stop."""
    eng = world.engine
    name = world.name("members")
    eng.create_network(name, world.labels())
    assert eng.network_containers(name) == []
    cid = eng.create_container(world.spec("member", networks=(NetworkAttachment(name),)))
    eng.start_container(cid)
    assert eng.network_containers(name) == [world.name("member")]
    eng.stop_container(cid, 1)
    assert eng.network_containers(name) == []
    with pytest.raises(NotFound):
        eng.network_containers(world.name("no-such-net"))
    eng.remove_container(cid)
    eng.remove_network(name)


def test_volumes(world: World) -> None:
    """Volumes are created with labels (idempotently), listed, checked and removed."""
    eng = world.engine
    name = world.name("data")
    assert not eng.volume_exists(name)
    assert eng.create_volume(name, world.labels(**{"dev.envd.volume": "data"})) == name
    assert eng.create_volume(name, world.labels()) == name  # exists: returned unchanged
    assert eng.volume_exists(name)
    [vol] = eng.list_volumes(world.project)
    assert (vol.name, vol.labels.get("dev.envd.volume")) == (name, "data")
    cid = eng.create_container(world.spec("vol", mounts=(Mount("volume", "/data", name),)))
    with pytest.raises(Conflict):
        eng.remove_volume(name)  # in use, even by a container never started
    eng.remove_container(cid)
    eng.remove_volume(name)
    assert not eng.volume_exists(name)
    assert eng.list_volumes(world.project) == []


def test_anonymous_volumes_are_marked_kept_and_handed_over(world: World) -> None:
    """An anonymous volume outlives its container without ``volumes``; handed over by name
    it stays anonymous and ``remove_container(volumes=True)`` removes it; mounted by name
    without being handed over it is nobody's anonymous volume and stays."""
    eng = world.engine
    named = world.name("named")
    eng.create_volume(named, world.labels())
    cid = eng.create_container(
        world.spec("a", mounts=(Mount("volume", "/data"), Mount("volume", "/named", named)))
    )
    anon = ""
    try:
        by_target = {m.target: m for m in eng.container_mounts(cid)}
        data, kept = by_target["/data"], by_target["/named"]
        anon = data.source
        assert (data.type, data.anonymous, data.secrets, data.read_only) == (
            "volume",
            True,
            False,
            False,
        )
        assert len(anon) == 64 and all(ch in "0123456789abcdef" for ch in anon)
        assert (kept.source, kept.anonymous) == (named, False)
        eng.remove_container(cid)
        assert eng.volume_exists(anon), "an anonymous volume went without volumes=True"

        # Mounted by name but not handed over: not anonymous, so volumes=True keeps it.
        cid = eng.create_container(world.spec("b", mounts=(Mount("volume", "/data", anon),)))
        assert [m.anonymous for m in eng.container_mounts(cid)] == [False]
        eng.remove_container(cid, volumes=True)
        assert eng.volume_exists(anon)

        # Handed over: still anonymous, and volumes=True removes it (the engine alone would not).
        cid = eng.create_container(
            world.spec("c", mounts=(Mount("volume", "/data", anon),), anonymous_volumes=(anon,))
        )
        [handed] = eng.container_mounts(cid)
        assert (handed.target, handed.source, handed.anonymous) == ("/data", anon, True)
        eng.remove_container(cid, volumes=True)
        assert not eng.volume_exists(anon)
        assert eng.volume_exists(named)
        with pytest.raises(NotFound):
            eng.container_mounts(cid)
    finally:
        if anon and eng.volume_exists(anon):  # it carries no project label to clean it up by
            for c in eng.list_containers(world.project):
                eng.remove_container(c.id)
            eng.remove_volume(anon)


def test_bind_relabel_and_propagation_reach_the_container(world: World) -> None:
    """A bind's SELinux relabel mode and propagation are what the engine reports for the container."""
    eng = world.engine
    with tempfile.TemporaryDirectory() as src:
        cid = eng.create_container(
            world.spec(
                "binds",
                mounts=(
                    Mount("bind", "/relabelled", src, read_only=True, selinux="z"),
                    Mount("bind", "/private", src, propagation="private"),
                    Mount("bind", "/plain", src),
                ),
            )
        )
        try:
            found = {m.target: m for m in eng.container_mounts(cid)}
            relabelled, private, plain = found["/relabelled"], found["/private"], found["/plain"]
            assert (relabelled.selinux, relabelled.read_only, relabelled.source) == ("z", True, src)
            assert (private.propagation, private.selinux, private.read_only) == (
                "private",
                "",
                False,
            )
            assert (plain.propagation, plain.selinux) == ("rprivate", "")
        finally:
            eng.remove_container(cid)


def test_secret_volume_is_marked_and_goes_with_its_container(world: World) -> None:
    """A read-only container's secrets volume is reported as such and removed even without ``volumes``."""
    eng = world.engine
    cid = eng.create_container(
        world.spec("ro", read_only=True, secrets=(SecretFile("/run/secrets/pw", value=b"x"),))
    )
    [vol] = eng.container_mounts(cid)
    assert (vol.target, vol.type, vol.anonymous, vol.secrets) == (
        "/run/secrets",
        "volume",
        True,
        True,
    )
    eng.remove_container(cid)
    assert not eng.volume_exists(vol.source)


def test_exit_code_is_observed(world: World) -> None:
    """A command exiting 3 shows as exited with code 3 in the list and in the state."""
    eng = world.engine
    cid = eng.create_container(world.spec("job", command=("sh", "-c", "exit 3")))
    eng.start_container(cid)
    world.process_exits(cid, 3)
    c = wait_observed(world, cid, lambda o: o.status == "exited", "exit")
    assert c.exit_code == 3
    state = eng.container_state(cid)
    assert (state.status, state.exit_code) == ("exited", 3)


def test_health_starting_then_healthy(world: World) -> None:
    """A passing healthcheck is reported starting, then healthy, while running."""
    eng = world.engine
    hc = fast_check("CMD-SHELL", "true")
    cid = eng.create_container(world.spec("ok", healthcheck=hc))
    eng.start_container(cid)
    first = eng.container_state(cid)
    assert first.has_healthcheck
    assert first.health in ("starting", "healthy")
    if not world.runs_healthchecks:
        # Podman without systemd never runs the check: never claimed healthy.
        assert eng.container_state(cid).health == "starting"
        c = observed(world, cid)
        assert c is not None and c.health != "healthy"
        return
    world.healthcheck_reports(cid, "healthy")
    wait_observed(world, cid, lambda o: o.health == "healthy", "healthy")
    assert eng.container_state(cid).health == "healthy"


def test_health_unhealthy(world: World) -> None:
    """A failing healthcheck is reported unhealthy while the container keeps running."""
    eng = world.engine
    hc = fast_check("CMD-SHELL", "false")
    cid = eng.create_container(world.spec("bad", healthcheck=hc))
    eng.start_container(cid)
    if not world.runs_healthchecks:
        # Podman without systemd never runs the check: it stays "starting".
        assert eng.container_state(cid).health == "starting"
        return
    world.healthcheck_reports(cid, "unhealthy")
    wait_observed(world, cid, lambda o: o.health == "unhealthy", "unhealthy")
    state = eng.container_state(cid)
    assert (state.status, state.health) == ("running", "unhealthy")
    eng.stop_container(cid, 1)
    c = observed(world, cid)
    assert c is not None and c.health is None  # no health once stopped
    assert eng.container_state(cid).health is None


def test_healthcheck_none_disables(world: World) -> None:
    """A healthcheck of ("NONE",) means the container has none."""
    eng = world.engine
    cid = eng.create_container(world.spec("none", healthcheck=Healthcheck(("NONE",))))
    eng.start_container(cid)
    state = eng.container_state(cid)
    assert (state.has_healthcheck, state.health) == (False, None)


def secret_specs() -> tuple[SecretFile, ...]:
    return (
        SecretFile("/run/secrets/x", uid=1000, gid=1001, mode=0o440, value=b"hunter2"),
        SecretFile("/run/secrets/db_password", value=b"pw"),
    )


@pytest.mark.parametrize("read_only", [False, True], ids=["rw", "read-only"])
def test_secrets_delivered_with_owner_and_mode(world: World, read_only: bool) -> None:
    """Secrets arrive as files with their uid, gid and mode, even on a read-only rootfs."""
    eng = world.engine
    cid = eng.create_container(world.spec("sec", secrets=secret_specs(), read_only=read_only))
    eng.start_container(cid)
    code, out = eng.exec_run(
        cid, ["stat", "-c", "%a %u %g", "/run/secrets/x", "/run/secrets/db_password"]
    )
    assert (code, out.decode().split("\n")[:2]) == (0, ["440 1000 1001", "400 0 0"])
    assert eng.exec_run(cid, ["cat", "/run/secrets/x"]) == (0, b"hunter2")
    c = observed(world, cid)
    assert c is not None and "hunter2" not in repr(c)


def test_exec_run(world: World) -> None:
    """exec_run returns the command's exit code and output, and needs a running container."""
    eng = world.engine
    cid = eng.create_container(world.spec("exec"))
    with pytest.raises(Conflict):
        eng.exec_run(cid, ["true"])
    eng.start_container(cid)
    assert eng.exec_run(cid, ["echo", "hello", "world"]) == (0, b"hello world\n")
    assert eng.exec_run(cid, ["sh", "-c", "exit 4"])[0] == 4


def test_exec_run_with_options(world: World) -> None:
    """An exec's options (hooks, sync+exec) set its user, working directory and extra
    variables, over the container's own environment."""
    eng = world.engine
    cid = eng.create_container(world.spec("execopts", env=(("BASE", "b"), ("A", "old"))))
    eng.start_container(cid)
    opts = ExecOptions(user="1000", working_dir="/tmp", env=(("A", "1"),))
    code, out = eng.exec_run(cid, ["env"], opts)
    lines = set(out.decode().splitlines())
    assert code == 0 and {"A=1", "BASE=b"} <= lines and "A=old" not in lines
    assert eng.exec_run(cid, ["pwd"], opts) == (0, b"/tmp\n")
    assert eng.exec_run(cid, ["id", "-u"], opts) == (0, b"1000\n")
    assert eng.exec_run(cid, ["id", "-u"]) == (0, b"0\n")


def test_logs(world: World) -> None:
    """container_logs gives the last lines; stream_logs without follow gives them all."""
    eng = world.engine
    cid = eng.create_container(
        world.spec("logs", command=("sh", "-c", "echo one; echo two; echo three; sleep 3600"))
    )
    eng.start_container(cid)
    world.prints(cid, "one", "two", "three")
    wait_for(lambda: len(eng.container_logs(cid)) == 3, timeout=20.0, message="three log lines")
    assert eng.container_logs(cid, tail=2) == ["two", "three"]
    assert list(eng.stream_logs(cid, follow=False)) == ["one", "two", "three"]
    assert list(eng.stream_logs(cid, tail=1, follow=False)) == ["three"]


def test_put_archive(world: World) -> None:
    """put_archive extracts a tar into the container at the given path."""
    eng = world.engine
    cid = eng.create_container(world.spec("tar"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mode = 5, 0o644
        tar.addfile(info, io.BytesIO(b"hello"))
    eng.put_archive(cid, "/bin", buf.getvalue())
    eng.start_container(cid)
    assert eng.exec_run(cid, ["cat", "/bin/hello.txt"]) == (0, b"hello")


def test_networks_with_aliases_resolve_by_name(world: World) -> None:
    """A container on two networks is reachable by each network's alias from peers there."""
    eng = world.engine
    front, back = world.name("front"), world.name("back")
    eng.create_network(front, world.labels())
    eng.create_network(back, world.labels())
    api = eng.create_container(
        world.spec(
            "api",
            networks=(NetworkAttachment(front, ("api-front",)), NetworkAttachment(back, ("api",))),
        )
    )
    db = eng.create_container(world.spec("db", networks=(NetworkAttachment(back, ("db",)),)))
    web = eng.create_container(world.spec("web", networks=(NetworkAttachment(front),)))
    for cid in (api, db, web):
        eng.start_container(cid)

    def reaches(src: str, name: str) -> bool:
        return eng.exec_run(src, ["ping", "-c", "1", "-W", "2", name])[0] == 0

    wait_for(
        lambda: reaches(db, "api"), timeout=20.0, message="db to reach api by its alias on back"
    )
    assert reaches(web, "api-front")
    assert reaches(api, "db")
    assert reaches(web, world.name("api"))  # the container name resolves too
    assert not reaches(web, "db")  # db is on back only


def test_ports_published_on_loopback_with_engine_chosen_port(world: World) -> None:
    """A port with no host port is published on 127.0.0.1 at a port the engine picks."""
    eng = world.engine
    cid = eng.create_container(
        world.spec(
            "http",
            command=(
                "sh",
                "-c",
                "mkdir /www && echo ok > /www/index.html && httpd -f -p 8080 -h /www",
            ),
            ports=(PortBinding(8080, host_ip="127.0.0.1"),),
        )
    )
    created = observed(world, cid)
    assert created is not None and created.ports == ()
    eng.start_container(cid)
    c = wait_observed(world, cid, lambda o: o.ports, "a published port")
    [port] = c.ports
    assert (port.container_port, port.protocol, port.host_ip) == (8080, "tcp", "127.0.0.1")
    assert port.host_port and port.host_port > 0
    if world.kind == "real":
        assert (
            wait_for(
                lambda: http_get("127.0.0.1", port.host_port or 0), timeout=20.0, message="httpd"
            )
            == "ok"
        )


def http_get(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    return body.decode().strip() if head.startswith(b"HTTP/1.") and b" 200 " in head else None


def test_fixed_host_port_in_use_is_an_engine_error(world: World) -> None:
    """Starting a second container on a host port already taken raises EngineError."""
    eng = world.engine
    first = eng.create_container(world.spec("p1", ports=(PortBinding(80, host_ip="127.0.0.1"),)))
    eng.start_container(first)
    c = wait_observed(world, first, lambda o: o.ports, "a port")
    taken = c.ports[0].host_port
    second = eng.create_container(
        world.spec("p2", ports=(PortBinding(80, host_ip="127.0.0.1", host_port=taken),))
    )
    with pytest.raises(EngineError) as info:
        eng.start_container(second)
    assert not isinstance(info.value, (NotFound, Conflict))
    assert "allocated" in str(info.value) or "in use" in str(info.value)


def test_stream_events_reports_the_projects_container_events(world: World) -> None:
    """stream_events yields the project's container events (start, die) as they happen."""
    eng = world.engine
    seen: queue.Queue[dict[str, Any]] = queue.Queue()

    def follow() -> None:
        for event in eng.stream_events(world.project):
            seen.put(event)

    threading.Thread(target=follow, daemon=True).start()
    # The stream has no "connected" signal: poke until a first event shows.
    probes = itertools.count()
    wait_for(
        lambda: seen.qsize() > 0 or eng.create_container(world.spec(f"probe{next(probes)}")) == "",
        timeout=20.0,
        message="the event stream to deliver a first event",
    )
    other = eng.create_container(
        world.spec("else", labels={"dev.envd.project": f"{world.project}-x"}, command=("true",))
    )
    try:
        eng.start_container(other)
        cid = eng.create_container(world.spec("ev", command=("sh", "-c", "exit 2")))
        eng.start_container(cid)
        world.process_exits(cid, 2)
        actions: list[str] = []

        def saw_die() -> bool:
            while not seen.empty():
                event = seen.get()
                assert event["Actor"]["Attributes"]["dev.envd.project"] == world.project
                if event["Actor"]["ID"] == cid:
                    actions.append(str(event["Action"]))
            return "die" in actions

        wait_for(saw_die, timeout=20.0, message="a die event")
        assert actions[:2] == ["create", "start"] or actions[:1] == ["start"]
    finally:
        eng.remove_container(other)
        if world.fake is not None:
            world.fake.end_event_streams()
