"""One build decision for both targets: ``envd.core.build`` as the plan and the swarm deploy use it."""

from __future__ import annotations

from typing import cast

from envd.core.build import build_reason, build_request
from envd.core.desired import DesiredBuild, DesiredProject, DesiredService
from envd.core.observed import Observed
from envd.core.plan import make_plan
from envd.engine.swarm.base import SwarmEngine
from envd.swarm.deploy import ensure_images
from envd.values import labels
from envd.values.types import BuildRequest, ContainerCreate, ObservedImage

REF = "shop-app:envd"


def service(pull: str = "missing", digest: str = "ctx-1") -> DesiredService:
    return DesiredService(
        name="app",
        replicas=1,
        depends_on={},
        image_ref=REF,
        pull=pull,
        build=DesiredBuild("/src/app", "Dockerfile", {"V": "1"}, "prod", digest),
        template=ContainerCreate(name="", image=REF, labels={}),
        restart="no",
    )


def image(digest: str = "ctx-1") -> ObservedImage:
    return ObservedImage(REF, "sha256:abc", {labels.CONTEXT_DIGEST: digest})


def project(svc: DesiredService) -> DesiredProject:
    return DesiredProject("shop", None, "/src", {svc.name: svc}, {}, {})


def test_build_reason_covers_missing_changed_current_and_built_this_run() -> None:
    """An image is built when missing or built from another context, never twice in a run."""
    assert build_reason(service(), None) == "image not built yet"
    assert build_reason(service(), image("ctx-0")) == "build context changed"
    assert build_reason(service(), image("ctx-1")) == ""
    assert build_reason(service(), image("ctx-0"), frozenset({REF})) == ""


def test_pull_always_pulls_instead_of_building() -> None:
    """``pull = "always"`` with ``build`` pulls (docs/spec.md): no build reason, even when missing."""
    assert build_reason(service(pull="always"), None) == ""
    plan = make_plan(project(service(pull="always")), Observed((), (), (), {REF: None}))
    assert [(a.kind, a.reason) for a in plan.image_actions] == [("pull", "pull policy is 'always'")]


def test_build_request_labels_the_image_with_project_service_and_context() -> None:
    """The request carries the spec's build and the labels the next plan compares."""
    req = build_request("shop", service(), REF)
    assert req == BuildRequest(
        "/src/app",
        REF,
        "Dockerfile",
        {"V": "1"},
        "prod",
        {labels.PROJECT: "shop", labels.SERVICE: "app", labels.CONTEXT_DIGEST: "ctx-1"},
    )


class _Node:
    """A swarm node's image store: enough of ``SwarmEngine`` for ``ensure_images``."""

    def __init__(self, *images: ObservedImage) -> None:
        self.images = {i.ref: i for i in images}
        self.builds: list[BuildRequest] = []

    def inspect_image(self, ref: str) -> ObservedImage | None:
        return self.images.get(ref)

    def build_image(self, req: BuildRequest, progress: object = None) -> ObservedImage:
        self.builds.append(req)
        self.images[req.tag] = ObservedImage(req.tag, "sha256:new", dict(req.labels))
        return self.images[req.tag]


def test_swarm_deploy_builds_by_the_same_rule_as_the_plan() -> None:
    """The swarm builds a changed context, and with ``pull = "always"`` it builds nothing (it pulls)."""
    node = _Node(image("ctx-0"))
    ids = ensure_images(cast(SwarmEngine, node), project(service()))
    assert [b.tag for b in node.builds] == [REF] and ids == {REF: "sha256:new"}
    assert node.builds[0] == build_request("shop", service(), REF)
    node = _Node(image("ctx-0"))
    ids = ensure_images(cast(SwarmEngine, node), project(service(pull="always")))
    assert node.builds == [] and ids == {REF: "sha256:abc"}
