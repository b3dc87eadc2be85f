"""Names and networking, the same on the fake and the real engine: the container's
inspect shows its name, ExposedPorts, NetworkMode and endpoint IPAMConfig; the
network's list entry shows its subnet; bad static addresses fail at start."""

from __future__ import annotations

import random
from typing import Any

import pytest

from envd.values.errors import EngineError
from envd.values.types import IpamPool, NetworkAttachment, PortBinding
from tests.contract.conftest import World


def inspect(w: World, cid: str) -> dict[str, Any]:
    """The inspect fields envd sets, from either engine."""
    if w.fake is not None:
        return w.fake.inspect_doc(cid)
    from envd.engine.docker.client import DockerEngine

    assert isinstance(w.engine, DockerEngine)
    doc: dict[str, Any] = w.engine._inspect_container(cid)
    return doc


def subnet() -> tuple[str, str]:
    """A /24 unlikely to overlap another test's network on a shared engine, and an address in it."""
    b, c = random.randrange(100, 250), random.randrange(0, 256)
    return f"10.{b}.{c}.0/24", f"10.{b}.{c}.77"


def test_container_name_exposed_ports_and_joined_network(world: World) -> None:
    """A container keeps the name asked, exposes expose's and ports' keys, and one created
    with network_mode container:NAME reports the owner's id as its NetworkMode."""
    eng = world.engine
    net = world.name("n")
    eng.create_network(net, world.labels())
    owner_spec = world.spec(
        "owner",
        networks=(NetworkAttachment(net, ("owner",)),),
        ports=(PortBinding(8080, host_ip="127.0.0.1"),),
        exposed=("9000/tcp", "9001/udp"),
    )
    owner = eng.create_container(owner_spec)
    eng.start_container(owner)
    joined = eng.create_container(world.spec("joined", network_mode=f"container:{owner_spec.name}"))
    eng.start_container(joined)
    doc = inspect(world, owner)
    assert doc["Name"] == f"/{owner_spec.name}"
    assert set(doc["Config"]["ExposedPorts"]) == {"8080/tcp", "9000/tcp", "9001/udp"}
    # Podman names the network only under NetworkSettings; its NetworkMode reads
    # "bridge" for every user network (docs/compatibility.md, Podman).
    mode = "bridge" if world.podman else net
    assert doc["HostConfig"]["NetworkMode"] == mode
    assert set(doc["NetworkSettings"]["Networks"]) == {net}
    assert inspect(world, joined)["HostConfig"]["NetworkMode"] == f"container:{owner}"
    listed = {c.id: c.network_mode for c in eng.list_containers(world.project)}
    assert listed == {owner: mode, joined: f"container:{owner}"}


def test_static_address_and_network_subnet(world: World) -> None:
    """A network created with an ipam pool lists its subnet and gateway, and a container
    asking for an address in it gets that address."""
    eng = world.engine
    net, (pool, address) = world.name("static"), subnet()
    gateway = pool.replace("0/24", "1")
    eng.create_network(net, world.labels(), ipam=(IpamPool(pool, gateway=gateway),))
    [observed] = eng.list_networks(world.project)
    assert [(p.subnet, p.gateway) for p in observed.ipam] == [(pool, gateway)]
    cid = eng.create_container(world.spec("fixed", networks=(NetworkAttachment(net, (), address),)))
    eng.start_container(cid)
    endpoint = inspect(world, cid)["NetworkSettings"]["Networks"][net]
    # Podman's inspect has no IPAMConfig: the address asked shows as IPAddress only.
    asked = None if world.podman else {"IPv4Address": address}
    assert endpoint["IPAMConfig"] == asked
    assert endpoint["IPAddress"] == address


@pytest.mark.parametrize("where", ["outside", "taken", "unmanaged"])
def test_a_bad_static_address_fails_at_start(world: World, where: str) -> None:
    """An address outside the subnet, one in use, or one on a network without a configured
    subnet is refused when the container starts (creating it succeeds on both engines)."""
    eng = world.engine
    net, (pool, address) = world.name("bad"), subnet()
    ipam = () if where == "unmanaged" else (IpamPool(pool),)
    eng.create_network(net, world.labels(), ipam=ipam)
    if where == "taken":
        first = eng.create_container(
            world.spec("first", networks=(NetworkAttachment(net, (), address),))
        )
        eng.start_container(first)
    if where == "outside":
        address = "192.0.2.9"
    cid = eng.create_container(
        world.spec("second", networks=(NetworkAttachment(net, (), address),))
    )
    with pytest.raises(EngineError):
        eng.start_container(cid)


def test_overlapping_subnets_are_refused(world: World) -> None:
    """A second network whose subnet overlaps the first's is refused by both engines."""
    eng = world.engine
    pool, _ = subnet()
    eng.create_network(world.name("a"), world.labels(), ipam=(IpamPool(pool),))
    with pytest.raises(EngineError):
        eng.create_network(world.name("b"), world.labels(), ipam=(IpamPool(pool),))


def test_container_name_owner_reads_the_project_of_an_exact_name(world: World) -> None:
    """The owner check answers the project label of a container by its exact name, ""
    without one, and None for no such name (an id prefix is not a name)."""
    eng = world.engine
    spec = world.spec("owned")
    cid = eng.create_container(spec)
    assert eng.container_name_owner(spec.name) == world.project
    assert eng.container_name_owner(world.name("nobody")) is None
    assert eng.container_name_owner(cid[:12]) is None
