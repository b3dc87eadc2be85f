"""``envd export --format compose``: the main mappings of a spec to a Compose file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envd.interop.compose_export import to_compose
from envd.interop.render import X_ENVD, render_yaml
from envd.spec.load import LoadedSpec, load

APP = """
[project]
name = "shop"

[services.api]
build = { context = "api", dockerfile = "Dockerfile.dev", args = { MODE = "dev" }, target = "run" }
image = "acme/api:dev"
pull = "build"
ports = ["127.0.0.1:8080:80", "[::1]:8443:443", "9000:9000/udp", "5000"]
volumes = ["data:/data", "./src:/src:ro", "/anon", { type = "tmpfs", target = "/run/x" }]
tmpfs = ["/tmp:size=64m"]
networks = { front = { aliases = ["web"] }, back = {} }
depends_on = { db = "healthy", cache = { condition = "started", required = false } }
restart = "on-failure"
stop_signal = "SIGINT"
stop_grace_period = "30s"
env = ["MODE=dev", "TOKEN"]
secrets = ["plain", { source = "token", target = "/etc/token", uid = "1000", gid = "1000", mode = 0o440 }]
healthcheck = { test = ["CMD", "true"], interval = "2s", timeout = "1s", retries = 5 }
watch = [{ path = "src", action = "sync", target = "/src" }]

[services.db]
image = "postgres:16"
profiles = ["data"]

[services.cache]
image = "redis:7"
replicas = 2

[volumes.data]
driver_opts = { type = "none" }

[networks.front]
internal = true

[networks.back]

[secrets.plain]
file = "./plain.txt"

[secrets.token]
command = ["pass", "show", "token"]
"""


def _load(tmp_path: Path) -> LoadedSpec:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile.dev").write_text("FROM scratch\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "plain.txt").write_text("x\n")
    (tmp_path / "envd.toml").write_text(APP)
    return load(tmp_path, environ={}, profiles=frozenset({"data"}))


def _doc(tmp_path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = to_compose(_load(tmp_path)).documents[0]
    return doc


def test_build_keeps_the_image_first_and_writes_only_non_defaults(tmp_path: Path) -> None:
    """A build section has context, and dockerfile/args/target only when set; image stays first."""
    api = _doc(tmp_path)["services"]["api"]
    assert list(api)[:2] == ["image", "build"]
    assert api["build"] == {
        "context": "api",
        "dockerfile": "Dockerfile.dev",
        "args": {"MODE": "dev"},
        "target": "run",
    }
    assert api["pull_policy"] == "build"


def test_ports_use_the_short_syntax_every_compose_reads(tmp_path: Path) -> None:
    """Host IPs (IPv6 in brackets), protocols other than tcp and bare container ports."""
    assert _doc(tmp_path)["services"]["api"]["ports"] == [
        "127.0.0.1:8080:80",
        "[::1]:8443:443",
        "9000:9000/udp",
        "5000",
    ]


def test_volumes_binds_and_tmpfs(tmp_path: Path) -> None:
    """Named, bind (./-prefixed, :ro), anonymous and tmpfs mounts; tmpfs entries as given."""
    api = _doc(tmp_path)["services"]["api"]
    assert api["volumes"] == [
        "data:/data",
        "./src:/src:ro",
        "/anon",
        {"type": "tmpfs", "target": "/run/x"},
    ]
    assert api["tmpfs"] == ["/tmp:size=64m"]


def test_networks_with_aliases_and_top_level_objects(tmp_path: Path) -> None:
    """Aliases force the long network form; top-level networks and volumes keep non-defaults."""
    doc = _doc(tmp_path)
    assert doc["services"]["api"]["networks"] == {"front": {"aliases": ["web"]}, "back": None}
    assert doc["networks"] == {"front": {"internal": True}, "back": {}}
    assert doc["volumes"] == {"data": {"driver_opts": {"type": "none"}}}


def test_depends_on_conditions_and_optional_ones_in_the_extension(tmp_path: Path) -> None:
    """Conditions use Compose's words; required = false goes to x-envd with a note."""
    result = to_compose(_load(tmp_path))
    doc = result.documents[0]
    assert doc["services"]["api"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "cache": {"condition": "service_started"},
    }
    assert doc[X_ENVD]["services"]["api"]["optional_depends_on"] == ["cache"]
    assert any("services.api.depends_on: required = false" in n for n in result.notes)


def test_service_settings(tmp_path: Path) -> None:
    """restart, replicas, signals, grace period, env pass-through, profiles and the healthcheck."""
    doc = _doc(tmp_path)
    api = doc["services"]["api"]
    assert api["restart"] == "on-failure"
    assert "deploy" not in api
    assert doc["services"]["cache"]["deploy"] == {"replicas": 2}
    assert api["stop_signal"] == "SIGINT"
    assert api["stop_grace_period"] == "30s"
    assert api["environment"] == {"MODE": "dev", "TOKEN": None}
    assert api["healthcheck"] == {
        "test": ["CMD", "true"],
        "interval": "2s",
        "timeout": "1s",
        "retries": 5,
        "start_period": "0s",
    }
    assert api["init"] is True  # envd's default, written out: Compose's is false
    assert doc["services"]["db"]["profiles"] == ["data"]
    assert "restart" not in doc["services"]["db"]


def test_secrets_short_when_compose_defaults_long_otherwise(tmp_path: Path) -> None:
    """A secret reference is a bare name only when it has Compose's defaults (mode 0o444)."""
    api = _doc(tmp_path)["services"]["api"]
    assert api["secrets"][0] == {"source": "plain", "uid": "0", "gid": "0", "mode": 0o400}
    assert api["secrets"][1] == {
        "source": "token",
        "target": "/etc/token",
        "uid": "1000",
        "gid": "1000",
        "mode": 0o440,
    }


def test_command_secrets_and_watch_rules_go_to_the_extension(tmp_path: Path) -> None:
    """A command secret becomes a placeholder file plus x-envd; watch rules too, each noted."""
    result = to_compose(_load(tmp_path))
    doc = result.documents[0]
    assert doc["secrets"] == {
        "plain": {"file": "./plain.txt"},
        "token": {"file": "./secrets/token"},
    }
    ext = doc[X_ENVD]
    assert ext["secrets"] == {"token": {"command": ["pass", "show", "token"]}}
    assert ext["services"]["api"]["watch"] == [{"path": "src", "action": "sync", "target": "/src"}]
    assert ext["project"] == "shop"
    notes = "\n".join(result.notes)
    assert "secrets.token: Compose cannot run a command" in notes
    assert "services.api.watch:" in notes


def test_header_says_how_to_run_it(tmp_path: Path) -> None:
    """The rendered file starts with where it came from and the `docker compose -p` line."""
    text = render_yaml(to_compose(_load(tmp_path)))
    assert text.startswith("# Exported by envd from envd.toml (project shop).\n")
    assert "# Run it with: docker compose -p shop up\n" in text
