"""Names and networking across formats: Compose import and export, the Docker API
payloads, and what the Kubernetes and stack exports make of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from envd.engine.docker import answers, payloads
from envd.interop.compose_export import to_compose
from envd.interop.compose_import import import_compose
from envd.interop.k8s_export import to_k8s
from envd.interop.render import render_yaml
from envd.interop.stack_export import to_stack
from envd.spec.load import LoadedSpec, load
from envd.values.types import ContainerCreate, IpamPool, NetworkAttachment, PortBinding

COMPOSE = """
name: shop
services:
  db:
    image: postgres
    container_name: shop-postgres
    expose: ["5432", 9000-9001/udp]
    networks:
      back:
        ipv4_address: 10.44.0.10
        aliases: [database]
    volumes:
      - ./pgdata:/var/lib/postgresql/data
      - type: bind
        source: ./conf
        target: /etc/conf
        bind: {create_host_path: false}
  tools:
    image: busybox
    network_mode: service:db
  host:
    image: busybox
    network_mode: host
    ports: ["80:80"]
networks:
  back:
    enable_ipv6: true
    ipam:
      driver: default
      config:
        - subnet: 10.44.0.0/24
          gateway: 10.44.0.1
          ip_range: 10.44.0.128/25
          aux_addresses: {router: 10.44.0.2}
        - subnet: fd00:44::/64
"""


def imported(tmp_path: Path, text: str = COMPOSE) -> tuple[LoadedSpec, list[str]]:
    result = import_compose(text)
    (tmp_path / "conf").mkdir(exist_ok=True)
    (tmp_path / "envd.toml").write_text(result.toml)
    return load(tmp_path, environ={}), result.notes


def test_import_keeps_names_and_networking(tmp_path: Path) -> None:
    """container_name, expose, network_mode, static addresses, ipam and enable_ipv6 arrive in
    the spec instead of being dropped."""
    loaded, _ = imported(tmp_path)
    db = loaded.spec.services["db"]
    assert db.container_name == "shop-postgres"
    assert db.expose == ["5432", "9000-9001/udp"]
    assert db.networks["back"].ipv4_address == "10.44.0.10"
    assert db.networks["back"].aliases == ["database"]
    assert not db.volumes[1].creates_host_path and db.volumes[0].creates_host_path
    assert loaded.spec.services["tools"].network_mode == "service:db"
    back = loaded.spec.networks["back"]
    assert back.enable_ipv6 and back.ipam is not None
    assert [c.subnet for c in back.ipam.config] == ["10.44.0.0/24", "fd00:44::/64"]
    assert back.ipam.config[0].aux_addresses == {"router": "10.44.0.2"}


def test_import_leaves_out_ports_the_engine_discards_with_a_note(tmp_path: Path) -> None:
    """Ports with network_mode host are left out with a note saying the engine discards them."""
    loaded, notes = imported(tmp_path)
    assert loaded.spec.services["host"].ports == []
    assert any(
        n.startswith("services.host.ports: left out: the engine discards them") for n in notes
    )


def test_import_notes_a_network_mode_envd_does_not_support() -> None:
    """An unknown network_mode (a network's name) is reported by its path, not carried."""
    result = import_compose("services:\n  a:\n    image: x\n    network_mode: my-net\n")
    assert "network_mode" not in result.toml
    assert any(n.startswith("services.a.network_mode: not supported") for n in result.notes)


def test_compose_round_trip_keeps_them(tmp_path: Path) -> None:
    """envd → compose → envd gives the same spec with the new fields in it."""
    first, _ = imported(tmp_path)
    compose = render_yaml(to_compose(first))
    doc = yaml.safe_load(compose)
    assert doc["services"]["db"]["container_name"] == "shop-postgres"
    assert doc["services"]["tools"]["network_mode"] == "service:db"
    assert doc["x-envd"]["services"]["db"]["no_create_host_path"] == ["/etc/conf"]
    assert doc["networks"]["back"]["ipam"]["config"][0]["gateway"] == "10.44.0.1"
    again = tmp_path / "again"
    again.mkdir()
    second, _ = imported(again, compose)
    assert second.spec.model_dump() == first.spec.model_dump()


def test_k8s_service_comes_from_expose(tmp_path: Path) -> None:
    """A service with expose and no ports gets a Kubernetes Service for those ports."""
    loaded, _ = imported(tmp_path)
    docs = to_k8s(loaded, {}).documents
    [svc] = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "db"]
    assert [(p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [
        (5432, "TCP"),
        (9000, "UDP"),
        (9001, "UDP"),
    ]
    [host] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "host"]
    assert host["spec"]["template"]["spec"]["hostNetwork"] is True
    notes = to_k8s(loaded, {}).notes
    assert any(n.startswith("services.db.container_name:") for n in notes)
    assert any(n.startswith("services.db.networks.back.ipv4_address:") for n in notes)
    assert any(n.startswith("networks.back: ipam and enable_ipv6") for n in notes)


def test_stack_export_notes_what_a_swarm_cannot_do(tmp_path: Path) -> None:
    """The stack keeps ipam on its overlay network and notes container_name, network_mode
    and static addresses, which a swarm ignores."""
    loaded, _ = imported(tmp_path)
    result = to_stack(loaded)
    doc: dict[str, Any] = result.documents[0]
    assert doc["networks"]["back"]["ipam"]["config"][0]["subnet"] == "10.44.0.0/24"
    for prefix in (
        "services.db.container_name:",
        "services.db.networks.back.ipv4_address:",
        "services.tools.network_mode:",
    ):
        assert any(n.startswith(prefix) for n in result.notes), prefix


def test_create_payload_carries_expose_network_mode_and_addresses() -> None:
    """ExposedPorts holds expose and ports; a network mode replaces the endpoints; a static
    address goes in the endpoint's IPAMConfig."""
    spec = ContainerCreate(
        name="c",
        image="i",
        labels={},
        ports=(PortBinding(80),),
        exposed=("9000/udp",),
        networks=(NetworkAttachment("n", ("a",), "10.1.0.5", "fd00::5"),),
    )
    body = payloads.create_body(spec)
    assert body["ExposedPorts"] == {"80/tcp": {}, "9000/udp": {}}
    assert body["NetworkingConfig"]["EndpointsConfig"]["n"] == {
        "Aliases": ["a"],
        "IPAMConfig": {"IPv4Address": "10.1.0.5", "IPv6Address": "fd00::5"},
    }
    joined = payloads.create_body(
        ContainerCreate(name="c", image="i", labels={}, network_mode="container:x")
    )
    assert joined["HostConfig"]["NetworkMode"] == "container:x"
    assert "NetworkingConfig" not in joined


def test_network_payload_and_answer_carry_ipam() -> None:
    """The network create body holds the pools; the list answer is read back into them."""
    pool = IpamPool("10.1.0.0/16", "10.1.5.0/24", "10.1.0.1", (("h", "10.1.0.2"),))
    body = payloads.network_body("n", {}, "bridge", False, (1, 41), "", (pool,), True)
    assert body["IPAM"] == {
        "Driver": "default",
        "Config": [
            {
                "Subnet": "10.1.0.0/16",
                "IPRange": "10.1.5.0/24",
                "Gateway": "10.1.0.1",
                "AuxiliaryAddresses": {"h": "10.1.0.2"},
            }
        ],
    }
    assert body["EnableIPv6"] is True
    assert "IPAM" not in payloads.network_body("n", {}, "bridge", False, (1, 41))
    [net] = answers.observed_networks([{"Id": "x", "Name": "n", **body}])
    assert net.ipam == (pool,) and net.enable_ipv6 and net.ipam_driver == "default"
