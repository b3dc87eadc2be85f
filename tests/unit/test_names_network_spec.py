"""Names and networking in the spec: container_name, expose, network_mode, static
addresses with ipam, and missing bind sources, each refused in one located sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.spec.load import LoadedSpec, load
from envd.values.errors import SpecError

BASE = '[project]\nname = "shop"\n'


def write(root: Path, body: str) -> Path:
    (root / "envd.toml").write_text(BASE + body)
    return root


def load_ok(root: Path, body: str) -> LoadedSpec:
    return load(write(root, body), environ={})


def refused(root: Path, body: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load(write(root, body), environ={})
    return [p.render() for p in caught.value.problems]


def test_the_new_fields_load(tmp_path: Path) -> None:
    """container_name, expose, network_mode and static addresses with ipam are accepted."""
    loaded = load_ok(
        tmp_path,
        """
[services.db]
image = "postgres"
container_name = "shop-postgres"
expose = ["5432", 8080, "9000-9002/udp"]
networks = { back = { ipv4_address = "10.31.0.10" } }

[services.shell]
image = "busybox"
network_mode = "service:db"

[networks.back]
ipam = { driver = "default", config = [{ subnet = "10.31.0.0/24", gateway = "10.31.0.1" }] }
""",
    )
    db = loaded.spec.services["db"]
    assert db.container_name == "shop-postgres"
    assert db.expose == ["5432", "8080", "9000-9002/udp"]
    assert db.networks["back"].ipv4_address == "10.31.0.10"
    assert loaded.spec.services["shell"].network_mode == "service:db"
    ipam = loaded.spec.networks["back"].ipam
    assert ipam is not None and ipam.config[0].subnet == "10.31.0.0/24"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            '[services.a]\nimage = "x"\ncontainer_name = "web"\nreplicas = 2\n',
            "container_name 'web' names one container; it cannot be used with replicas = 2",
        ),
        (
            '[services.a]\nimage = "x"\ncontainer_name = "-bad"\n',
            "services.a.container_name",
        ),
        (
            '[services.a]\nimage = "x"\nnetwork_mode = "host"\nnetworks = ["default"]\n',
            "network_mode 'host' and networks exclude each other",
        ),
        (
            '[services.a]\nimage = "x"\nnetwork_mode = "host"\nports = ["80:80"]\n',
            "ports have no effect with network_mode 'host'",
        ),
        (
            '[services.a]\nimage = "x"\nnetwork_mode = "none"\nports = ["80"]\n',
            "ports have no effect with network_mode 'none'",
        ),
        (
            '[services.a]\nimage = "x"\n[services.b]\nimage = "x"\nnetwork_mode = "service:a"\n'
            'expose = ["80"]\nhostname = "b"\n',
            "network_mode 'service:a' shares another container's network: expose, hostname belong",
        ),
        (
            '[services.a]\nimage = "x"\nnetwork_mode = "overlay-net"\n',
            "network_mode 'overlay-net' is not supported",
        ),
        (
            '[services.a]\nimage = "x"\nexpose = ["80-70"]\n',
            "invalid expose entry '80-70'",
        ),
        (
            '[services.a]\nimage = "x"\nexpose = ["http"]\n',
            "invalid expose entry 'http'",
        ),
        (
            '[services.a]\nimage = "x"\nnetworks = { n = { ipv4_address = "fd00::5" } }\n'
            "[networks.n]\n",
            "ipv4_address 'fd00::5' is an IPv6 address",
        ),
        (
            '[networks.n]\nipam = { config = [{ subnet = "10.0.0.300/24" }] }\n'
            '[services.a]\nimage = "x"\n',
            "subnet '10.0.0.300/24' is not a valid IP subnet",
        ),
    ],
    ids=[
        "container-name-replicas",
        "container-name-pattern",
        "mode-and-networks",
        "host-ports",
        "none-ports",
        "service-mode-expose-hostname",
        "unknown-mode",
        "expose-backwards-range",
        "expose-name",
        "ipv4-is-v6",
        "bad-subnet",
    ],
)
def test_model_refusals_name_the_field(tmp_path: Path, body: str, fragment: str) -> None:
    """Each combination Compose or the engine refuses is one problem naming the field."""
    problems = refused(tmp_path, body)
    assert len(problems) == 1, problems
    assert fragment in problems[0]
    assert "envd.toml:" in problems[0]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            '[services.a]\nimage = "x"\ncontainer_name = "web"\n'
            '[services.b]\nimage = "x"\ncontainer_name = "web"\n',
            "services 'a' and 'b' both name a container 'web'",
        ),
        (
            '[services.a]\nimage = "x"\n[services.b]\nimage = "x"\ncontainer_name = "shop-a-1"\n',
            "services 'a' and 'b' both name a container 'shop-a-1'",
        ),
        (
            '[services.a]\nimage = "x"\nnetwork_mode = "service:dbb"\n[services.db]\nimage = "x"\n',
            "network_mode joins unknown service 'dbb' (did you mean 'db'?)",
        ),
        (
            '[services.a]\nimage = "x"\nnetwork_mode = "service:a"\n',
            "network_mode joins the service itself",
        ),
        (
            '[services.a]\nimage = "x"\nnetwork_mode = "service:b"\n'
            '[services.b]\nimage = "x"\ndepends_on = ["a"]\n',
            "dependency cycle",
        ),
        (
            '[services.a]\nimage = "x"\nnetwork_mode = "service:b"\n'
            '[services.b]\nimage = "x"\nnetwork_mode = "host"\n',
            "which uses network_mode 'host'",
        ),
        (
            '[services.a]\nimage = "x"\nnetwork_mode = "service:b"\n'
            '[services.b]\nimage = "x"\nreplicas = 0\n',
            "network_mode joins 'b', which has replicas = 0",
        ),
        (
            '[services.a]\nimage = "x"\nnetworks = { n = { ipv4_address = "10.9.0.5" } }\n'
            "[networks.n]\n",
            "ipv4_address 10.9.0.5 on network 'n' needs an ipam subnet holding it",
        ),
        (
            '[services.a]\nimage = "x"\nnetworks = { n = { ipv4_address = "10.9.0.5" } }\n'
            '[networks.n]\nipam = { config = [{ subnet = "10.8.0.0/16" }] }\n',
            "ipv4_address 10.9.0.5 on network 'n' needs an ipam subnet holding it",
        ),
        (
            '[services.a]\nimage = "x"\nnetworks = { n = { ipv6_address = "fd00::5" } }\n'
            '[networks.n]\nipam = { config = [{ subnet = "fd00::/64" }] }\n',
            "IPv6 subnet fd00::/64 needs enable_ipv6 = true",
        ),
        (
            '[services.a]\nimage = "x"\n[networks.n]\n'
            'ipam = { config = [{ subnet = "10.8.0.0/16", gateway = "10.9.0.1" }] }\n',
            "gateway 10.9.0.1 lies outside subnet 10.8.0.0/16",
        ),
        (
            '[services.a]\nimage = "x"\n[networks.n]\n'
            'ipam = { config = [{ subnet = "10.8.0.0/16", ip_range = "10.9.1.0/24" }] }\n',
            "ip_range 10.9.1.0/24 lies outside subnet 10.8.0.0/16",
        ),
        (
            '[services.a]\nimage = "x"\nvolumes = [{ type = "bind", source = "./data",'
            ' target = "/d", create_host_path = false }]\n',
            "binds './data', which does not exist (create_host_path = false",
        ),
    ],
    ids=[
        "duplicate-container-name",
        "container-name-of-another-replica",
        "mode-unknown-service",
        "mode-self",
        "mode-cycle",
        "mode-joins-host",
        "mode-joins-no-replica",
        "address-without-ipam",
        "address-outside-subnet",
        "ipv6-without-enable",
        "gateway-outside",
        "range-outside",
        "bind-not-created",
    ],
)
def test_cross_checks_name_the_service(tmp_path: Path, body: str, fragment: str) -> None:
    """Checks across services and networks fail with one sentence naming what clashes."""
    problems = refused(tmp_path, body)
    assert any(fragment in p for p in problems), problems


def test_a_missing_short_syntax_bind_source_is_accepted_and_not_created(tmp_path: Path) -> None:
    """A missing bind source no longer fails the spec (Compose creates it), and loading
    creates nothing: validate and plan stay read-only."""
    loaded = load_ok(
        tmp_path,
        '[services.a]\nimage = "x"\nvolumes = ["./data/sub:/d", "~/envd-w4n-nope:/h"]\n',
    )
    assert loaded.spec.services["a"].volumes[0].creates_host_path
    assert not (tmp_path / "data").exists()


def test_a_long_syntax_bind_creates_by_default(tmp_path: Path) -> None:
    """The long syntax without `bind` creates a missing source, as Compose v2 does."""
    loaded = load_ok(
        tmp_path,
        '[services.a]\nimage = "x"\nvolumes = [{ type = "bind", source = "./d", target = "/d" }]\n',
    )
    assert loaded.spec.services["a"].volumes[0].creates_host_path


def test_bind_options_need_a_bind(tmp_path: Path) -> None:
    """`bind` options on a volume mount are refused, naming the type."""
    problems = refused(
        tmp_path,
        '[services.a]\nimage = "x"\nvolumes = [{ source = "v", target = "/d",'
        " create_host_path = false }]\n[volumes.v]\n",
    )
    assert "create_host_path applies to bind mounts only" in problems[0]


def test_host_network_mode_needs_consent(tmp_path: Path) -> None:
    """network_mode = "host" is an item `envd allow` must approve (it reaches the host)."""
    from envd.inputs.consent import reach

    loaded = load_ok(tmp_path, '[services.a]\nimage = "x"\nnetwork_mode = "host"\n')
    items = reach(loaded, environ={})
    assert [(i.kind, i.what[0]) for i in items] == [("host-mode", "network_mode=host")]


def test_a_missing_bind_outside_the_project_still_needs_consent(tmp_path: Path) -> None:
    """A bind source outside the project that does not exist yet is still a consent item."""
    from envd.inputs.consent import reach

    outside = tmp_path / "outside" / "data"
    project = tmp_path / "p"
    project.mkdir()
    loaded = load_ok(project, f'[services.a]\nimage = "x"\nvolumes = ["{outside}:/d"]\n')
    assert [(i.kind, i.what[0]) for i in reach(loaded, environ={})] == [("bind", str(outside))]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            '[services.a]\nimage = "x"\nreplicas = 2\nnetworks = { n = { ipv4_address = "10.8.0.5" } }\n',
            "ipv4_address 10.8.0.5 names one container's address; it cannot be used with replicas = 2",
        ),
        (
            '[services.a]\nimage = "x"\nnetworks = { n = { ipv4_address = "10.8.0.5" } }\n'
            '[services.b]\nimage = "x"\nnetworks = { n = { ipv4_address = "10.8.0.5" } }\n',
            "services 'a' and 'b' both take 10.8.0.5 on network 'n'",
        ),
        (
            '[services.a]\nimage = "x"\nnetworks = { n = { ipv4_address = "10.8.0.1" } }\n',
            "ipv4_address 10.8.0.1 is the gateway of network 'n'",
        ),
        (
            '[services.a]\nimage = "x"\nnetworks = { n = { ipv4_address = "10.8.0.2" } }\n',
            "ipv4_address 10.8.0.2 is aux address 'router' of network 'n'",
        ),
    ],
    ids=["replicas", "two-services", "gateway", "aux"],
)
def test_a_static_address_belongs_to_one_container(
    tmp_path: Path, body: str, fragment: str
) -> None:
    """A static address used by several containers, or reserved on its network, is refused."""
    net = (
        '[networks.n]\nipam = { config = [{ subnet = "10.8.0.0/16", gateway = "10.8.0.1",'
        ' aux_addresses = { router = "10.8.0.2" } }] }\n'
    )
    problems = refused(tmp_path, body + net)
    assert any(fragment in p for p in problems), problems
