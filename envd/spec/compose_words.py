"""The Compose vocabulary envd shares: one place for each Compose word and how it maps.

The spec's hints, the desired state, the swarm mapping, ``envd import`` and
``envd export`` all speak some Compose; when two of them spelled a word on
their own the copies drifted. This module sits in the spec layer, the lowest
one every user may import, and imports nothing of envd.
"""

from __future__ import annotations

# Compose mounts a secret world-readable unless told otherwise; envd's default is 0o400.
COMPOSE_SECRET_MODE = 0o444

# depends_on conditions: envd's short word -> Compose's.
CONDITION_TO_COMPOSE = {
    "started": "service_started",
    "healthy": "service_healthy",
    "completed": "service_completed_successfully",
}
# Compose's word -> envd's; the spec accepts Compose's spelling too.
CONDITION_FROM_COMPOSE = {compose: envd for envd, compose in CONDITION_TO_COMPOSE.items()}
DEFAULT_COMPOSE_CONDITION = CONDITION_TO_COMPOSE["started"]

# envd's restart policy (Compose's words) -> a swarm / stack file restart condition.
_RESTART_CONDITION = {
    "no": "none",
    "": "none",
    "on-failure": "on-failure",
    "always": "any",
    "unless-stopped": "any",
}
# A stack file's deploy.restart_policy.condition -> envd's restart policy.
RESTART_FROM_CONDITION = {"none": "no", "on-failure": "on-failure", "any": "always"}
# What swarm assumes when a stack file names no condition.
DEFAULT_RESTART_CONDITION = "any"

# Compose spellings users will type out of habit -> the envd field (or why there is none).
COMPOSE_SYNONYMS = {
    "environment": "env",
    "deploy": "(envd has no deploy: use replicas; resources are cpus, mem_limit,"
    " mem_reservation, pids_limit and gpus)",
    "scale": "replicas",
    "restart_policy": "restart",
    "workdir": "working_dir",
    "cmd": "command",
}


def restart_condition(restart: str) -> str:
    """A Compose/envd restart policy as a swarm restart condition."""
    return _RESTART_CONDITION.get(restart, DEFAULT_RESTART_CONDITION)


def build_tag(project: str, service: str) -> str:
    """The tag envd builds a service's image as when the spec names no image."""
    return f"{project}-{service}:envd"
