"""Whether a service's image must be built here, and the build it asks for.

One rule for both targets: ``make_plan`` (this engine) and the swarm deploy
ask the same question of the same image, and build with the same request.
"""

from __future__ import annotations

from envd.core.desired import DesiredService
from envd.values import labels
from envd.values.types import BuildRequest, ObservedImage


def build_reason(
    svc: DesiredService, image: ObservedImage | None, built: frozenset[str] = frozenset()
) -> str:
    """Why ``svc``'s image is built first, or "" when it is not.

    ``image`` is what the engine holds under the service's reference;
    ``built``: references already built (or pulled) this run, which are not
    built again even if their label disagrees. With ``pull = "always"`` a
    service with ``build`` pulls instead of building (docs/spec.md).
    """
    if svc.build is None or svc.pull == "always":
        return ""
    if image is None:
        return "image not built yet"
    if (
        svc.build.digest
        and image.labels.get(labels.CONTEXT_DIGEST) != svc.build.digest
        and svc.image_ref not in built
    ):
        return "build context changed"
    return ""


def build_request(project: str, svc: DesiredService, tag: str) -> BuildRequest:
    """The build of ``svc``'s image, labelled with what it was built from."""
    assert svc.build is not None
    return BuildRequest(
        context=svc.build.context,
        tag=tag,
        dockerfile=svc.build.dockerfile,
        args=svc.build.args,
        target=svc.build.target,
        labels={
            labels.PROJECT: project,
            labels.SERVICE: svc.name,
            labels.CONTEXT_DIGEST: svc.build.digest,
        },
    )
