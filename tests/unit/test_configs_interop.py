"""Configs through `envd import` and `envd export` (compose, swarm stack, Kubernetes)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml

from envd.interop.compose_export import to_compose
from envd.interop.compose_import import import_compose
from envd.interop.k8s_export import to_k8s
from envd.interop.render import render_yaml
from envd.interop.stack_export import to_stack
from envd.spec.load import LoadedSpec, load

COMPOSE = """\
services:
  web:
    image: nginx
    configs:
      - site
      - source: motd
        target: /etc/motd
        uid: "101"
        gid: "101"
        mode: 0440
      - ext
configs:
  site:
    file: ./site.conf
  motd:
    content: |
      price: $$5
  banner:
    environment: BANNER
  ext:
    external: true
"""


def _imported(tmp_path: Path, text: str = COMPOSE) -> tuple[LoadedSpec, list[str]]:
    (tmp_path / "site.conf").write_text("server {}\n")
    result = import_compose(text)
    (tmp_path / "envd.toml").write_text(result.toml)
    return load(tmp_path, environ={}), result.notes


def test_import_maps_configs_and_notes_what_it_leaves_out(tmp_path: Path) -> None:
    """file/content/environment configs and both service syntaxes are imported; an external one is left out with a note, and so is its use."""
    loaded, notes = _imported(tmp_path)
    spec = loaded.spec
    assert spec.configs["site"].file == "./site.conf"
    assert spec.configs["motd"].content == "price: $5\n"
    assert spec.configs["banner"].environment == "BANNER"
    assert "ext" not in spec.configs
    site, motd = spec.services["web"].configs
    assert (site.path, site.mode) == ("/site", 0o444)
    assert (motd.path, motd.uid, motd.gid, motd.mode) == ("/etc/motd", "101", "101", 0o440)
    text = "\n".join(notes)
    assert "configs.ext: external configs" in text
    assert "services.web.configs[2]: config 'ext' was left out" in text


def test_compose_export_round_trips_configs(tmp_path: Path) -> None:
    """envd → compose → envd keeps every config and reference; inline `$` stays literal for Compose."""
    loaded, _ = _imported(tmp_path)
    exported = to_compose(loaded)
    doc = exported.documents[0]
    assert doc["configs"]["motd"] == {"content": "price: $$5\n"}
    assert doc["services"]["web"]["configs"][0] == "site"
    again = tmp_path / "again"
    again.mkdir()
    reloaded, _ = _imported(again, render_yaml(exported))
    assert reloaded.spec.configs == loaded.spec.configs
    assert reloaded.spec.services["web"].configs == loaded.spec.services["web"].configs


def test_stack_export_creates_non_file_configs_beforehand(tmp_path: Path) -> None:
    """A stack reads config files as they are; inline and environment configs become external ones with the command to create them."""
    loaded, _ = _imported(tmp_path)
    exported = to_stack(loaded)
    doc = exported.documents[0]
    assert doc["configs"]["site"] == {"file": "./site.conf"}
    project = loaded.project
    assert doc["configs"]["banner"] == {"external": True, "name": f"{project}_banner"}
    assert any(f"docker config create {project}_banner" in n for n in exported.notes)
    assert doc["services"]["web"]["configs"][1]["target"] == "/etc/motd"


def test_k8s_export_mounts_a_configmap_per_config(tmp_path: Path) -> None:
    """Each used config is a ConfigMap mounted at its target with its mode; the manifests pass the Kubernetes schema."""
    (tmp_path / "site.conf").write_text("server {}\n")
    (tmp_path / "envd.toml").write_text(
        '[services.web]\nimage = "nginx"\n'
        'configs = ["site", { source = "motd", target = "/etc/motd", mode = 0o440 }]\n\n'
        '[configs.site]\nfile = "site.conf"\n\n[configs.motd]\ncontent = "hi"\n'
    )
    docs = to_k8s(load(tmp_path, environ={})).documents
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    assert maps["config-site"]["data"] == {"content": "server {}\n"}
    assert maps["config-motd"]["data"] == {"content": "hi"}
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "config-1", "mountPath": "/etc/motd", "subPath": "motd", "readOnly": True} in (
        mounts
    )
    volume = next(v for v in pod["volumes"] if v["name"] == "config-1")
    assert volume["configMap"]["items"] == [{"key": "content", "path": "motd", "mode": 0o440}]
    version = kubernetes_validate.latest_version()
    for doc in yaml.safe_load_all(render_yaml(to_k8s(load(tmp_path, environ={})))):
        kubernetes_validate.validate(doc, version, strict=True)


def test_k8s_export_does_not_copy_a_host_file_outside_the_project(tmp_path: Path) -> None:
    """A config file outside the project is not read into the manifests: the ConfigMap is empty, with a note saying how to fill it."""
    project = tmp_path / "p"
    project.mkdir()
    secret_host_file = tmp_path / "host-only.conf"
    secret_host_file.write_text("do-not-export\n")
    (project / "envd.toml").write_text(
        f'[services.web]\nimage = "nginx"\nconfigs = ["c"]\n\n[configs.c]\nfile = "{secret_host_file}"\n'
    )
    exported = to_k8s(load(project, environ={}))
    assert "do-not-export" not in render_yaml(exported)
    (cmap,) = [d for d in exported.documents if d["kind"] == "ConfigMap"]
    assert cmap["data"] == {}
    assert any("configs.c: its file is outside the project" in n for n in exported.notes)
