"""``envd export --format k8s``: the main mappings of a spec to Kubernetes manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envd.interop.k8s_export import k8s_name, to_k8s
from envd.spec.load import LoadedSpec, load

APP = """
[project]
name = "shop_front"

[services.web_api]
image = "acme/api:1"
entrypoint = ["/bin/api"]
command = ["serve", "--port", "80"]
working_dir = "/srv"
user = "1000:1000"
read_only = true
cap_add = ["CAP_NET_ADMIN"]
cap_drop = ["ALL"]
ports = ["8080:80", "8081:80"]
pull = "always"
stop_grace_period = "30s"
labels = { "com.example/team" = "shop" }
tmpfs = ["/cache:size=64mb", "/run:size=1g,noexec", "/tmp"]
volumes = ["data:/data", "./static:/static:ro", "/anon"]

[services.worker]
image = "acme/worker:1"
user = "app"
pull = "never"
replicas = 3

[volumes.data]
"""


def _load(tmp_path: Path, text: str = APP) -> LoadedSpec:
    (tmp_path / "static").mkdir(exist_ok=True)
    (tmp_path / "envd.toml").write_text(text)
    return load(tmp_path, environ={})


def _doc(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_names_become_dns_labels() -> None:
    """Kubernetes names are lowercase DNS-1123 labels of at most 63 characters."""
    assert k8s_name("Web_API") == "web-api"
    assert k8s_name("__") == "x"
    assert len(k8s_name("a" * 80)) == 63


def test_a_service_becomes_a_deployment_with_its_container(tmp_path: Path) -> None:
    """Image, command, working dir, replicas and grace period map onto the Deployment."""
    result = to_k8s(_load(tmp_path))
    dep = _doc(result.documents, "Deployment", "web-api")
    assert dep["spec"]["replicas"] == 1
    assert _doc(result.documents, "Deployment", "worker")["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    c = pod["containers"][0]
    assert (c["image"], c["imagePullPolicy"]) == ("acme/api:1", "Always")
    assert (c["command"], c["args"]) == (["/bin/api"], ["serve", "--port", "80"])
    assert c["workingDir"] == "/srv"
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"com.example/team": "shop"}
    labels = dep["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "shop-front"
    assert labels["app.kubernetes.io/managed-by"] == "envd"
    assert any("services.web_api: named web-api" in n for n in result.notes)


def test_security_context_from_user_read_only_and_capabilities(tmp_path: Path) -> None:
    """Numeric users, read_only and capabilities (without CAP_) become the securityContext."""
    result = to_k8s(_load(tmp_path))
    c = _doc(result.documents, "Deployment", "web-api")["spec"]["template"]["spec"]["containers"][0]
    assert c["securityContext"] == {
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "readOnlyRootFilesystem": True,
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
    }
    worker = _doc(result.documents, "Deployment", "worker")["spec"]["template"]["spec"]
    assert "securityContext" not in worker["containers"][0]
    assert worker["containers"][0]["imagePullPolicy"] == "Never"
    assert any("services.worker.user: 'app'" in n for n in result.notes)


def test_ports_make_one_service_per_distinct_container_port(tmp_path: Path) -> None:
    """Two host ports on one container port give one Service port; host ports are reported."""
    result = to_k8s(_load(tmp_path))
    svc = _doc(result.documents, "Service", "web-api")
    assert svc["spec"]["ports"] == [
        {"name": "tcp-80", "port": 80, "targetPort": 80, "protocol": "TCP"}
    ]
    assert sum("services.web_api.ports: host port" in n for n in result.notes) == 2
    assert not any(
        d["kind"] == "Service" and d["metadata"]["name"] == "worker" for d in result.documents
    )
    assert any(n.startswith("services.worker: no ports") for n in result.notes)


def test_mounts_become_claims_host_paths_and_empty_dirs(tmp_path: Path) -> None:
    """A named volume is a claim, a bind a hostPath under the project, an anonymous volume an emptyDir."""
    loaded = _load(tmp_path)
    pod = _doc(to_k8s(loaded).documents, "Deployment", "web-api")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["vol-0"]["persistentVolumeClaim"] == {"claimName": "data"}
    assert volumes["vol-1"]["hostPath"] == {"path": str(tmp_path / "static")}
    assert volumes["vol-2"]["emptyDir"] == {}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["vol-1"] == {"name": "vol-1", "mountPath": "/static", "readOnly": True}


def test_tmpfs_size_limits_take_the_units_the_deploy_takes(tmp_path: Path) -> None:
    """`size=64mb` and `size=1g` are read as `envd deploy` reads them (64Mi, 1Gi), not dropped."""
    result = to_k8s(_load(tmp_path))
    pod = _doc(result.documents, "Deployment", "web-api")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmpfs-0"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}
    assert volumes["tmpfs-1"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    assert volumes["tmpfs-2"]["emptyDir"] == {"medium": "Memory"}
    notes = [n for n in result.notes if ".tmpfs:" in n]
    assert notes == ["services.web_api.tmpfs: options noexec of /run have no equivalent"]
