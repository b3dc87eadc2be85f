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
# The swarm target's: which target made an object, which secret a versioned
# swarm secret holds, the image id a service was desired with, and the hash
# of what a service's tasks run (on the task's container spec).
TARGET = "dev.envd.target"
SECRET = "dev.envd.secret"
IMAGE_ID = "dev.envd.image-id"
TASK_HASH = "dev.envd.task-hash"
