"""Label keys envd stamps on every Docker object it creates (contract §4).

Docker is the record of what envd manages: these labels are all a restarted
daemon needs to adopt what exists.
"""

from __future__ import annotations

PREFIX = "dev.envd."
PROJECT = "dev.envd.project"
SERVICE = "dev.envd.service"
REPLICA = "dev.envd.replica"
CONFIG_HASH = "dev.envd.config-hash"
# Short per-field digests, so a plan can say *what* changed, not only that
# something did.
FIELD_HASHES = "dev.envd.field-hashes"
VERSION = "dev.envd.version"
ENVIRONMENT = "dev.envd.environment"
CONTEXT_DIGEST = "dev.envd.context-digest"
ONE_OFF = "dev.envd.one-off"
NETWORK = "dev.envd.network"
VOLUME = "dev.envd.volume"
# On the anonymous volume an engine mounts where a read-only container's
# secrets go, so removing the container always removes it.
SECRETS_VOLUME = "dev.envd.secrets"
# The anonymous volumes a container was handed over from the one it replaced
# (comma-separated names).
ANONYMOUS_VOLUMES = "dev.envd.anonymous-volumes"
# On a container: where its secrets' anonymous volumes are mounted
# (comma-separated targets). Podman drops the labels of anonymous volumes.
SECRET_MOUNTS = "dev.envd.secret-mounts"
# On a container: the volumes with engine-style (64 hex) names it mounts by
# name (comma-separated), so they are not taken for its anonymous ones where
# the engine does not report what was asked (Podman's inspect has no
# HostConfig.Mounts).
HEX_NAMED_VOLUMES = "dev.envd.hex-named-volumes"
# The swarm target's: which target made an object, which secret a versioned
# swarm secret holds, the image id a service was desired with, and the hash
# of what a service's tasks run (on the task's container spec).
TARGET = "dev.envd.target"
SECRET = "dev.envd.secret"
IMAGE_ID = "dev.envd.image-id"
TASK_HASH = "dev.envd.task-hash"
# configs on the swarm target: which config of the spec a versioned swarm config holds
CONFIG = "dev.envd.config"
