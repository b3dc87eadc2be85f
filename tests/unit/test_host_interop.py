"""Container-level host settings (issue 12) through `envd import` and the
Compose, stack, Kubernetes and Swarm exports."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import tomllib

from envd.core.desired import desire
from envd.engine.swarm.payloads import service_payload
from envd.interop.compose_export import to_compose
from envd.interop.compose_import import import_compose
from envd.interop.k8s_export import to_k8s
from envd.interop.stack_export import to_stack
from envd.spec.load import LoadedSpec, load
from envd.swarm.desired import desire_swarm
from envd.values.errors import SpecError
from envd.values.keys import Keys

KEYS = Keys(b"unit-test-hash-key")

COMPOSE = """
services:
  web:
    image: busybox
    cpus: 0.5
    mem_limit: 512m
    memswap_limit: 1g
    shm_size: "1.5gb"
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 512
    sysctls: [net.core.somaxconn=1024]
    extra_hosts: ["a=1.2.3.4", "b:::1"]
    dns: 8.8.8.8
    dns_search: example.com
    dns_opt: [ndots:2]
    devices: ["/dev/fuse:/dev/fuse:rwm", {source: /dev/a, target: /dev/b, permissions: r}]
    domainname: ex.com
    platform: linux/amd64
    runtime: runc
    tty: true
    stdin_open: true
    security_opt: ["no-new-privileges:true"]
    pid: host
    ipc: shareable
    gpus: all
    logging: {driver: json-file, options: {max-size: 1m, max-file: 3}}
    healthcheck: {test: "true", start_interval: 2s}
    deploy:
      resources:
        limits: {cpus: '0.5', memory: 512M, pids: 100}
        reservations:
          cpus: '0.1'
          memory: 128M
          devices:
            - {driver: nvidia, count: 1, capabilities: [gpu]}
  db:
    image: busybox
    extra_hosts: {a: 1.2.3.4, b: ["::1", "2.2.2.2"]}
    sysctls: {net.core.somaxconn: 1024}
"""


def _imported() -> tuple[dict[str, Any], list[str]]:
    result = import_compose(COMPOSE)
    return tomllib.loads(result.toml), result.notes


def test_import_keeps_every_host_setting() -> None:
    """Each Compose host setting comes through under its name; deploy.resources fills its twins."""
    doc, notes = _imported()
    web = doc["services"]["web"]
    assert web["cpus"] == 0.5
    assert web["mem_limit"] == "512m"
    assert web["mem_reservation"] == "128M"
    assert web["memswap_limit"] == "1g"
    assert web["pids_limit"] == 100
    assert web["shm_size"] == "1.5gb"
    assert web["ulimits"] == {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512}
    assert web["sysctls"] == {"net.core.somaxconn": "1024"}
    assert web["extra_hosts"] == ["a=1.2.3.4", "b:::1"]
    assert web["dns"] == ["8.8.8.8"] and web["dns_search"] == ["example.com"]
    assert web["dns_opt"] == ["ndots:2"]
    assert web["devices"] == [
        "/dev/fuse:/dev/fuse:rwm",
        {"source": "/dev/a", "target": "/dev/b", "permissions": "r"},
    ]
    for key, value in {
        "domainname": "ex.com",
        "platform": "linux/amd64",
        "runtime": "runc",
        "tty": True,
        "stdin_open": True,
        "pid": "host",
        "ipc": "shareable",
    }.items():
        assert web[key] == value, key
    assert web["security_opt"] == ["no-new-privileges:true"]
    assert web["logging"] == {
        "driver": "json-file",
        "options": {"max-size": "1m", "max-file": "3"},
    }
    assert web["gpus"] == [
        {"count": "all", "capabilities": ["gpu"]},
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]},
    ]
    assert web["healthcheck"]["start_interval"] == "2s"
    assert doc["services"]["db"]["extra_hosts"] == {"a": "1.2.3.4", "b": ["::1", "2.2.2.2"]}
    # The one thing a container cannot have is named, nothing else.
    assert notes == [
        "services.web.deploy.resources.reservations.cpus: a container has no CPU reservation"
        " (Swarm and Kubernetes do); left out"
    ]


def test_imported_file_validates(tmp_path: Path) -> None:
    """What import writes for the host settings is a valid envd.toml."""
    (tmp_path / "envd.toml").write_text(import_compose(COMPOSE).toml)
    loaded = load(tmp_path, environ={})
    web = loaded.spec.services["web"]
    assert web.mem_limit == 512 * 1024**2 and web.pids_limit == 100
    assert web.extra_hosts == ["a:1.2.3.4", "b:::1"]


def test_deploy_resources_alone_become_the_service_fields() -> None:
    """deploy.resources.limits/reservations without top-level twins map to cpus, mem_limit, pids_limit, mem_reservation."""
    text = textwrap.dedent(
        """
        services:
          web:
            image: x
            deploy:
              resources:
                limits: {cpus: "2", memory: 1G, pids: 64}
                reservations: {memory: 256M}
        """
    )
    web = tomllib.loads(import_compose(text).toml)["services"]["web"]
    assert (web["cpus"], web["mem_limit"], web["pids_limit"], web["mem_reservation"]) == (
        2.0,
        "1G",
        64,
        "256M",
    )


def test_deploy_resources_differing_from_the_field_is_refused() -> None:
    """Like Compose, mem_limit and deploy.resources.limits.memory may not differ."""
    text = "services:\n  web:\n    image: x\n    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 2g}}}\n"
    with pytest.raises(SpecError) as info:
        import_compose(text)
    assert "services.web.deploy.resources.limits.memory" in str(info.value.problems[0])
    assert "Compose refuses distinct values" in str(info.value.problems[0])


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("ulimits", "[1, 2]", "services.web.ulimits: expected a mapping"),
        ("logging", "{driver: [x]}", "services.web.logging.driver: expected a string"),
        ("devices", "{a: b}", "services.web.devices: expected a list"),
        ("tty", "maybe", "services.web.tty: expected true or false"),
        ("pids_limit", "lots", "services.web.pids_limit: expected an integer"),
        ("cpus", "many", "services.web.cpus: expected a number of CPUs"),
    ],
)
def test_import_refuses_wrong_kinds_naming_the_field(field: str, value: str, words: str) -> None:
    """A host setting of the wrong kind is a located import error, not a crash or a drop."""
    with pytest.raises(SpecError) as info:
        import_compose(f"services:\n  web:\n    image: x\n    {field}: {value}\n")
    assert words in str(info.value.problems[0])


def test_import_notes_what_cannot_map() -> None:
    """Unknown keys under logging, devices and deploy.resources are notes naming them."""
    text = textwrap.dedent(
        """
        services:
          web:
            image: x
            logging: {driver: local, frequency: 3}
            deploy:
              resources:
                limits: {memory: 1g}
                reservations: {generic_resources: [{discrete_resource_spec: {kind: ssd, value: 1}}]}
        """
    )
    notes = import_compose(text).notes
    assert any(n.startswith("services.web.logging.frequency: not supported") for n in notes)
    assert any(
        n.startswith("services.web.deploy.resources.reservations.generic_resources: not supported")
        for n in notes
    )


# --------------------------------------------------------------------------- exports


def _loaded(tmp_path: Path) -> LoadedSpec:
    (tmp_path / "envd.toml").write_text(import_compose(COMPOSE).toml)
    return load(tmp_path, environ={})


def test_compose_export_writes_every_setting(tmp_path: Path) -> None:
    """export --format compose writes each host setting under Compose's name and form."""
    export = to_compose(_loaded(tmp_path))
    doc = export.documents[0]
    web = doc["services"]["web"]
    assert web["cpus"] == 0.5
    assert web["mem_limit"] == "512m"
    assert web["mem_reservation"] == "128m"
    assert web["memswap_limit"] == "1g"
    assert web["shm_size"] == "1536m"
    assert web["pids_limit"] == 100
    assert web["ulimits"] == {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512}
    assert web["sysctls"] == {"net.core.somaxconn": "1024"}
    assert web["extra_hosts"] == ["a:1.2.3.4", "b:::1"]
    assert web["dns"] == ["8.8.8.8"] and web["dns_opt"] == ["ndots:2"]
    assert web["devices"] == ["/dev/fuse:/dev/fuse:rwm", "/dev/a:/dev/b:r"]
    assert web["security_opt"] == ["no-new-privileges"]
    assert (web["pid"], web["ipc"], web["runtime"], web["platform"]) == (
        "host",
        "shareable",
        "runc",
        "linux/amd64",
    )
    assert web["tty"] is True and web["stdin_open"] is True
    assert web["logging"]["options"] == {"max-size": "1m", "max-file": "3"}
    assert web["deploy"]["resources"]["reservations"]["devices"][0] == {
        "count": "all",
        "capabilities": ["gpu"],
    }
    # Compose 1.29 refuses start_interval in a healthcheck: x-envd keeps it, with a note.
    assert "start_interval" not in web["healthcheck"]
    assert doc["x-envd"]["services"]["web"]["healthcheck_start_interval"] == "2s"
    assert any(n.startswith("services.web.healthcheck.start_interval:") for n in export.notes)


def test_compose_export_then_import_keeps_the_settings(tmp_path: Path) -> None:
    """import(export(spec)) gives the same host settings in the desired state."""
    import yaml

    first = _loaded(tmp_path)
    text = yaml.safe_dump(to_compose(first).documents[0])
    again_dir = tmp_path / "again"
    again_dir.mkdir()
    (again_dir / "envd.toml").write_text(import_compose(text).toml)
    second = load(again_dir, environ={})
    a = desire(first, {}, keys=KEYS).services["web"].template
    b = desire(second, {}, keys=KEYS).services["web"].template
    assert a.host == b.host
    assert (a.tty, a.stdin_open, a.healthcheck) == (b.tty, b.stdin_open, b.healthcheck)


def test_stack_export_maps_resources_and_notes_the_rest(tmp_path: Path) -> None:
    """A stack gets deploy.resources and the fields it has; the rest is a note each."""
    export = to_stack(_loaded(tmp_path))
    web = export.documents[0]["services"]["web"]
    assert web["deploy"]["resources"] == {
        "limits": {"cpus": "0.5", "memory": "512m", "pids": 100},
        "reservations": {"memory": "128m"},
    }
    assert web["deploy"]["placement"] == {
        "constraints": ["node.platform.os == linux", "node.platform.arch == x86_64"]
    }
    assert web["ulimits"]["nproc"] == 512 and web["sysctls"] and web["extra_hosts"]
    assert "mem_limit" not in web and "devices" not in web
    for field in ("memswap_limit", "shm_size", "devices", "gpus", "runtime", "pid", "ipc"):
        assert any(n.startswith(f"services.web.{field}:") for n in export.notes), field


def test_k8s_export_maps_resources_hosts_dns_and_sysctls(tmp_path: Path) -> None:
    """Kubernetes gets resources, hostAliases, dnsConfig, sysctls, hostPID, a memory /dev/shm and GPUs."""
    export = to_k8s(_loaded(tmp_path))
    [deployment] = [
        d for d in export.documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "web"
    ]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"] == {
        "limits": {"cpu": "500m", "memory": "512Mi", "nvidia.com/gpu": 1},
        "requests": {"memory": "128Mi"},
    }
    assert pod["hostAliases"] == [
        {"ip": "1.2.3.4", "hostnames": ["a"]},
        {"ip": "::1", "hostnames": ["b"]},
    ]
    assert pod["dnsConfig"] == {
        "nameservers": ["8.8.8.8"],
        "searches": ["example.com"],
        "options": [{"name": "ndots", "value": "2"}],
    }
    assert pod["securityContext"]["sysctls"] == [{"name": "net.core.somaxconn", "value": "1024"}]
    assert pod["hostPID"] is True
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}
    assert container["tty"] is True and container["stdin"] is True
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    assert "runtimeClassName" not in pod  # runc is the default
    for field in ("memswap_limit", "ulimits", "devices", "logging", "ipc", "gpus"):
        assert any(n.startswith(f"services.web.{field}:") for n in export.notes), field


def test_swarm_deploy_payload_carries_what_a_task_has(tmp_path: Path) -> None:
    """envd deploy puts resources, hosts, DNS, sysctls, ulimits, log driver and platform in the ServiceSpec."""
    loaded = _loaded(tmp_path)
    want = desire_swarm(desire(loaded, {}, keys=KEYS), loaded, {"busybox": None})
    payload = service_payload(want.services["web"].spec, {})
    task = payload["TaskTemplate"]
    spec = task["ContainerSpec"]
    assert spec["Hosts"] == ["1.2.3.4 a", "::1 b"]
    assert spec["DNSConfig"] == {
        "Nameservers": ["8.8.8.8"],
        "Search": ["example.com"],
        "Options": ["ndots:2"],
    }
    assert spec["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert {"Name": "nofile", "Soft": 1024, "Hard": 2048} in spec["Ulimits"]
    assert spec["TTY"] is True and spec["OpenStdin"] is True
    assert task["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 512 * 1024**2, "Pids": 100},
        "Reservations": {"MemoryBytes": 128 * 1024**2},
    }
    assert task["LogDriver"] == {
        "Name": "json-file",
        "Options": {"max-file": "3", "max-size": "1m"},
    }
    assert task["Placement"] == {"Platforms": [{"OS": "linux", "Architecture": "amd64"}]}
    for field in ("memswap_limit", "devices", "gpus", "security_opt", "pid", "ipc"):
        assert any(n.startswith(f"services.web.{field}:") for n in want.notes), field


def test_k8s_export_with_host_settings_validates_strictly(tmp_path: Path) -> None:
    """The pod fields the host settings add pass the Kubernetes API schema, strictly, offline."""
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    for doc in to_k8s(_loaded(tmp_path)).documents:
        kubernetes_validate.validate(doc, version, strict=True)
