"""Container-level host settings (issue 12): the spec's forms and refusals, the
desired state, the config hash, the desired cache, the create payload, the
fake engine and consent."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from envd.core.desired import DesiredProject, canonical, config_hash, desire
from envd.engine.docker import host_payloads
from envd.engine.docker.payloads import create_body
from envd.engine.fake import FakeEngine
from envd.engine.host_defaults import ENGINE_SHM_SIZE, engine_filled
from envd.inputs import desired_codec
from envd.inputs.consent import reach
from envd.spec.host_parts import parse_bytes
from envd.spec.load import LoadedSpec, load
from envd.spec.read import preflight
from envd.values.errors import SpecError
from envd.values.keys import Keys
from envd.values.types import (
    ContainerCreate,
    DeviceMapping,
    DeviceRequest,
    Healthcheck,
    HostSettings,
    LogConfig,
    Ulimit,
)

KEYS = Keys(b"unit-test-hash-key")

FULL = """
[services.db]
image = "busybox"
ipc = "shareable"

[services.web]
image = "busybox"
cpus = "1.5"
mem_limit = "1.5gb"
mem_reservation = "128m"
memswap_limit = "2g"
pids_limit = 100
shm_size = "256m"
ulimits = { nofile = { soft = 1024, hard = 2048 }, nproc = 512 }
sysctls = ["net.core.somaxconn=1024"]
extra_hosts = ["a.local=10.0.0.1", "b.local:[fd00::1]", "gw:host-gateway"]
dns = "1.1.1.1"
dns_search = "corp.example"
dns_opt = ["ndots:2"]
devices = ["/dev/fuse", "/dev/a:/dev/b:r", { source = "/dev/c", permissions = "rw" }]
domainname = "example.com"
platform = "linux/amd64"
runtime = "runc"
tty = true
stdin_open = true
security_opt = ["no-new-privileges:true", "label:disable"]
pid = "host"
ipc = "service:db"
logging = { driver = "json-file", options = { max-size = "1m", max-file = 3 } }
gpus = [{ driver = "nvidia", device_ids = ["0", "1"], capabilities = ["gpu", "utility"] }]
healthcheck = { test = "true", start_interval = "2s" }
"""


def _load(tmp_path: Path, text: str) -> LoadedSpec:
    (tmp_path / "envd.toml").write_text(textwrap.dedent(text))
    return load(tmp_path, environ={})


def _desired(tmp_path: Path, text: str) -> DesiredProject:
    return desire(_load(tmp_path, text), {}, keys=KEYS)


def _problem(tmp_path: Path, body: str) -> str:
    with pytest.raises(SpecError) as info:
        _load(tmp_path, f'[services.web]\nimage = "busybox"\n{body}\n')
    assert len(info.value.problems) == 1
    return info.value.problems[0].render()


# --------------------------------------------------------------------------- the spec


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (512, 512),
        ("512", 512),
        ("100k", 100 * 1024),
        ("512m", 512 * 1024**2),
        ("512M", 512 * 1024**2),
        ("1g", 1024**3),
        ("1.5gb", 3 * 1024**3 // 2),
        ("2GiB", 2 * 1024**3),
        ("10b", 10),
    ],
)
def test_sizes_are_read_in_composes_units(text: Any, size: int) -> None:
    """A size is bytes or a number with Compose's binary units (b, k, m, g, optional b/ib)."""
    assert parse_bytes(text) == size


def test_every_field_reaches_the_desired_container(tmp_path: Path) -> None:
    """Each host setting is normalised (units, host=ip, device strings) into the container's HostSettings."""
    web = _desired(tmp_path, FULL).services["web"]
    t = web.template
    project = tmp_path.name.lower()
    assert t.tty and t.stdin_open
    assert t.healthcheck is not None and t.healthcheck.start_interval_s == 2.0
    assert t.host == HostSettings(
        nano_cpus=1_500_000_000,
        memory=3 * 1024**3 // 2,
        memory_reservation=128 * 1024**2,
        memory_swap=2 * 1024**3,
        pids_limit=100,
        shm_size=256 * 1024**2,
        ulimits=(Ulimit("nofile", 1024, 2048), Ulimit("nproc", 512, 512)),
        sysctls=(("net.core.somaxconn", "1024"),),
        extra_hosts=("a.local:10.0.0.1", "b.local:fd00::1", "gw:host-gateway"),
        dns=("1.1.1.1",),
        dns_search=("corp.example",),
        dns_options=("ndots:2",),
        devices=(
            DeviceMapping("/dev/fuse", "/dev/fuse", "rwm"),
            DeviceMapping("/dev/a", "/dev/b", "r"),
            DeviceMapping("/dev/c", "/dev/c", "rw"),
        ),
        device_requests=(
            DeviceRequest(
                driver="nvidia", device_ids=("0", "1"), capabilities=(("gpu", "utility"),)
            ),
        ),
        domainname="example.com",
        platform="linux/amd64",
        runtime="runc",
        security_opt=("no-new-privileges", "label=disable"),
        pid_mode="host",
        ipc_mode=f"container:{project}-db-1",
        log_config=LogConfig("json-file", (("max-file", "3"), ("max-size", "1m"))),
    )
    # Joining db's namespace starts db first, as Compose does.
    assert web.depends_on["db"].condition == "started"


def test_gpus_short_forms_ask_for_gpus(tmp_path: Path) -> None:
    """gpus = "all" and gpus = 2 are device requests for that many GPUs."""
    spec = '[services.a]\nimage = "x"\ngpus = "all"\n[services.b]\nimage = "x"\ngpus = 2\n'
    d = _desired(tmp_path, spec)
    assert d.services["a"].template.host.device_requests == (
        DeviceRequest(count=-1, capabilities=(("gpu",),)),
    )
    assert d.services["b"].template.host.device_requests == (
        DeviceRequest(count=2, capabilities=(("gpu",),)),
    )


def test_extra_hosts_map_form(tmp_path: Path) -> None:
    """extra_hosts as a map (one address or a list) gives one host:ip entry per address."""
    d = _desired(
        tmp_path,
        '[services.a]\nimage = "x"\nextra_hosts = { one = "10.0.0.1", two = ["10.0.0.2", "::1"] }\n',
    )
    assert d.services["a"].template.host.extra_hosts == (
        "one:10.0.0.1",
        "two:10.0.0.2",
        "two:::1",
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('mem_limit = "lots"', "services.web.mem_limit: 'lots' is not a size"),
        ('mem_limit = "1k"', "below the engine's minimum of 6m"),
        ("cpus = -1", "services.web.cpus: cpus must be a positive number"),
        ('cpus = "many"', "services.web.cpus: expected a number of CPUs"),
        ('mem_limit = "1g"\nmem_reservation = "2g"', "mem_reservation is above mem_limit"),
        ('memswap_limit = "1g"', "memswap_limit needs mem_limit"),
        ('mem_limit = "1g"\nmemswap_limit = "512m"', "cannot be below mem_limit"),
        ("pids_limit = -2", "services.web.pids_limit"),
        ("ulimits = { nofiles = 10 }", "unknown ulimit 'nofiles'"),
        ("ulimits = { nofile = { soft = 10, hard = 5 } }", "soft limit 10 is above the hard"),
        ('sysctls = ["net.core.somaxconn"]', "sysctl entries must be 'name=value'"),
        ('extra_hosts = ["a:not-an-ip"]', "'not-an-ip' (for 'a') is not an IP address"),
        ('extra_hosts = ["justahost"]', "must be 'host:ip' or 'host=ip'"),
        ('dns = ["dns.google"]', "dns: 'dns.google' is not an IP address"),
        ('devices = ["dev/fuse"]', "device path 'dev/fuse' must be absolute"),
        ('devices = ["nvidia.com/gpu=all"]', "CDI device names need Docker API 1.45"),
        ('devices = ["/dev/a:/dev/b:rwx"]', "device permissions 'rwx'"),
        ('security_opt = ["seccomp=./profile.json"]', "only seccomp=unconfined is supported"),
        ('security_opt = ["privileged"]', "is not one of no-new-privileges"),
        ('pid = "private"', "'private' must be one of 'host'"),
        ('ipc = "everyone"', "'everyone' must be one of 'host', 'private'"),
        ('pid = "service:nope"', "pid = 'service:nope' names an unknown service"),
        ('pid = "service:web"', "names the service itself"),
        ('platform = "Linux amd64"', "must be 'os[/arch[/variant]]'"),
        ("gpus = 0", "ask for at least one GPU"),
        ('gpus = "some"', "use 'all', a number, or a list"),
        ('gpus = [{ count = 1, device_ids = ["0"] }]', "'count' or 'device_ids', not both"),
        ("logging = { drive = 'x' }", "services.web.logging.drive"),
    ],
)
def test_bad_values_are_one_sentence_naming_service_and_field(
    tmp_path: Path, body: str, words: str
) -> None:
    """A bad host setting is refused with one located message naming the service's field."""
    message = _problem(tmp_path, body)
    assert words in message
    assert "envd.toml:" in message
    assert "services.web" in message


def test_ipc_service_needs_a_shareable_namespace(tmp_path: Path) -> None:
    """ipc = service:NAME is refused unless NAME's ipc is shareable (the engine's rule)."""
    with pytest.raises(SpecError) as info:
        _load(
            tmp_path,
            '[services.db]\nimage = "x"\n[services.web]\nimage = "x"\nipc = "service:db"\n',
        )
    assert "needs ipc = 'shareable' on service 'db'" in info.value.problems[0].render()


def test_invalid_value_exits_2_through_the_cli(tmp_path: Path) -> None:
    """`envd validate` of a bad size prints one located line and exits 2, no traceback."""
    from tests.helpers import run_envd

    (tmp_path / "envd.toml").write_text('[services.web]\nimage = "x"\nshm_size = "big"\n')
    proc = run_envd(["validate"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "envd.toml:3:1: services.web.shm_size: 'big' is not a size" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_start_interval_warns_at_validate_and_plan(tmp_path: Path) -> None:
    """healthcheck.start_interval gives a located warning that it needs API 1.44."""
    (tmp_path / "envd.toml").write_text(
        '[services.web]\nimage = "x"\nhealthcheck = { test = "true", start_interval = "1s" }\n'
    )
    [warning] = preflight(tmp_path, None, None, frozenset(), {})
    assert warning.path == "services.web.healthcheck.start_interval"
    assert warning.line == 3 and "Docker API 1.44" in warning.message


# --------------------------------------------------------------------------- the hash

BASE = '[services.web]\nimage = "busybox"\n'

CHANGES = {
    "cpus": "cpus = 0.5",
    "mem_limit": 'mem_limit = "64m"',
    "mem_reservation": 'mem_reservation = "32m"',
    "memswap_limit": "memswap_limit = -1",
    "pids_limit": "pids_limit = 50",
    "shm_size": 'shm_size = "128m"',
    "ulimits": "ulimits = { nofile = 100 }",
    "sysctls": 'sysctls = { "net.core.somaxconn" = "100" }',
    "extra_hosts": 'extra_hosts = ["a:10.0.0.1"]',
    "dns": 'dns = ["1.1.1.1"]',
    "dns_search": 'dns_search = ["x.example"]',
    "dns_opt": 'dns_opt = ["ndots:1"]',
    "devices": 'devices = ["/dev/fuse"]',
    "gpus": 'gpus = "all"',
    "domainname": 'domainname = "x.example"',
    "platform": 'platform = "linux/arm64"',
    "runtime": 'runtime = "runc"',
    "security_opt": 'security_opt = ["no-new-privileges"]',
    "pid": 'pid = "host"',
    "ipc": 'ipc = "private"',
    "logging": 'logging = { driver = "local" }',
    "tty": "tty = true",
    "stdin_open": "stdin_open = true",
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_each_setting_changes_the_hash_under_its_own_name(tmp_path: Path, field: str) -> None:
    """Setting any host setting changes the config hash, and the field hashes name it alone, by its spec name."""
    base = _desired(tmp_path, BASE).services["web"].template
    changed = _desired(tmp_path, BASE + CHANGES[field] + "\n").services["web"].template
    full_a, fields_a = config_hash(base)
    full_b, fields_b = config_hash(changed)
    assert full_a != full_b
    from envd.core.hashing import changed_fields

    assert changed_fields(fields_a, fields_b) == [field]


def test_start_interval_changes_the_healthcheck_hash(tmp_path: Path) -> None:
    """A start_interval recreates; without one the healthcheck hashes as it did before."""
    hc = '\nhealthcheck = { test = "true" }\n'
    plain = _desired(tmp_path, BASE + hc).services["web"].template
    with_interval = replace(
        plain,
        healthcheck=replace(plain.healthcheck, start_interval_s=1.0),  # type: ignore[type-var]
    )
    assert "start_interval_s" not in canonical(plain)["healthcheck"]
    assert config_hash(plain)[0] != config_hash(with_interval)[0]


def test_unset_settings_leave_the_hash_of_an_older_envd(tmp_path: Path) -> None:
    """A service without host settings hashes exactly the fields it did before they existed."""
    data = canonical(_desired(tmp_path, BASE).services["web"].template)
    assert "host" not in data and "tty" not in data
    assert set(data) == {
        "image", "command", "entrypoint", "working_dir", "user", "hostname", "env", "ports",
        "mounts", "tmpfs", "networks", "healthcheck", "restart", "init", "stop_signal",
        "stop_timeout", "read_only", "cap_add", "cap_drop", "labels", "secrets",
    }  # fmt: skip


# --------------------------------------------------------------------------- the desired cache


def test_desired_cache_keeps_every_setting(tmp_path: Path) -> None:
    """The sealed desired cache round-trips the host settings and start_interval."""
    project = _desired(tmp_path, FULL)
    again = desired_codec.decode_project(json.loads(json.dumps(desired_codec.encode(project))))
    assert again == project
    assert again.services["web"].template.host == project.services["web"].template.host


def test_desired_cache_written_before_the_settings_still_decodes(tmp_path: Path) -> None:
    """A cache entry without 'host' (an older envd) decodes to the defaults instead of failing."""
    project = _desired(tmp_path, BASE)
    data: Any = desired_codec.encode(project)
    assert "host" not in data["services"]["web"]["template"]
    again = desired_codec.decode_project(json.loads(json.dumps(data)))
    assert again.services["web"].template.host == HostSettings()


def test_desired_cache_refuses_a_mistyped_setting(tmp_path: Path) -> None:
    """A planted cache with a mistyped host setting is a miss (rebuilt), not a crash."""
    data: Any = desired_codec.encode(_desired(tmp_path, BASE + "pids_limit = 5\n"))
    data["services"]["web"]["template"]["host"]["pids_limit"] = "5"
    with pytest.raises(desired_codec.BadCache):
        desired_codec.decode_project(data)


# --------------------------------------------------------------------------- the payload


def _spec(tmp_path: Path) -> ContainerCreate:
    return replace(_desired(tmp_path, FULL).services["web"].template, name="p-web-1")


def test_create_payload_maps_every_setting(tmp_path: Path) -> None:
    """HostConfig carries each setting under the API's name; Domainname and Tty sit in Config."""
    body = create_body(_spec(tmp_path))
    host = body["HostConfig"]
    assert host["NanoCpus"] == 1_500_000_000
    assert host["Memory"] == 3 * 1024**3 // 2
    assert host["MemoryReservation"] == 128 * 1024**2
    assert host["MemorySwap"] == 2 * 1024**3
    assert host["PidsLimit"] == 100
    assert host["ShmSize"] == 256 * 1024**2
    assert host["Ulimits"] == [
        {"Name": "nofile", "Soft": 1024, "Hard": 2048},
        {"Name": "nproc", "Soft": 512, "Hard": 512},
    ]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["ExtraHosts"] == ["a.local:10.0.0.1", "b.local:fd00::1", "gw:host-gateway"]
    assert host["Dns"] == ["1.1.1.1"]
    assert host["DnsSearch"] == ["corp.example"]
    assert host["DnsOptions"] == ["ndots:2"]
    assert host["Devices"][1] == {
        "PathOnHost": "/dev/a",
        "PathInContainer": "/dev/b",
        "CgroupPermissions": "r",
    }
    assert host["DeviceRequests"] == [
        {
            "Driver": "nvidia",
            "Count": 0,
            "DeviceIDs": ["0", "1"],
            "Capabilities": [["gpu", "utility"]],
            "Options": None,
        }
    ]
    assert host["Runtime"] == "runc"
    assert host["SecurityOpt"] == ["no-new-privileges", "label=disable"]
    assert host["PidMode"] == "host"
    assert host["IpcMode"].startswith("container:") and host["IpcMode"].endswith("-db-1")
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-file": "3", "max-size": "1m"},
    }
    assert body["Domainname"] == "example.com"
    assert body["Tty"] is True and body["OpenStdin"] is True
    assert "platform" not in json.dumps(body).lower().replace("linux/amd64", "")
    assert host_payloads.create_query(_spec(tmp_path)) == {
        "name": "p-web-1",
        "platform": "linux/amd64",
    }


def test_default_settings_add_nothing_to_the_payload() -> None:
    """A container without host settings sends the same HostConfig keys as before they existed."""
    body = create_body(ContainerCreate(name="c", image="i", labels={}))
    assert set(body["HostConfig"]) == {
        "PortBindings", "Mounts", "Tmpfs", "RestartPolicy", "Init", "ReadonlyRootfs",
        "CapAdd", "CapDrop", "AutoRemove",
    }  # fmt: skip
    assert "Domainname" not in body
    assert host_payloads.create_query(ContainerCreate(name="c", image="i", labels={})) == {
        "name": "c"
    }


def test_start_interval_is_sent_only_to_an_engine_that_reads_it() -> None:
    """A create at the negotiated API 1.44 or newer carries start_interval; at 1.41 (which
    ignores it) the payload leaves it out rather than send what the engine drops."""
    hc = Healthcheck(("CMD", "true"), start_interval_s=2.0)
    spec = ContainerCreate(name="c", image="i", labels={}, healthcheck=hc)
    assert "StartInterval" not in create_body(spec, (1, 41))["Healthcheck"]
    assert create_body(spec, (1, 44))["Healthcheck"]["StartInterval"] == 2_000_000_000
    assert create_body(spec, (1, 55))["Healthcheck"]["StartInterval"] == 2_000_000_000


def test_observed_host_reads_an_inspect() -> None:
    """An inspect's HostConfig reads back as the HostSettings that made it."""
    h = HostSettings(
        nano_cpus=5,
        memory=6 * 1024**2,
        ulimits=(Ulimit("nofile", 1, 2),),
        sysctls=(("a.b", "1"),),
        extra_hosts=("a:1.2.3.4",),
        devices=(DeviceMapping("/dev/fuse", "/dev/fuse", "rwm"),),
        device_requests=(DeviceRequest(count=-1, capabilities=(("gpu",),)),),
        domainname="d.example",
        log_config=LogConfig("json-file", (("max-size", "1m"),)),
    )
    body = create_body(ContainerCreate(name="c", image="i", labels={}, host=h))
    doc = {"HostConfig": body["HostConfig"], "Config": {"Domainname": body["Domainname"]}}
    assert host_payloads.observed_host(doc) == h


# --------------------------------------------------------------------------- the fake engine


def test_fake_engine_reports_what_the_engine_fills_in() -> None:
    """The fake reports the engine's defaults for unset settings (swap doubled, 64m shm, runc)."""
    engine = FakeEngine()
    engine.add_image("busybox")
    asked = HostSettings(memory=64 * 1024**2, pids_limit=-1)
    cid = engine.create_container(ContainerCreate(name="c", image="busybox", labels={}, host=asked))
    seen = engine.container_host(cid)
    assert seen == engine_filled(asked)
    assert seen.memory_swap == 128 * 1024**2
    assert seen.pids_limit == 0
    assert seen.shm_size == ENGINE_SHM_SIZE
    assert seen.runtime == "runc" and seen.ipc_mode == "private"
    assert seen.log_config == LogConfig("json-file")


# --------------------------------------------------------------------------- consent


def test_host_reaching_settings_need_consent(tmp_path: Path) -> None:
    """devices, gpus, host pid, unconfined security options and a non-runc runtime are consent items."""
    loaded = _load(
        tmp_path,
        """
        [services.web]
        image = "x"
        devices = ["/dev/fuse"]
        gpus = 1
        pid = "host"
        security_opt = ["no-new-privileges", "seccomp=unconfined", "apparmor=unconfined", "label=disable"]
        runtime = "nvidia"
        """,
    )
    whats = [i.what[0] for i in reach(loaded, {})]
    # In file order.
    assert whats == [
        "devices=/dev/fuse:/dev/fuse:rwm",
        "gpus=any:1",
        "pid=host",
        "security_opt=apparmor=unconfined",
        "security_opt=label=disable",
        "security_opt=seccomp=unconfined",
        "runtime=nvidia",
    ]


def test_confined_settings_need_no_consent(tmp_path: Path) -> None:
    """Resources, sysctls, no-new-privileges, private ipc and runc reach nothing outside."""
    loaded = _load(
        tmp_path,
        """
        [services.web]
        image = "x"
        cpus = 1
        mem_limit = "1g"
        sysctls = { "net.core.somaxconn" = "1" }
        security_opt = ["no-new-privileges"]
        ipc = "private"
        runtime = "runc"
        """,
    )
    assert reach(loaded, {}) == []


# --------------------------------------------------------------------------- shared namespaces

NAMESPACES = """
[project]
name = "ns"

[services.db]
image = "busybox"
command = ["sleep", "1"]
ipc = "shareable"

[services.web]
image = "busybox"
pid = "service:db"
ipc = "service:db"

[services.other]
image = "busybox"
"""


def test_recreating_a_namespace_owner_recreates_who_joins_it(tmp_path: Path) -> None:
    """A service joining db's pid/ipc namespace is recreated with db (it joined the old
    container by id), and a service that does not join it is left alone."""
    from envd.run.converge import converge
    from envd.values.events import FakeClock

    engine = FakeEngine(auto_healthy=True)
    engine.add_image("busybox")
    converge(engine, _desired(tmp_path, NAMESPACES), clock=FakeClock(), timeout=60)
    changed = _desired(tmp_path, NAMESPACES.replace('["sleep", "1"]', '["sleep", "2"]'))
    plan, _ = converge(engine, changed, clock=FakeClock(), timeout=60)
    assert [(a.kind, a.service, a.reason) for a in plan.changes] == [
        ("recreate", "db", "changed: command"),
        ("recreate", "web", "joins the namespace of db, which is recreated"),
    ]
    again, _ = converge(engine, changed, clock=FakeClock(), timeout=60)
    assert again.changes == ()


# --------------------------------------------------------------------------- the JSON Schema


@pytest.mark.parametrize(
    ("service", "valid"),
    [
        ({"mem_limit": "1.5gb", "shm_size": 1024, "memswap_limit": -1, "cpus": "0.5"}, True),
        ({"ulimits": {"nofile": 1024, "nproc": {"soft": 1, "hard": 2}}}, True),
        ({"sysctls": ["net.core.somaxconn=1"], "extra_hosts": {"a": ["10.0.0.1"]}}, True),
        ({"gpus": "all"}, True),
        ({"gpus": [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}, True),
        ({"devices": ["/dev/fuse", {"source": "/dev/a", "target": "/dev/b"}]}, True),
        ({"logging": {"driver": "local", "options": {"max-size": "1m"}}, "pid": "host"}, True),
        ({"healthcheck": {"test": "true", "start_interval": "1s"}}, True),
        ({"mem_limit": "lots"}, False),
        ({"ulimits": {"nofiles": 1}}, False),
        ({"gpus": [{"cuont": 1}]}, False),
        ({"ipc": "everyone"}, False),
    ],
)
def test_schema_takes_the_compose_forms(service: dict[str, Any], valid: bool) -> None:
    """Editors see the same forms the models take: Compose's sizes, ulimits, gpus, devices…"""
    import jsonschema

    from envd.spec.schema import json_schema

    doc = {"services": {"web": {"image": "x", **service}}}
    errors = list(jsonschema.Draft202012Validator(json_schema()).iter_errors(doc))
    assert (errors == []) is valid, errors


def test_a_deploy_table_points_at_the_resource_fields(tmp_path: Path) -> None:
    """A Compose-minded `deploy` in envd.toml is refused with the fields that replace it."""
    message = _problem(tmp_path, 'deploy = { resources = { limits = { memory = "1g" } } }')
    assert "use replicas; resources are cpus, mem_limit, mem_reservation" in message
