"""The engine boundary: everything envd asks of Docker goes through ``Engine``."""

from envd.engine.base import Engine
from envd.engine.types import (
    BuildRequest,
    ContainerCreate,
    ContainerState,
    Healthcheck,
    Mount,
    NetworkAttachment,
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedVolume,
    PortBinding,
    SecretFile,
)

__all__ = [
    "BuildRequest",
    "ContainerCreate",
    "ContainerState",
    "Engine",
    "Healthcheck",
    "Mount",
    "NetworkAttachment",
    "ObservedContainer",
    "ObservedImage",
    "ObservedNetwork",
    "ObservedVolume",
    "PortBinding",
    "SecretFile",
]
