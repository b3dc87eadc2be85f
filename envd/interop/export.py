"""``envd export``: the spec as a Compose file, a swarm stack file or Kubernetes manifests.

Pure functions of a ``LoadedSpec``: no engine, no clock. Each returns an
``Export``: the documents plus a list of notes, one per thing the target
format cannot express, so nothing is dropped silently (docs/formats.md has
the full mapping).

* ``compose``: what Docker Compose 1.29 and Compose v2 both accept. What
  only newer Compose reads (the project ``name``, ``develop.watch``,
  ``depends_on.required``, secrets from the environment) goes to a top-level
  ``x-envd`` extension, which ``envd import`` reads back: envd → compose →
  envd is lossless.
* ``swarm``: a version 3.9 stack file for ``docker stack deploy``, with the
  same mapping as ``envd deploy --target swarm`` (restart condition, update
  order, overlay networks).
* ``k8s``: a Deployment and a Service per service, a Secret per secret
  (without values unless given), a PersistentVolumeClaim per named volume,
  probes from healthchecks.
"""

from __future__ import annotations

from collections.abc import Mapping

from envd.interop.compose_export import to_compose
from envd.interop.k8s_export import to_k8s
from envd.interop.render import Export
from envd.interop.stack_export import to_stack
from envd.spec.load import LoadedSpec

FORMATS = ("compose", "swarm", "k8s")


def export(
    loaded: LoadedSpec,
    fmt: str,
    secret_values: Mapping[str, bytes] | None = None,
    endpoint_mode: str = "vip",
) -> Export:
    """The spec in format ``fmt``; ``endpoint_mode`` applies to the stack file only."""
    if fmt == "compose":
        return to_compose(loaded)
    if fmt == "swarm":
        return to_stack(loaded, endpoint_mode)
    if fmt == "k8s":
        return to_k8s(loaded, secret_values)
    raise ValueError(f"unknown export format {fmt!r}")
