"""Names and networking through desire, plan and apply on the fake engine:
container_name slots and recreate order, network_mode service:NAME following its
owner, static addresses and ipam drift, missing bind sources created at apply."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

from envd.core.desired import DesiredDependency, DesiredProject, canonical, desire
from envd.core.plan import aside_name, make_plan
from envd.engine.fake import FakeEngine
from envd.inputs import desired_codec as codec
from envd.run.bind_dirs import missing_bind_dirs
from envd.run.converge import converge, plan_project
from envd.run.observe import observe
from envd.spec.load import load
from envd.values.events import Event, FakeClock
from envd.values.keys import Keys

KEYS = Keys(b"unit-test-hash-key")


def desired_from(root: Path, spec: str) -> DesiredProject:
    (root / "envd.toml").write_text('[project]\nname = "shop"\n' + textwrap.dedent(spec))
    return desire(load(root, environ={}), {}, keys=KEYS)


def engine(*refs: str) -> FakeEngine:
    eng = FakeEngine()
    for ref in refs:
        eng.add_image(ref)
    return eng


def up(eng: FakeEngine, desired: DesiredProject) -> None:
    converge(eng, desired, clock=FakeClock(), timeout=60)


def names(eng: FakeEngine) -> dict[str, str]:
    """service → container name of each container of the project."""
    return {c.service: c.name for c in eng.list_containers("shop")}


NAMED = """
[services.db]
image = "pg"
container_name = "shop-postgres"
env = { V = "1" }

[services.api]
image = "api"
depends_on = ["db"]
"""


def test_container_name_is_the_containers_name(tmp_path: Path) -> None:
    """A service with container_name runs one container by that name, still found by
    its labels; the others keep <project>-<service>-<replica>."""
    desired = desired_from(tmp_path, NAMED)
    eng = engine("pg", "api")
    up(eng, desired)
    assert names(eng) == {"db": "shop-postgres", "api": "shop-api-1"}
    plan, _ = plan_project(eng, desired)
    assert [(a.kind, a.resource) for a in plan.actions if a.service == "db"] == [
        ("ok", "container shop-postgres")
    ]


def test_container_name_recreate_frees_the_name_first(tmp_path: Path) -> None:
    """A changed service with container_name is recreated: the old container gives the
    name up (renamed aside) before the new one is created under it (never two at once)."""
    eng = engine("pg", "api")
    up(eng, desired_from(tmp_path, NAMED))
    old = next(c.id for c in eng.list_containers("shop") if c.service == "db")
    eng.calls.clear()
    changed = desired_from(tmp_path, NAMED.replace('V = "1"', 'V = "2"'))
    plan, _ = plan_project(eng, changed)
    [action] = [a for a in plan.actions if a.service == "db"]
    assert (action.kind, action.reason) == ("recreate", "changed: env")
    up(eng, changed)
    calls = eng.mutating_calls()
    assert calls.index(("rename_container", old, aside_name("shop-postgres", old))) < calls.index(
        ("create_container", "shop-postgres")
    )
    assert ("remove_container", old) in calls
    assert names(eng)["db"] == "shop-postgres"


def test_renaming_container_name_replaces_the_container(tmp_path: Path) -> None:
    """Setting container_name on a running service replaces shop-db-1 by the named one."""
    eng = engine("pg", "api")
    up(eng, desired_from(tmp_path, NAMED.replace('container_name = "shop-postgres"\n', "")))
    assert names(eng)["db"] == "shop-db-1"
    plan, _ = plan_project(eng, desired_from(tmp_path, NAMED))
    assert [(a.kind, a.resource, a.reason) for a in plan.actions if a.service == "db"] == [
        ("remove", "container shop-db-1", "renamed to shop-postgres (container_name)"),
        ("create", "container shop-postgres", "does not exist"),
    ]
    up(eng, desired_from(tmp_path, NAMED))
    assert sorted(c.name for c in eng.list_containers("shop")) == ["shop-api-1", "shop-postgres"]


def test_a_foreign_container_holding_the_name_is_refused(tmp_path: Path) -> None:
    """A container outside the project holding the container_name is a plan problem naming
    it: up changes nothing (no network, no container) and never removes it."""
    from envd.values.errors import EnvironmentFailed
    from envd.values.types import ContainerCreate

    eng = engine("pg", "api")
    foreign = eng.create_container(
        ContainerCreate(name="shop-postgres", image="pg", labels={"dev.envd.project": "other"})
    )
    plan, _ = plan_project(eng, desired_from(tmp_path, NAMED))
    assert [(p.service, p.message) for p in plan.problems] == [
        (
            "db",
            "container_name 'shop-postgres' is taken by a container of project 'other';"
            " remove or rename that container, or change container_name",
        )
    ]
    eng.calls.clear()
    try:
        up(eng, desired_from(tmp_path, NAMED))
    except EnvironmentFailed as exc:
        assert "container_name 'shop-postgres' is taken" in str(exc)
    else:
        raise AssertionError("up succeeded with the name taken")
    assert eng.mutating_calls() == []
    assert eng.container_spec(foreign).labels == {"dev.envd.project": "other"}


def test_a_converged_named_service_asks_the_engine_nothing_more(tmp_path: Path) -> None:
    """The foreign-name check asks only for names the project's containers lack."""
    desired = desired_from(tmp_path, NAMED)
    eng = engine("pg", "api")
    up(eng, desired)
    eng.fail_next("container_name_owner", AssertionError("asked"))
    plan, _ = plan_project(eng, desired)
    assert plan.problems == ()


JOINED = """
[services.app]
image = "app"
env = { V = "1" }

[services.sidecar]
image = "side"
network_mode = "service:app"
"""


def test_service_network_mode_joins_the_owner_and_depends_on_it(tmp_path: Path) -> None:
    """network_mode service:NAME joins NAME's first container by its id, after it started,
    and attaches no project network."""
    desired = desired_from(tmp_path, JOINED)
    side = desired.services["sidecar"]
    assert side.template.network_mode == "container:shop-app-1"
    assert side.template.networks == ()
    assert side.depends_on["app"] == DesiredDependency("started", restart=True)
    assert set(desired.networks) == {"default"}
    eng = engine("app", "side")
    up(eng, desired)
    by = {c.service: c for c in eng.list_containers("shop")}
    assert by["sidecar"].network_mode == f"container:{by['app'].id}"


def test_recreating_the_owner_recreates_the_joined_service(tmp_path: Path) -> None:
    """When the namespace owner is recreated, the service sharing its network is recreated
    too (it would be left in a dead namespace), and joins the new container."""
    eng = engine("app", "side")
    up(eng, desired_from(tmp_path, JOINED))
    changed = desired_from(tmp_path, JOINED.replace('V = "1"', 'V = "2"'))
    plan, _ = plan_project(eng, changed)
    kinds = {a.service: (a.kind, a.reason) for a in plan.actions if a.service}
    assert kinds["app"] == ("recreate", "changed: env")
    assert kinds["sidecar"] == (
        "recreate",
        "network_mode: service 'app' gets a new container or is started again",
    )
    up(eng, changed)
    by = {c.service: c for c in eng.list_containers("shop")}
    assert by["sidecar"].network_mode == f"container:{by['app'].id}"
    plan, _ = plan_project(eng, changed)
    assert {a.kind for a in plan.actions} == {"ok"}


def test_a_joined_container_of_a_replaced_owner_is_recreated(tmp_path: Path) -> None:
    """A container whose engine-reported namespace is not the owner's current container
    (the owner was replaced by an earlier run) is recreated, and only then."""
    desired = desired_from(tmp_path, JOINED)
    eng = engine("app", "side")
    up(eng, desired)
    observed = observe(eng, "shop", ["app", "side"])
    plan = make_plan(desired, observed)
    assert {a.kind for a in plan.actions} == {"ok"}
    stale = tuple(
        replace(c, network_mode="container:" + "f" * 64) if c.service == "sidecar" else c
        for c in observed.containers
    )
    plan = make_plan(desired, replace(observed, containers=stale))
    kinds = {a.service: (a.kind, a.reason) for a in plan.actions if a.service}
    assert kinds["app"][0] == "ok"
    assert kinds["sidecar"] == (
        "recreate",
        "network_mode: joined a container of service 'app' that was replaced",
    )


def test_removing_the_owner_recreates_the_joined_service(tmp_path: Path) -> None:
    """An owner container gone (created anew by the plan) takes its joined service along."""
    desired = desired_from(tmp_path, JOINED)
    eng = engine("app", "side")
    up(eng, desired)
    app = next(c for c in eng.list_containers("shop") if c.service == "app")
    eng.remove_container(app.id)
    plan, _ = plan_project(eng, desired)
    kinds = {a.service: (a.kind, a.reason) for a in plan.actions if a.service}
    assert kinds["app"] == ("create", "does not exist")
    assert kinds["sidecar"] == (
        "recreate",
        "network_mode: service 'app' gets a new container or is started again",
    )


STATIC = """
[services.db]
image = "pg"
container_name = "shop-db"
networks = { back = { ipv4_address = "10.77.0.10", aliases = ["database"] } }
volumes = ["./data/pg:/var/lib/postgresql/data"]

[networks.back]
ipam = { config = [{ subnet = "10.77.0.0/24", gateway = "10.77.0.1" }] }
"""


def test_static_address_reaches_the_engine_and_the_subnet_the_network(tmp_path: Path) -> None:
    """The network is created with its ipam pool and the container asks for its address."""
    desired = desired_from(tmp_path, STATIC)
    eng = engine("pg")
    up(eng, desired)
    [net] = eng.list_networks("shop")
    assert [(p.subnet, p.gateway) for p in net.ipam] == [("10.77.0.0/24", "10.77.0.1")]
    [c] = eng.list_containers("shop")
    doc = eng.inspect_doc(c.id)
    assert doc["Name"] == "/shop-db"
    assert doc["NetworkSettings"]["Networks"]["shop_back"]["IPAMConfig"] == {
        "IPv4Address": "10.77.0.10"
    }


def test_a_changed_subnet_recreates_the_network_once_it_is_free(tmp_path: Path) -> None:
    """A changed subnet is network drift: refused while containers are attached (as for
    any network change), recreated with the new subnet once they are gone."""
    eng = engine("pg")
    up(eng, desired_from(tmp_path, STATIC))
    changed = desired_from(
        tmp_path, STATIC.replace("10.77.0.", "10.78.0.").replace("10.77.0.0/24", "10.78.0.0/24")
    )
    plan, _ = plan_project(eng, changed)
    assert [p.message for p in plan.problems] == [
        "network shop_back differs from the spec (ipam, labels) and containers are attached"
        " to it; run `envd down`, then `envd up` to recreate it"
    ]
    for c in eng.list_containers("shop"):
        eng.remove_container(c.id)
    plan, _ = plan_project(eng, changed)
    [action] = [a for a in plan.actions if a.kind == "recreate-network"]
    assert action.reason == "changed: ipam, labels"
    up(eng, changed)
    [net] = eng.list_networks("shop")
    assert [p.subnet for p in net.ipam] == ["10.78.0.0/24"]


def test_missing_bind_sources_are_planned_then_created_at_apply(tmp_path: Path) -> None:
    """plan lists a missing bind source; only apply creates it, with an event naming it."""
    desired = desired_from(tmp_path, STATIC)
    source = str(tmp_path / "data" / "pg")
    assert missing_bind_dirs(desired) == [source]
    plan_project(engine("pg"), desired)
    assert not (tmp_path / "data").exists()
    events: list[Event] = []
    converge(engine("pg"), desired, emit=events.append, clock=FakeClock(), timeout=60)
    assert (tmp_path / "data" / "pg").is_dir()
    assert [e.resource for e in events if e.kind == "create-dir"] == [f"directory {source}"]
    assert missing_bind_dirs(desired) == []


def test_a_bind_with_create_host_path_false_is_never_created(tmp_path: Path) -> None:
    """A source that exists with create_host_path = false is not in the list apply creates."""
    (tmp_path / "ro").mkdir()
    desired = desired_from(
        tmp_path,
        '[services.a]\nimage = "pg"\nvolumes = [{ type = "bind", source = "./ro", target = "/r",'
        " create_host_path = false }]\n",
    )
    assert desired.bind_dirs == ()


def test_old_hashes_hold_and_new_fields_are_hashed_only_when_set(tmp_path: Path) -> None:
    """A service without the new fields hashes exactly as before them; each set field counts."""
    plain = desired_from(tmp_path, '[services.a]\nimage = "pg"\n').services["a"].template
    assert set(canonical(plain)) == {
        "image", "command", "entrypoint", "working_dir", "user", "hostname", "env", "ports",
        "mounts", "tmpfs", "networks", "healthcheck", "restart", "init", "stop_signal",
        "stop_timeout", "read_only", "cap_add", "cap_drop", "labels", "secrets",
    }  # fmt: skip
    assert canonical(plain)["networks"] == [{"network": "shop_default", "aliases": ("a",)}]
    exposed = desired_from(tmp_path, '[services.a]\nimage = "pg"\nexpose = ["81", "80-80/udp"]\n')
    assert canonical(exposed.services["a"].template)["exposed"] == ("80/udp", "81/tcp")


def test_the_desired_cache_keeps_the_new_fields(tmp_path: Path) -> None:
    """The cache codec round-trips container_name, expose, network_mode, addresses, ipam
    and bind_dirs; a cache written before them still decodes."""
    desired = desired_from(
        tmp_path, STATIC + JOINED + '[services.e]\nimage = "x"\nexpose = ["80"]\n'
    )
    data = json.loads(json.dumps(codec.encode(desired)))
    assert codec.decode_project(data) == desired
    older = json.loads(
        json.dumps(codec.encode(desired_from(tmp_path, '[services.a]\nimage = "pg"\n')))
    )
    assert "bind_dirs" not in older and "fixed_name" not in json.dumps(older)
    assert codec.decode_project(older).services["a"].fixed_name == ""


def test_run_creates_only_its_services_missing_bind_sources(tmp_path: Path) -> None:
    """`envd run SERVICE` creates that service's missing bind directories, not the others'."""
    from envd.run.oneoff import run_one_off

    desired = desired_from(
        tmp_path,
        '[services.a]\nimage = "pg"\nvolumes = ["./a:/a"]\n'
        '[services.b]\nimage = "pg"\nvolumes = ["./b:/b"]\n',
    )
    eng = engine("pg")
    run_one_off(eng, desired, "a", ["true"], rm=True)
    assert (tmp_path / "a").is_dir() and not (tmp_path / "b").exists()


def test_starting_the_owner_again_recreates_the_joined_service(tmp_path: Path) -> None:
    """An owner that exited and is started again has a new namespace: the service sharing
    it is recreated after it, and joins it."""
    desired = desired_from(tmp_path, JOINED)
    eng = engine("app", "side")
    up(eng, desired)
    app = next(c for c in eng.list_containers("shop") if c.service == "app")
    eng.exit_container(app.id, 1)
    plan, _ = plan_project(eng, desired)
    kinds = {a.service: (a.kind, a.reason) for a in plan.actions if a.service}
    assert kinds["app"][0] == "start"
    assert kinds["sidecar"] == (
        "recreate",
        "network_mode: service 'app' gets a new container or is started again",
    )
    up(eng, desired)
    by = {c.service: c for c in eng.list_containers("shop")}
    assert by["app"].status == "running" and by["sidecar"].network_mode == f"container:{app.id}"
