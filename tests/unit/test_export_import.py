"""Compose import and Compose / stack / Kubernetes export, on a corpus of Compose files.

Each file under tests/fixtures/compose/ is imported, loaded by envd's own
loader, exported back to Compose and compared field by field with the
original (through an independent normaliser below), and exported to Kubernetes manifests validated offline against the
Kubernetes API schema. What runs the docker CLI on the exports is in
tests/integration/test_interop_docker.py.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from envd.interop.compose_export import to_compose
from envd.interop.compose_import import import_compose
from envd.interop.export import export
from envd.interop.k8s_export import to_k8s
from envd.interop.render import render_yaml
from envd.interop.stack_export import to_stack
from envd.interop.toml_writer import dump_toml
from envd.spec.durations import parse_duration
from envd.spec.load import LoadedSpec, load
from envd.values.errors import SpecError
from tests.compose_corpus import (
    CORPUS,
    CORPUS_IDS,
    FIXTURES,
    import_and_load,
    materialize,
    own_home,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own, so binds like ~/.ssh resolve inside the test's directory."""
    return own_home(tmp_path, monkeypatch)


# --------------------------------------------------------------------------- an independent normaliser

HC_DEFAULTS = {"interval": 30.0, "timeout": 30.0, "retries": 3, "start_period": 0.0}
RESTART_CONDITION = {"none": "no", "on-failure": "on-failure", "any": "always"}
CONDITION = {
    "service_started": "started",
    "service_healthy": "healthy",
    "service_completed_successfully": "completed",
}


def _cmd(value: Any) -> Any:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _map(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {i.partition("=")[0]: (i.partition("=")[2] if "=" in i else None) for i in value}
    return {
        str(k): (None if v is None else str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in (value or {}).items()
    }


def _port_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def _ports(items: list[Any]) -> list[tuple[str, int | None, int, str]]:
    out: list[tuple[str, int | None, int, str]] = []
    for item in items or []:
        if isinstance(item, dict):
            pub = str(item.get("published") or "")
            targets = [int(item["target"])]
            pubs: list[int | None] = [int(p) for p in _port_range(pub)] if pub else [None]
            if len(pubs) > 1:
                targets = _port_range(str(item["target"]))
            out += [
                (item.get("host_ip", ""), p, t, item.get("protocol", "tcp"))
                for p, t in zip(pubs, targets, strict=False)
            ]
            continue
        text, _, proto = str(item).partition("/")
        ip = ""
        if text.startswith("["):
            ip, text = text[1:].split("]:", 1)
        parts = text.split(":")
        if len(parts) == 3:
            ip = parts.pop(0)
        targets = _port_range(parts[-1])
        pubs = _port_range(parts[0]) if len(parts) == 2 and parts[0] else [None] * len(targets)
        out += [(ip, p, t, proto or "tcp") for p, t in zip(pubs, targets, strict=False)]
    return out


def _volumes(items: list[Any]) -> tuple[list[tuple[str, str, str, bool]], list[str]]:
    mounts: list[tuple[str, str, str, bool]] = []
    tmpfs: list[str] = []
    for item in items or []:
        if isinstance(item, str):
            parts = item.split(":")
            if len(parts) == 1:
                mounts.append(("volume", "", parts[0], False))
                continue
            src, target = parts[0], parts[1]
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if src.startswith((".", "/", "~")) else "volume"
            mounts.append((kind, src, target, ro))
        elif item.get("type") == "tmpfs":
            size = (item.get("tmpfs") or {}).get("size")
            if size is not None:
                tmpfs.append(f"{item['target']}:size={size}")
            else:
                mounts.append(("tmpfs", "", item["target"], False))
        else:
            creates = (item.get("bind") or {}).get("create_host_path", True)
            mounts.append(
                (item["type"], item.get("source", ""), item["target"], bool(item.get("read_only")))
                + (() if creates else ("no-create",))
            )
    return [
        (m[0], m[1].removeprefix("./") if m[0] == "bind" else m[1], *m[2:]) for m in mounts
    ], tmpfs


def _healthcheck(hc: Any) -> Any:
    if hc is None:
        return None
    test = hc.get("test")
    if hc.get("disable") or test == ["NONE"]:
        return {"disable": True}
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    out = {"test": [str(t) for t in test]}
    for key, default in HC_DEFAULTS.items():
        value = hc.get(key, default)
        out[key] = int(value) if key == "retries" else parse_duration(value)
    return out


def normalize_service(svc: dict[str, Any], ext: dict[str, Any]) -> dict[str, Any]:
    """The supported fields of one Compose service in one canonical shape."""
    build = svc.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if build is not None:
        build = {
            "context": build.get("context", "."),
            "dockerfile": build.get("dockerfile", "Dockerfile"),
            "args": {k: v or "" for k, v in _map(build.get("args")).items()},
            "target": build.get("target", ""),
        }
    mounts, long_tmpfs = _volumes(svc.get("volumes"))
    kept = set(ext.get("no_create_host_path") or [])  # envd's export, for Compose 1.x
    mounts = [(*m, "no-create") if m[2] in kept and len(m) == 4 else m for m in mounts]
    tmpfs = svc.get("tmpfs") or []
    restart = svc.get("restart")
    deploy = svc.get("deploy") or {}
    if restart is None and "restart_policy" in deploy:
        restart = RESTART_CONDITION[deploy["restart_policy"].get("condition", "any")]
    restart = str(restart or "no").split(":")[0]
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        deps = {d: {"condition": "service_started"} for d in deps}
    optional = set(ext.get("optional_depends_on") or [])
    watch = ext.get("watch") or (svc.get("develop") or {}).get("watch") or []
    networks = svc.get("networks") or {}
    if isinstance(networks, list):
        networks = {n: None for n in networks}
    secrets = []
    for s in svc.get("secrets") or []:
        s = {"source": s} if isinstance(s, str) else s
        mode = s.get("mode", 0o444)
        secrets.append(
            (
                s["source"],
                s.get("target", ""),
                str(s.get("uid", "0")),
                str(s.get("gid", "0")),
                int(mode, 8) if isinstance(mode, str) else mode,
            )
        )
    return {
        "image": svc.get("image"),
        "build": build,
        "pull": {"if_not_present": "missing"}.get(
            svc.get("pull_policy", "missing"), svc.get("pull_policy", "missing")
        ),
        "command": _cmd(svc.get("command")),
        "entrypoint": _cmd(svc.get("entrypoint")),
        "working_dir": svc.get("working_dir", ""),
        "user": str(svc.get("user", "")),
        "hostname": svc.get("hostname", ""),
        "environment": _map(svc.get("environment")),
        "env_file": [
            f["path"] if isinstance(f, dict) else f
            for f in (
                [svc["env_file"]]
                if isinstance(svc.get("env_file"), str)
                else svc.get("env_file") or []
            )
        ],
        "ports": _ports(svc.get("ports")),
        "mounts": mounts,
        "tmpfs": ([tmpfs] if isinstance(tmpfs, str) else list(tmpfs)) + long_tmpfs,
        "networks": {
            k: (
                sorted((v or {}).get("aliases") or []),
                (v or {}).get("ipv4_address", ""),
                (v or {}).get("ipv6_address", ""),
            )
            for k, v in networks.items()
        },
        "container_name": svc.get("container_name"),
        "expose": [str(e) for e in svc.get("expose") or []],
        "network_mode": svc.get("network_mode"),
        "depends_on": {
            d: (
                CONDITION[(b or {}).get("condition", "service_started")],
                (b or {}).get("required", True) and d not in optional,
            )
            for d, b in deps.items()
        },
        "healthcheck": _healthcheck(svc.get("healthcheck")),
        "restart": restart,
        "init": bool(svc.get("init", False)),
        "stop_signal": svc.get("stop_signal", "SIGTERM"),
        "stop_grace_period": parse_duration(svc.get("stop_grace_period", "10s")),
        "secrets": secrets,
        "labels": _map(svc.get("labels")),
        "read_only": bool(svc.get("read_only", False)),
        "cap_add": list(svc.get("cap_add") or []),
        "cap_drop": list(svc.get("cap_drop") or []),
        "replicas": int(deploy.get("replicas", svc.get("scale", 1))),
        "profiles": list(svc.get("profiles") or []),
        "watch": [
            {k: v for k, v in r.items() if k in ("path", "action", "target", "ignore")}
            for r in watch
        ],
    }


def normalize(doc: dict[str, Any]) -> dict[str, Any]:
    """The supported parts of a Compose file in one canonical shape."""
    ext = doc.get("x-envd") or {}
    ext_services = ext.get("services") or {}
    secrets = {}
    for k, v in (doc.get("secrets") or {}).items():
        source = (ext.get("secrets") or {}).get(k) or v
        secrets[k] = source.get("file") or source.get("environment") or source.get("env")
    volumes = {}
    for k, v in (doc.get("volumes") or {}).items():
        v = v or {}
        volumes[k] = {
            "external": bool(v.get("external", False)),
            "name": v.get("name"),
            "driver": v.get("driver", "local"),
            "driver_opts": _map(v.get("driver_opts")),
            "labels": _map(v.get("labels")),
        }
    networks = {}
    for k, v in (doc.get("networks") or {}).items():
        v = v or {}
        networks[k] = {
            "external": bool(v.get("external", False)),
            "name": v.get("name"),
            "driver": v.get("driver", "bridge"),
            "internal": bool(v.get("internal")),
            "labels": _map(v.get("labels")),
            "ipam": v.get("ipam"),
            "enable_ipv6": bool(v.get("enable_ipv6")),
        }
    return {
        "services": {
            n: normalize_service(s or {}, ext_services.get(n) or {})
            for n, s in (doc.get("services") or {}).items()
        },
        "volumes": volumes,
        "networks": networks,
        "secrets": secrets,
    }


# --------------------------------------------------------------------------- the corpus


def test_corpus_is_broad() -> None:
    """The corpus holds at least eight realistic Compose files."""
    assert len(CORPUS) >= 8


@pytest.mark.parametrize("path", CORPUS, ids=CORPUS_IDS)
def test_import_loads_with_envd(path: Path, tmp_path: Path, home: Path) -> None:
    """Every imported Compose file is a spec envd's loader accepts."""
    loaded = import_and_load(path.read_text(), tmp_path)
    original = yaml.safe_load(path.read_text())
    assert set(loaded.spec.services) == set(original["services"])


@pytest.mark.parametrize("path", CORPUS, ids=CORPUS_IDS)
def test_round_trip_compose_envd_compose(path: Path, tmp_path: Path, home: Path) -> None:
    """compose → envd → compose keeps every supported field of every service."""
    text = path.read_text()
    loaded = import_and_load(text, tmp_path)
    exported = to_compose(loaded).documents[0]
    want, got = normalize(yaml.safe_load(text)), normalize(exported)
    for name in want["services"]:
        assert got["services"][name] == want["services"][name], name
    for key in ("volumes", "networks", "secrets"):
        assert got[key] == want[key], key


@pytest.mark.parametrize("path", CORPUS, ids=CORPUS_IDS)
def test_round_trip_envd_compose_envd(path: Path, tmp_path: Path, home: Path) -> None:
    """envd → compose → envd gives back the same spec, field for field."""
    first = import_and_load(path.read_text(), tmp_path / "a")
    compose = render_yaml(to_compose(first))
    second = import_and_load(compose, tmp_path / "a")
    assert second.spec.model_dump() == first.spec.model_dump()
    assert second.project == first.project


@pytest.mark.parametrize("path", CORPUS, ids=CORPUS_IDS)
def test_k8s_export_validates_against_the_kubernetes_schema(
    path: Path, tmp_path: Path, home: Path
) -> None:
    """Every Kubernetes manifest exported from the corpus validates strictly, offline."""
    import kubernetes_validate

    text = path.read_text()
    profiles = frozenset(
        p for s in yaml.safe_load(text)["services"].values() for p in (s or {}).get("profiles", [])
    )
    loaded = import_and_load(text, tmp_path, profiles)
    result = to_k8s(loaded, {"db_password": b"pw"})
    assert result.documents
    version = kubernetes_validate.latest_version()
    for doc in result.documents:
        kubernetes_validate.validate(doc, version, strict=True)
    kinds = {d["kind"] for d in result.documents}
    assert "Deployment" in kinds


# --------------------------------------------------------------------------- import details


def test_unsupported_fields_are_reported_by_path(tmp_path: Path, home: Path) -> None:
    """Every field envd cannot express is named by its path in the notes."""
    text = (FIXTURES / "unsupported.yml").read_text()
    notes = "\n".join(import_compose(text).notes)
    for path in (
        "version:",
        "x-global:",
        "services.web.links:",
        "services.web.deploy.placement:",
        "services.web.privileged:",
        "services.web.ports[0].mode:",
        "services.web.volumes[0]:",
        "services.web.x-traefik:",
    ):
        assert path in notes, path


def test_compose_defaults_that_differ_from_envd_are_written_out() -> None:
    """Compose's init = false, 30s healthcheck timings and 0444 secret mode survive the import."""
    text = """
services:
  a:
    image: x
    healthcheck: {test: "true"}
    secrets: [s]
secrets:
  s: {file: ./s}
"""
    toml = import_compose(text).toml
    assert "init = false" in toml
    assert 'interval = "30s"' in toml and 'timeout = "30s"' in toml
    assert "mode = 0o444" in toml


def test_import_is_stable() -> None:
    """Importing the same file twice writes the same TOML, byte for byte."""
    text = (FIXTURES / "full-app.yml").read_text()
    assert import_compose(text).toml == import_compose(text).toml


def test_x_envd_extension_restores_what_compose_cannot_hold(tmp_path: Path, home: Path) -> None:
    """Project name, watch rules, optional dependencies and env secrets survive a Compose round trip; a command secret comes back as its file placeholder."""
    (tmp_path / "src").mkdir()
    (tmp_path / "envd.toml").write_text(
        """
[project]
name = "roundtrip"

[services.api]
image = "x"
depends_on = { db = { condition = "healthy", required = false } }
secrets = ["token", "cmd"]
watch = [{ path = "src", action = "sync", target = "/app/src", ignore = ["*.pyc"] }]

[services.db]
image = "y"
healthcheck = { test = ["CMD", "true"] }

[secrets.token]
env = "TOKEN"

[secrets.cmd]
command = ["pass", "show", "x"]
"""
    )
    first = load(tmp_path, environ={})
    compose = render_yaml(to_compose(first))
    assert "x-envd:" in compose
    imported = import_compose(compose)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "cmd").write_text("x")
    (tmp_path / "envd.toml").write_text(imported.toml)
    second = load(tmp_path, environ={})
    assert second.spec.secrets["cmd"].command is None
    assert second.spec.secrets["cmd"].file == "./secrets/cmd"
    assert any("x-envd.secrets.cmd.command" in n for n in imported.notes)
    second.spec.secrets["cmd"] = first.spec.secrets["cmd"]
    assert second.spec.model_dump() == first.spec.model_dump()


def test_invalid_yaml_is_a_located_spec_error() -> None:
    """A file that is not YAML fails with a SpecError naming line and column."""
    with pytest.raises(SpecError) as info:
        import_compose("services:\n  a: [unclosed\n", source="bad.yml")
    problem = info.value.problems[0]
    assert problem.file == "bad.yml" and problem.line >= 2


def test_not_a_compose_file_is_rejected() -> None:
    """A YAML document without a services mapping is not taken for a Compose file."""
    with pytest.raises(SpecError):
        import_compose("- just\n- a list\n")


def test_toml_writer_quotes_keys_and_writes_octal_modes() -> None:
    """Keys that are not bare are quoted, and secret modes are written in octal."""
    text = dump_toml(
        {
            "services": {
                "a.b": {"labels": {"com.acme/x": "1"}, "secrets": [{"source": "s", "mode": 0o440}]}
            }
        }
    )
    assert '[services."a.b"]' in text
    assert '"com.acme/x" = "1"' in text
    assert "mode = 0o440" in text


# --------------------------------------------------------------------------- export details


def _spec(tmp_path: Path, text: str) -> LoadedSpec:
    (tmp_path / "envd.toml").write_text(text)
    return load(tmp_path, environ={"TOKEN": "t0ps3cret"})


RICH = """
[project]
name = "rich"

[services.api]
image = "acme/api:1"
command = ["serve"]
ports = ["127.0.0.1:8080:80"]
depends_on = { db = "healthy" }
restart = "on-failure"
stop_signal = "SIGINT"
secrets = [{ source = "token", uid = "1000", gid = "1000", mode = 0o440 }]
networks = { default = { aliases = ["backend"] } }
healthcheck = { test = ["CMD-SHELL", "wget -q -O- localhost"], interval = "2s" }
tmpfs = ["/tmp:size=64m,noexec"]

[services.db]
image = "postgres:16"
volumes = ["pgdata:/var/lib/postgresql/data"]

[services.debug]
image = "busybox"
profiles = ["debug"]

[volumes.pgdata]

[secrets.token]
env = "TOKEN"
"""


def test_k8s_export_reports_what_it_cannot_express(tmp_path: Path) -> None:
    """The k8s export names every field Kubernetes cannot express instead of dropping it."""
    result = to_k8s(_spec(tmp_path, RICH))
    notes = "\n".join(result.notes)
    for path in (
        "services.api.restart:",
        "services.api.depends_on:",
        "services.api.init:",
        "services.api.stop_signal:",
        "services.api.networks.default:",
        "services.api.ports:",
        "services.api.secrets.token:",
        "services.api.tmpfs:",
        "services.debug:",
        "secrets.token:",
        "services.db: no ports",
    ):
        assert path in notes, path


def test_k8s_secrets_carry_values_only_when_asked(tmp_path: Path) -> None:
    """A Secret manifest has no data unless the values are passed in."""
    loaded = _spec(tmp_path, RICH)
    bare = [d for d in to_k8s(loaded).documents if d["kind"] == "Secret"]
    assert bare and bare[0]["data"] == {}
    full = [d for d in to_k8s(loaded, {"token": b"t0ps3cret"}).documents if d["kind"] == "Secret"]
    assert full[0]["data"] == {"value": "dDBwczNjcmV0"}
    assert "t0ps3cret" not in render_yaml(to_k8s(loaded))


def test_k8s_probes_come_from_healthchecks(tmp_path: Path) -> None:
    """A healthcheck becomes readiness and liveness probes with the same timings."""
    deployment = next(
        d
        for d in to_k8s(_spec(tmp_path, RICH)).documents
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "api"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    probe = container["readinessProbe"]
    assert probe["exec"]["command"] == ["/bin/sh", "-c", "wget -q -O- localhost"]
    assert probe["periodSeconds"] == 2 and probe["failureThreshold"] == 3
    assert container["livenessProbe"] == probe


def test_k8s_named_volumes_become_claims(tmp_path: Path) -> None:
    """A named volume becomes a PersistentVolumeClaim the Deployment mounts."""
    docs = to_k8s(_spec(tmp_path, RICH)).documents
    assert any(
        d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == "pgdata" for d in docs
    )
    db = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "db")
    volumes = db["spec"]["template"]["spec"]["volumes"]
    assert volumes[0]["persistentVolumeClaim"] == {"claimName": "pgdata"}


def test_stack_export_maps_like_the_swarm_deploy(tmp_path: Path) -> None:
    """The stack file uses the deploy's restart condition, update order and an overlay network."""
    result = to_stack(_spec(tmp_path, RICH))
    doc = result.documents[0]
    assert doc["version"] == "3.9"
    api, db = doc["services"]["api"], doc["services"]["db"]
    assert api["deploy"]["restart_policy"] == {"condition": "on-failure"}
    assert api["deploy"]["update_config"]["order"] == "start-first"
    assert db["deploy"]["update_config"]["order"] == "stop-first"
    assert doc["networks"]["default"] == {"driver": "overlay", "attachable": True}
    assert "debug" not in doc["services"]
    assert doc["secrets"]["token"] == {"external": True, "name": "rich_token"}
    notes = "\n".join(result.notes)
    assert "services.api.ports: host_ip 127.0.0.1" in notes
    assert "services.api.depends_on:" in notes


def test_export_dispatches_by_format(tmp_path: Path) -> None:
    """export() accepts the three formats and nothing else."""
    loaded = _spec(tmp_path, RICH)
    assert [export(loaded, f).format for f in ("compose", "swarm", "k8s")] == [
        "compose",
        "swarm",
        "k8s",
    ]
    with pytest.raises(ValueError):
        export(loaded, "helm")


def test_compose_export_never_holds_secret_values(tmp_path: Path) -> None:
    """A secret from the environment is exported by name, never by value."""
    text = render_yaml(to_compose(_spec(tmp_path, RICH)))
    assert "t0ps3cret" not in text
    assert "TOKEN" in text


# --------------------------------------------------------------------------- the commands


def test_import_and_export_commands(tmp_path: Path, home: Path) -> None:
    """`envd import` writes envd.toml and notes on stderr; `envd export` prints YAML; neither needs an engine."""
    from tests.helpers import run_envd

    compose = tmp_path / "docker-compose.yml"
    compose.write_text((FIXTURES / "unsupported.yml").read_text())
    materialize(tmp_path, yaml.safe_load(compose.read_text()))
    proc = run_envd(["import", "docker-compose.yml", "-o", "envd.toml"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "note: services.web.links:" in proc.stderr
    assert (tmp_path / "envd.toml").read_text().startswith("# Imported by envd")
    again = run_envd(["import", "docker-compose.yml", "-o", "envd.toml"], cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    out = run_envd(["export", "--format", "k8s"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout)]
    assert kinds == ["ConfigMap", "Deployment", "Service", "Deployment"]
    bad = run_envd(["export", "--format", "compose", "--secret-values"], cwd=tmp_path)
    assert bad.returncode == 2


def test_the_old_external_name_form_imports_for_volumes_and_networks() -> None:
    """Compose's old `external: {name: x}` makes an external volume or network named x;
    a plain `external: true` keeps the key as the name."""
    import tomllib

    text = (
        "services:\n  web:\n    image: nginx\n"
        "volumes:\n  data: {external: {name: shared_data}}\n  plain: {external: true}\n"
        "networks:\n  front: {external: {name: edge}}\n"
    )
    doc = tomllib.loads(import_compose(text).toml)
    assert doc["volumes"]["data"] == {"external": True, "name": "shared_data"}
    assert doc["volumes"]["plain"] == {"external": True}
    assert doc["networks"]["front"] == {"external": True, "name": "edge"}
