"""The swarm engine contract: one set of cases, run on ``FakeSwarm`` and a real one-node swarm.

What ``envd deploy --target swarm`` relies on: services created, listed by
label, updated only from the version last seen and removed; tasks reaching
``running`` with the task hash of their spec; secrets whose values never come
back; configs mounted with their mode; overlay networks; and, on this kernel without IPVS, DNS round robin with
host-mode ports (a routing-mesh port is assigned but nobody answers on it).
"""

from __future__ import annotations

import subprocess
from dataclasses import fields, replace

import pytest

from envd.values import labels
from envd.values.errors import Conflict, EngineError, NotFound
from envd.values.swarm_types import (
    ConfigRef,
    ObservedConfig,
    ObservedSecret,
    ObservedTask,
    PublishedPort,
    SecretRef,
)
from envd.values.types import NetworkAttachment
from tests.contract.conftest import SwarmWorld
from tests.helpers import wait_for

HTTPD = ("sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www")


def _running(w: SwarmWorld, service_id: str, task_hash: str, n: int) -> list[ObservedTask]:
    """Wait until ``n`` tasks of the service run ``task_hash`` and no other is meant to run."""

    def settled() -> list[ObservedTask] | None:
        tasks = [t for t in w.engine.list_tasks([service_id]) if t.desired_state == "running"]
        running = [t for t in tasks if t.state == "running" and t.task_hash == task_hash]
        return running if len(running) == n == len(tasks) else None

    return wait_for(settled, timeout=90, interval=0.2, message=f"{n} tasks of {service_id}")


def test_the_engine_manages_an_active_one_node_swarm(swarm_world: SwarmWorld) -> None:
    """swarm_info says active manager, and the node it names is in node_names."""
    info = swarm_world.engine.swarm_info()
    assert info.state == "active" and info.manager
    nodes = swarm_world.engine.node_names()
    assert nodes.get(info.node_id)


def test_services_are_created_listed_by_label_updated_by_version_and_removed(
    swarm_world: SwarmWorld,
) -> None:
    """A service name is unique, lists filter by every label, and an update needs the current version."""
    eng, w = swarm_world.engine, swarm_world
    spec = w.service("a", replicas=0)
    sid = eng.create_service(spec, {})
    eng.create_service(w.service("b", replicas=0), {})
    with pytest.raises(Conflict):
        eng.create_service(spec, {})
    both = {s.name: s for s in eng.list_services(w.labels())}
    assert set(both) == {w.name("a"), w.name("b")}
    (only_a,) = eng.list_services(w.labels(**{labels.SERVICE: "a"}))
    assert only_a.id == sid and only_a.replicas == 0 and only_a.image.startswith(w.image)
    assert only_a.labels[labels.PROJECT] == w.project
    assert eng.list_services({labels.PROJECT: w.project + "-other"}) == []

    eng.update_service(sid, only_a.version, w.service("a", replicas=0, task_hash="h2"), {})
    (after,) = eng.list_services(w.labels(**{labels.SERVICE: "a"}))
    assert after.version > only_a.version
    with pytest.raises(EngineError):  # out of sequence: someone else changed it meanwhile
        eng.update_service(sid, only_a.version, w.service("a", replicas=0), {})

    eng.remove_service(sid)
    assert [s.name for s in eng.list_services(w.labels())] == [w.name("b")]
    eng.remove_service(sid)  # gone already: no error


def test_tasks_reach_running_and_an_update_replaces_them(swarm_world: SwarmWorld) -> None:
    """Each replica's task runs the spec's task hash; after an update only the new hash runs."""
    eng, w = swarm_world.engine, swarm_world
    sid = eng.create_service(w.service("web", replicas=2), {})
    first = _running(w, sid, "h1", 2)
    assert sorted(t.slot for t in first) == [1, 2]
    assert all(t.node_id and t.container_id for t in first)
    (svc,) = eng.list_services(w.labels())
    eng.update_service(sid, svc.version, w.service("web", replicas=2, task_hash="h2"), {})
    _running(w, sid, "h2", 2)
    assert eng.list_tasks([]) == []


def test_secrets_are_created_listed_and_removed_but_never_read_back(
    swarm_world: SwarmWorld,
) -> None:
    """A secret's value goes in once; lists show name and labels only; in use it cannot go."""
    eng, w = swarm_world.engine, swarm_world
    value = b"contract-s3cret-value"
    name = f"{w.project}_token_v1"
    secret_id = eng.create_secret(name, w.labels(**{labels.SERVICE: "token"}), value)
    eng.create_secret(f"{w.project}_other_v1", w.labels(), b"x")
    with pytest.raises(Conflict):
        eng.create_secret(name, w.labels(), value)
    (listed,) = eng.list_secrets(w.labels(**{labels.SERVICE: "token"}))
    assert (listed.id, listed.name) == (secret_id, name)
    assert [f.name for f in fields(ObservedSecret)] == ["id", "name", "labels"]
    assert value.decode() not in repr(eng.list_secrets(w.labels()))

    ref = SecretRef(secret=name, target="token")
    sid = eng.create_service(w.service("user", secrets=(ref,)), {name: secret_id})
    _running(w, sid, "h1", 1)
    (user,) = [svc for svc in eng.list_services(w.labels()) if svc.id == sid]
    assert (user.secrets, user.configs) == ((name,), ())  # the names it mounts, not a value
    assert value.decode() not in repr(eng.list_services(w.labels()))
    with pytest.raises(Conflict):
        eng.remove_secret(secret_id)
    eng.remove_service(sid)
    wait_for(
        lambda: eng.remove_secret(secret_id) is None,
        timeout=60,
        interval=0.2,
        ignore=(Conflict,),
    )
    assert [s.name for s in eng.list_secrets(w.labels())] == [f"{w.project}_other_v1"]
    eng.remove_secret(secret_id)  # gone already: no error


def _task_file(w: SwarmWorld, task: ObservedTask, service: str, path: str) -> tuple[bytes, str]:
    """What a running task finds at ``path``: its content and ``mode uid gid``."""
    if w.fake is not None:
        found = w.fake.task_file(service, path)
        assert found is not None
        value, uid, gid, mode = found
        return value, f"{mode:o} {uid} {gid}"
    run = ["docker", "exec", task.container_id]
    content = subprocess.run([*run, "cat", path], capture_output=True, check=True, timeout=30)
    stat = subprocess.run(
        [*run, "stat", "-c", "%a %u %g", path], capture_output=True, check=True, timeout=30
    )
    return content.stdout, stat.stdout.decode().strip()


def test_configs_are_mounted_with_their_mode_and_cannot_go_while_used(
    swarm_world: SwarmWorld,
) -> None:
    """A config's content reaches the task's file (read-only root) with its uid, gid and mode;
    in use it cannot go."""
    eng, w = swarm_world.engine, swarm_world
    name = f"{w.project}_site_v1"
    config_id = eng.create_config(name, w.labels(**{labels.CONFIG: "site"}), b"listen 80;\n")
    with pytest.raises(Conflict):
        eng.create_config(name, w.labels(), b"other")
    (listed,) = eng.list_configs(w.labels(**{labels.CONFIG: "site"}))
    assert (listed.id, listed.name) == (config_id, name)
    assert [f.name for f in fields(ObservedConfig)] == ["id", "name", "labels"]

    ref = ConfigRef(config=name, target="/etc/site.conf", uid="101", gid="102", mode=0o440)
    spec = w.service("web", configs=(ref,))
    # The swarm mounts the file itself: a read-only root filesystem is no obstacle.
    spec = replace(spec, container=replace(spec.container, read_only=True))
    sid = eng.create_service(spec, {}, {name: config_id})
    (task,) = _running(w, sid, "h1", 1)
    (web,) = [svc for svc in eng.list_services(w.labels()) if svc.id == sid]
    assert (web.secrets, web.configs) == ((), (name,))
    assert _task_file(w, task, w.name("web"), "/etc/site.conf") == (b"listen 80;\n", "440 101 102")
    with pytest.raises(Conflict):
        eng.remove_config(config_id)
    eng.remove_service(sid)
    wait_for(
        lambda: eng.remove_config(config_id) is None,
        timeout=60,
        interval=0.2,
        ignore=(Conflict,),
    )
    assert eng.list_configs(w.labels()) == []
    eng.remove_config(config_id)  # gone already: no error


def test_overlay_networks_are_found_by_exact_name_and_freed_with_their_services(
    swarm_world: SwarmWorld,
) -> None:
    """An overlay network is swarm-scoped, unique by name, and cannot go while a service uses it."""
    eng, w = swarm_world.engine, swarm_world
    name = f"{w.project}_default"
    nid = eng.create_overlay_network(name, w.labels(**{labels.NETWORK: "default"}))
    # A real manager lists a network it just made without its driver for a moment.
    found = wait_for(
        lambda: (n := eng.find_network(name)) is not None and n.driver == "overlay" and n,
        timeout=30,
        interval=0.1,
    )
    assert found and (found.id, found.scope) == (nid, "swarm")
    assert eng.find_network(name[:-2]) is None  # no prefix match
    with pytest.raises(Conflict):
        eng.create_overlay_network(name, w.labels())
    assert [n.name for n in eng.list_swarm_networks(w.labels())] == [name]
    assert eng.list_swarm_networks({labels.PROJECT: w.project + "-other"}) == []

    attached = (NetworkAttachment(name, ("web",)),)
    sid = eng.create_service(w.service("web", networks=attached), {})
    _running(w, sid, "h1", 1)
    with pytest.raises(EngineError):
        eng.remove_network(name)
    eng.remove_service(sid)
    wait_for(
        lambda: eng.remove_network(name) is None, timeout=60, interval=0.2, ignore=(EngineError,)
    )
    # A real manager may list it a moment longer.
    wait_for(lambda: eng.find_network(name) is None, timeout=30, interval=0.1)
    with pytest.raises(NotFound):
        eng.remove_network(name)


def test_dns_round_robin_with_a_host_mode_port_answers_on_the_node(
    swarm_world: SwarmWorld,
) -> None:
    """A DNS-RR service publishing in host mode answers on the port its running task reports."""
    eng, w = swarm_world.engine, swarm_world
    port = PublishedPort(target=8080, mode="host")
    sid = eng.create_service(w.service("web", command=HTTPD, ports=(port,)), {})
    (task,) = _running(w, sid, "h1", 1)
    (published,) = {p.published for p in task.ports}
    assert published
    assert f"0.0.0.0:{published}->8080/tcp" in (eng.container_ports(task.container_id) or [])
    assert wait_for(lambda: w.answers(published), timeout=30, interval=0.2)


def test_a_routing_mesh_port_is_assigned_but_unreachable_without_ipvs(
    swarm_world: SwarmWorld,
) -> None:
    """On a kernel without IPVS a VIP service's ingress port is assigned, and nothing answers on it."""
    eng, w = swarm_world.engine, swarm_world
    if not eng.ipvs_missing():
        pytest.skip("this engine's kernel has IPVS: the routing mesh works")
    port = PublishedPort(target=8080, mode="ingress")
    spec = w.service("mesh", command=HTTPD, ports=(port,), endpoint_mode="vip")
    sid = eng.create_service(spec, {})
    (task,) = _running(w, sid, "h1", 1)
    assert task.ports == ()  # ingress ports belong to the service, not the task
    (svc,) = eng.list_services(w.labels())
    (assigned,) = svc.ports
    assert assigned.mode == "ingress" and assigned.published
    assert not w.answers(assigned.published)
