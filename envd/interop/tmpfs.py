"""tmpfs options for the exports, read by the swarm deploy's own parser (``parse_tmpfs``)."""

from __future__ import annotations

from envd.swarm.mapping import parse_tmpfs


def tmpfs_size(entry: str) -> tuple[str, int | None, list[str]]:
    """A ``PATH[:OPTIONS]`` entry's path, its size in bytes and every other option.

    The size is read as ``envd deploy --target swarm`` reads it (``64m`` is
    64 MiB); the other options are what an export has to report.
    """
    path, _, opts = entry.partition(":")
    mount, _ = parse_tmpfs(path, opts)
    rest = [
        opt
        for opt in filter(None, opts.split(","))
        if mount.size_bytes is None or opt.partition("=")[0] != "size"
    ]
    return path, mount.size_bytes, rest
