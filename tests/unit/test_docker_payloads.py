"""The pure Docker API mapping: engine values to request JSON, answers to Observed values.

Small tables in, exact JSON or values out; no engine. The contract suite
checks the same mapping end to end against a real engine.
"""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest

from envd.engine.docker import answers, payloads
from envd.engine.secret_paths import secret_roots, secrets_by_root
from envd.engine.swarm import payloads as swarm_payloads
from envd.values import labels
from envd.values.swarm_types import TASK_HASH_LABEL, PublishedPort
from envd.values.types import (
    ContainerCreate,
    ContainerState,
    Healthcheck,
    Mount,
    NetworkAttachment,
    ObservedMount,
    PortBinding,
    SecretFile,
)

HEX = "a" * 64  # how the engine names an anonymous volume


def _spec(**kw: Any) -> ContainerCreate:
    return ContainerCreate(name="p-web-1", image="img", labels={labels.PROJECT: "p"}, **kw)


# --------------------------------------------------------------------------- requests


def test_create_body_of_a_plain_container() -> None:
    """The defaults map to the engine's: no restart policy name, init on, nothing exposed."""
    body = payloads.create_body(_spec())
    assert body["Image"] == "img" and body["Labels"] == {labels.PROJECT: "p"}
    assert body["ExposedPorts"] == {} and "Cmd" not in body and "Entrypoint" not in body
    host = body["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "", "MaximumRetryCount": 0}
    assert host["Init"] is True and host["CapAdd"] is None and "NetworkMode" not in host


@pytest.mark.parametrize(
    ("ports", "exposed", "bindings"),
    [
        ((PortBinding(80),), {"80/tcp": {}}, {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
        (
            (PortBinding(53, "udp", "127.0.0.1", 5353), PortBinding(53, "udp", "::1", 5353)),
            {"53/udp": {}},
            {
                "53/udp": [
                    {"HostIp": "127.0.0.1", "HostPort": "5353"},
                    {"HostIp": "::1", "HostPort": "5353"},
                ]
            },
        ),
    ],
)
def test_ports_are_exposed_and_bound(
    ports: tuple[PortBinding, ...], exposed: dict[str, Any], bindings: dict[str, Any]
) -> None:
    """Each container port is exposed once and bound at every host address asked."""
    body = payloads.create_body(_spec(ports=ports))
    assert body["ExposedPorts"] == exposed
    assert body["HostConfig"]["PortBindings"] == bindings


@pytest.mark.parametrize(
    ("spec", "key", "want"),
    [
        (_spec(command=("a", "b")), "Cmd", ["a", "b"]),
        (_spec(entrypoint=()), "Entrypoint", []),
        (_spec(healthcheck=Healthcheck(("NONE",))), "Healthcheck", {"Test": ["NONE"]}),
        (
            _spec(healthcheck=Healthcheck(("CMD", "true"), 1.5, 2.0, 3, 0.25)),
            "Healthcheck",
            {
                "Test": ["CMD", "true"],
                "Interval": 1_500_000_000,
                "Timeout": 2_000_000_000,
                "Retries": 3,
                "StartPeriod": 250_000_000,
            },
        ),
        (_spec(stop_signal=""), "StopSignal", None),
        (
            _spec(networks=(NetworkAttachment("p_default", ("web",)), NetworkAttachment("x"))),
            "NetworkingConfig",
            {"EndpointsConfig": {"p_default": {"Aliases": ["web"]}}},
        ),
    ],
)
def test_create_body_fields(spec: ContainerCreate, key: str, want: Any) -> None:
    """Command, entrypoint (empty clears), healthcheck (in ns) and the first network map as the API wants."""
    assert payloads.create_body(spec)[key] == want


def test_mounts_restart_and_handed_over_volumes() -> None:
    """tmpfs mounts carry no source, a restart policy is named, handed-over volumes are labelled."""
    spec = _spec(
        mounts=(Mount("volume", "/data", "p_data"), Mount("tmpfs", "/tmp", "ignored", True)),
        restart="unless-stopped",
        anonymous_volumes=(HEX,),
    )
    body = payloads.create_body(spec)
    assert body["HostConfig"]["Mounts"] == [
        {"Type": "volume", "Target": "/data", "ReadOnly": False, "Source": "p_data"},
        {"Type": "tmpfs", "Target": "/tmp", "ReadOnly": True},
    ]
    assert body["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert body["Labels"][labels.ANONYMOUS_VOLUMES] == HEX


def test_a_read_only_container_with_secrets_gets_a_labelled_volume_per_secret_root() -> None:
    """Secrets of a read-only container go into anonymous volumes labelled for removal."""
    secrets = (
        SecretFile("/run/secrets/a", value=b"s3cret-a"),
        SecretFile("/etc/app/b.pem", value=b"s3cret-b"),
    )
    body = payloads.create_body(_spec(read_only=True, secrets=secrets))
    assert body["HostConfig"]["Mounts"] == [
        {
            "Type": "volume",
            "Target": root,
            "VolumeOptions": {"Labels": {labels.SECRETS_VOLUME: "1", labels.PROJECT: "p"}},
        }
        for root in ("/etc/app", "/run/secrets")
    ]
    assert "s3cret" not in str(body)


@pytest.mark.parametrize(
    ("targets", "roots"),
    [
        (["/run/secrets/a", "/run/secrets/sub/b"], ["/run/secrets"]),
        (["/etc/a/x", "/etc/a/b/y", "/srv/z"], ["/etc/a", "/srv"]),
        (["/run/secrets/a", "/etc/b"], ["/etc", "/run/secrets"]),
    ],
)
def test_secret_roots_are_the_fewest_directories(targets: list[str], roots: list[str]) -> None:
    """Every secret lies under exactly one root, and no root lies under another."""
    secrets = tuple(SecretFile(t, value=b"v") for t in targets)
    assert secret_roots(secrets) == roots
    grouped = secrets_by_root(secrets)
    assert sorted(grouped) == roots
    assert sorted(s.target for g in grouped.values() for s in g) == sorted(targets)


def test_the_secrets_archive_holds_each_file_with_its_owner_and_mode() -> None:
    """The tar written into a container holds every secret, its parents, modes and owners."""
    secrets = (
        SecretFile("/run/secrets/a/token", uid=10, gid=20, mode=0o440, value=b"s3cret"),
        SecretFile("/run/secrets/b", value=b"x"),
    )
    data = payloads.secrets_tar(secrets, "/run/secrets")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"a", "a/token", "b"} and members["a"].isdir()
        token = members["a/token"]
        assert (token.uid, token.gid, token.mode) == (10, 20, 0o440)
        fobj = tar.extractfile(token)
        assert fobj is not None and fobj.read() == b"s3cret"


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("busybox", ("busybox", "latest")),
        ("busybox:1.36", ("busybox", "1.36")),
        ("localhost:5000/app", ("localhost:5000/app", "latest")),
        ("localhost:5000/app:v2", ("localhost:5000/app", "v2")),
        ("app@sha256:abc", ("app", "sha256:abc")),
        ("app:v1@sha256:abc", ("app", "sha256:abc")),
    ],
)
def test_split_ref(ref: str, want: tuple[str, str]) -> None:
    """A reference splits into what the pull API wants: repository and tag or digest."""
    assert payloads.split_ref(ref) == want


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": " No such image: x \\n"}', "No such image: x"),
        (b"plain text\n", "plain text"),
        (b'{"other": 1}', '{"other": 1}'),
        (b"", ""),
    ],
)
def test_engine_message(body: bytes, message: str) -> None:
    """The engine's message is taken from its JSON error, else the body as text."""
    assert payloads.engine_message(body) == message


# --------------------------------------------------------------------------- answers


def test_container_list_entries() -> None:
    """Names lose their slash, exit codes and health come from the status text, unbound ports go."""
    doc = [
        {
            "Id": "c1",
            "Names": ["/p-web-1"],
            "Labels": {labels.PROJECT: "p"},
            "State": "running",
            "Status": "Up 3 seconds (health: starting)",
            "ImageID": "sha256:i",
            "Ports": [
                {"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "0.0.0.0"},
                {"PrivatePort": 443, "Type": "tcp"},
            ],
        },
        {"Id": "c2", "Names": [], "State": "exited", "Status": "Exited (137) 2 minutes ago"},
        {"Id": "c3", "State": "exited", "Status": "Exited (-1) now"},
    ]
    web, gone, odd = answers.observed_containers(doc)
    assert (web.name, web.status, web.health, web.exit_code) == (
        "p-web-1",
        "running",
        "starting",
        None,
    )
    assert web.ports == (PortBinding(80, "tcp", "0.0.0.0", 8080),)
    assert (gone.name, gone.exit_code, gone.health, gone.labels) == ("", 137, None, {})
    assert odd.exit_code == -1
    assert answers.observed_containers(None) == []


def test_podmans_own_states_read_as_dockers() -> None:
    """Podman's "stopped" (exited, cleanup pending) reads as exited with its code, in the list
    and in an inspect; "configured" and "initialized" as created, "stopping" as running."""
    doc = [
        {"Id": "a", "State": "stopped", "Status": "Exited (3) 1 second ago"},
        {"Id": "b", "State": "configured", "Status": "Created"},
        {"Id": "c", "State": "initialized", "Status": "Created"},
        {"Id": "d", "State": "stopping", "Status": "Up 2 seconds"},
    ]
    got = [(c.status, c.exit_code) for c in answers.observed_containers(doc)]
    assert got == [("exited", 3), ("created", None), ("created", None), ("running", None)]
    state = answers.container_state({"Id": "a", "State": {"Status": "stopped", "ExitCode": 3}})
    assert (state.status, state.exit_code) == ("exited", 3)


@pytest.mark.parametrize(
    ("state", "healthcheck", "want"),
    [
        (
            {"Status": "running", "Health": {"Status": "healthy"}},
            ["CMD", "true"],
            ("running", None, "healthy", True),
        ),
        (
            {"Status": "running", "Health": {"Status": "healthy"}},
            ["NONE"],
            ("running", None, None, False),
        ),
        (
            {"Status": "exited", "ExitCode": 3, "Health": {"Status": "unhealthy"}},
            ["CMD", "x"],
            ("exited", 3, None, True),
        ),
        ({"Status": "created", "ExitCode": 0}, None, ("created", None, None, False)),
    ],
)
def test_container_state_from_an_inspect(
    state: dict[str, Any], healthcheck: list[str] | None, want: tuple[Any, ...]
) -> None:
    """Exit codes only once stopped; health only while running and only with a real healthcheck."""
    doc = {"Id": "c1", "State": state, "Config": {"Healthcheck": {"Test": healthcheck}}}
    got: ContainerState = answers.container_state(doc)
    assert (got.status, got.exit_code, got.health, got.has_healthcheck) == want


def test_mounts_mark_anonymous_volumes_and_then_secret_ones() -> None:
    """A 64-hex volume nobody asked for by name (or one handed over) is anonymous; listed ones hold secrets."""
    other = "b" * 64
    doc = {
        "HostConfig": {"Mounts": [{"Source": other}], "Binds": ["named:/n"]},
        "Config": {"Labels": {labels.ANONYMOUS_VOLUMES: other}},
        "Mounts": [
            {"Type": "volume", "Name": HEX, "Destination": "/run/secrets", "RW": True},
            {"Type": "volume", "Name": other, "Destination": "/handed", "RW": True},
            {"Type": "volume", "Name": "named", "Destination": "/n", "RW": False},
            {"Type": "bind", "Source": "/host", "Destination": "/h"},
        ],
    }
    found = answers.mounts(doc)
    assert [(m.target, m.anonymous, m.read_only) for m in found] == [
        ("/run/secrets", True, False),
        ("/handed", True, False),
        ("/n", False, True),
        ("/h", False, False),
    ]
    marked = answers.mark_secret_volumes(found, {"Volumes": [{"Name": HEX}]})
    assert marked[0] == ObservedMount("volume", "/run/secrets", HEX, False, True, True)
    assert [m.secrets for m in marked[1:]] == [False, False, False]


def test_image_networks_and_volumes() -> None:
    """Image labels, digests and declared volumes; network and volume lists keep their labels."""
    image = answers.observed_image(
        "app:1",
        {
            "Id": "sha256:i",
            "RepoDigests": ["app@sha256:d"],
            "Config": {"Volumes": {"/b": {}, "/a": {}}},
        },
    )
    assert (image.ref, image.repo_digests, image.volumes, image.labels) == (
        "app:1",
        ("app@sha256:d",),
        ("/a", "/b"),
        {},
    )
    (net,) = answers.observed_networks([{"Id": "n1", "Name": "p_default", "Labels": None}])
    assert (net.id, net.name, net.labels) == ("n1", "p_default", {})
    (vol,) = answers.observed_volumes({"Volumes": [{"Name": "p_data", "Labels": {"k": "v"}}]})
    assert (vol.name, vol.labels) == ("p_data", {"k": "v"})
    assert answers.observed_volumes({"Volumes": None}) == []
    assert answers.stop_timeout({"Config": {}}) == 10
    assert answers.stop_timeout({"Config": {"StopTimeout": 3}}) == 3


def test_swarm_tasks_and_services() -> None:
    """Task hash, exit code and de-duplicated host ports; replicas only for replicated services."""
    port = {"TargetPort": 80, "PublishedPort": 30001, "Protocol": "tcp", "PublishMode": "host"}
    (task,) = swarm_payloads.observed_tasks(
        [
            {
                "ID": "t1",
                "ServiceID": "s1",
                "Slot": 2,
                "DesiredState": "running",
                "Spec": {"ContainerSpec": {"Labels": {TASK_HASH_LABEL: "h"}}},
                "Status": {
                    "State": "failed",
                    "Err": "boom",
                    "ContainerStatus": {"ExitCode": 1, "ContainerID": "c"},
                    "PortStatus": {"Ports": [port, port]},
                },
            }
        ]
    )
    assert (task.slot, task.task_hash, task.exit_code, task.error) == (2, "h", 1, "boom")
    assert task.ports == (PublishedPort(80, 30001, "tcp", "host"),)
    global_svc, replicated = swarm_payloads.observed_services(
        [
            {"ID": "g", "Spec": {"Name": "g", "Mode": {"Global": {}}}},
            {
                "ID": "r",
                "Version": {"Index": 7},
                "Spec": {"Name": "r", "Mode": {"Replicated": {"Replicas": 2}}},
                "Endpoint": {"Ports": [{"TargetPort": 80, "PublishedPort": 30000}]},
            },
        ]
    )
    assert global_svc.replicas is None and (replicated.replicas, replicated.version) == (2, 7)
    assert replicated.ports == (PublishedPort(80, 30000, "tcp", "ingress"),)
    assert swarm_payloads.container_ports(
        {
            "NetworkSettings": {
                "Ports": {"80/tcp": [{"HostIp": "::", "HostPort": "1"}, {"HostPort": "2"}]}
            }
        }
    ) == ["[::]:1->80/tcp", "0.0.0.0:2->80/tcp"]


def test_exec_body_carries_a_hooks_options_only_when_set() -> None:
    """A hook's user, privilege, cwd and variables reach the exec create request; none: plain exec."""
    from envd.values.types import ExecOptions

    plain = payloads.exec_body(["true"], None)
    assert plain == {"AttachStdout": True, "AttachStderr": True, "Tty": False, "Cmd": ["true"]}
    assert payloads.exec_body(["true"], ExecOptions()) == plain
    full = payloads.exec_body(
        ["sh", "-c", "x"], ExecOptions("root", True, "/app", (("A", "1"), ("B", "")))
    )
    assert (full["User"], full["Privileged"], full["WorkingDir"], full["Env"]) == (
        "root",
        True,
        "/app",
        ["A=1", "B="],
    )
