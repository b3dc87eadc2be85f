"""What a Docker engine reports back for the container-level host settings
(issue 12) a create left at their defaults. The fake engine reports the same,
and the contract suite holds the two equal.
"""

from __future__ import annotations

from dataclasses import replace

from envd.values.types import HostSettings, LogConfig

# Docker 20.10's defaults (a daemon.json can change the runtime and log driver).
ENGINE_SHM_SIZE = 64 * 1024 * 1024
ENGINE_RUNTIME = "runc"
ENGINE_IPC_MODE = "private"
ENGINE_LOG_DRIVER = "json-file"


def engine_filled(h: HostSettings) -> HostSettings:
    """``h`` as the engine reports it back after a create."""
    return replace(
        h,
        # No swap limit given: the engine allows as much swap as memory.
        memory_swap=h.memory_swap or (2 * h.memory if h.memory else 0),
        pids_limit=max(h.pids_limit, 0),  # -1 (unlimited) reads back as unset
        shm_size=h.shm_size or ENGINE_SHM_SIZE,
        runtime=h.runtime or ENGINE_RUNTIME,
        ipc_mode=h.ipc_mode or ENGINE_IPC_MODE,
        log_config=h.log_config or LogConfig(ENGINE_LOG_DRIVER),
        platform="",
    )
