"""The shared Compose vocabulary and the env pass-through rule (envd.spec.compose_words, envd.core.service_env)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.core.desired import desire
from envd.core.service_env import service_env
from envd.interop.compose_import import import_compose
from envd.interop.k8s_export import to_k8s
from envd.interop.stack_export import to_stack
from envd.spec.compose_words import (
    CONDITION_FROM_COMPOSE,
    CONDITION_TO_COMPOSE,
    RESTART_FROM_CONDITION,
    build_tag,
    restart_condition,
)
from envd.spec.load import LoadedSpec, load
from envd.values.keys import Keys


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> LoadedSpec:
    (tmp_path / "envd.toml").write_text(text)
    return load(tmp_path, environ=environ or {})


def test_conditions_translate_both_ways() -> None:
    """Every envd depends_on condition has one Compose word, and the Compose word maps back."""
    for envd_word, compose_word in CONDITION_TO_COMPOSE.items():
        assert CONDITION_FROM_COMPOSE[compose_word] == envd_word


@pytest.mark.parametrize("restart", ["no", "always", "on-failure"])
def test_restart_condition_reads_back_on_import(restart: str) -> None:
    """A restart policy exported as a swarm condition imports as the same policy."""
    assert RESTART_FROM_CONDITION[restart_condition(restart)] == restart


def test_unless_stopped_is_any_and_unknown_defaults_to_any() -> None:
    """Swarm has no unless-stopped: it restarts on any exit, the swarm default."""
    assert restart_condition("unless-stopped") == "any"
    assert restart_condition("sometimes") == "any"


def test_the_build_tag_is_the_same_in_desire_and_every_export(tmp_path: Path) -> None:
    """A built service's image has one name in the desired state, the stack file and the manifests."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    loaded = _load(tmp_path, '[project]\nname = "shop"\n[services.app]\nbuild = "."\n')
    tag = build_tag("shop", "app")
    assert tag == "shop-app:envd"
    assert desire(loaded, {}, keys=Keys(b"k")).services["app"].image_ref == tag
    assert to_stack(loaded).documents[0]["services"]["app"]["image"] == tag
    deployment = next(d for d in to_k8s(loaded).documents if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == tag


def test_compose_secret_mode_is_written_out_on_import() -> None:
    """A Compose secret without a mode imports with Compose's 0o444, not envd's 0o400."""
    text = "services:\n  a:\n    image: x\n    secrets: [s]\nsecrets:\n  s:\n    file: ./s\n"
    assert "mode = 0o444" in import_compose(text).toml


def test_service_env_passes_through_and_reports_unset() -> None:
    """Env files come first, env wins, None passes a variable through or is reported unset."""
    env, unset = service_env(
        {"A": "file", "B": "file"},
        {"B": "spec", "C": None, "D": None},
        {"C": "from-env"},
    )
    assert env == {"A": "file", "B": "spec", "C": "from-env"}
    assert unset == ["D"]


def test_desire_and_k8s_export_pass_the_same_env(tmp_path: Path) -> None:
    """The containers and the Kubernetes manifests get the same variables from one spec."""
    loaded = _load(
        tmp_path,
        '[services.app]\nimage = "x"\nenv = ["SET=1", "PASSED", "MISSING"]\n',
        {"PASSED": "yes"},
    )
    container_env = dict(desire(loaded, {}, keys=Keys(b"k")).services["app"].template.env)
    result = to_k8s(loaded)
    deployment = next(d for d in result.documents if d["kind"] == "Deployment")
    k8s_env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert container_env == k8s_env == {"SET": "1", "PASSED": "yes"}
    assert any("services.app.env.MISSING" in n for n in result.notes)
