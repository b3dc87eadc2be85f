"""Where an engine puts a container's secret and config files: shared by every ``Engine``.

The real engine and the fake must agree on it (the contract suite checks the
anonymous volumes a read-only container with secrets gets), so it is one
public rule here rather than a private helper one of them borrows.
"""

from __future__ import annotations

import posixpath

from envd.values.types import ContainerCreate, SecretFile

# Where secrets go by default; with a read-only root filesystem an anonymous
# volume is mounted there so the archive API may write into it.
SECRETS_DIR = "/run/secrets"


def is_under(path: str, root: str) -> bool:
    """Whether the normalised ``path`` is ``root`` or lies below it."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def secret_roots(secrets: tuple[SecretFile, ...]) -> list[str]:
    """The fewest directories holding every secret (``/run/secrets`` for its own).

    With a read-only root filesystem an anonymous volume is mounted at each.
    """
    dirs = set()
    for s in secrets:
        target = posixpath.normpath(s.target)
        dirs.add(SECRETS_DIR if is_under(target, SECRETS_DIR) else posixpath.dirname(target))
    roots: list[str] = []
    for d in sorted(dirs, key=len):
        if not any(is_under(d, r) for r in roots):
            roots.append(d)
    return sorted(roots)


def secrets_by_root(secrets: tuple[SecretFile, ...]) -> dict[str, tuple[SecretFile, ...]]:
    """Each secret grouped under the root of ``secret_roots`` that holds it."""
    roots = secret_roots(secrets)
    out: dict[str, list[SecretFile]] = {}
    for s in secrets:
        target = posixpath.normpath(s.target)
        root = next(r for r in roots if is_under(target, r))
        out.setdefault(root, []).append(s)
    return {root: tuple(group) for root, group in sorted(out.items())}


def config_refusal(spec: ContainerCreate) -> str | None:
    """Why ``spec``'s configs cannot be written into its container, or None.

    Configs go into the root filesystem through the archive API. Docker refuses
    that write on a read-only root or into a read-only mount; Podman performs it
    (into the volume or host directory behind a mount), so every engine refuses
    it itself, before creating anything.
    """
    if not spec.configs:
        return None
    if spec.read_only:
        targets = ", ".join(sorted(c.target for c in spec.configs))
        return (
            f"container {spec.name}: configs ({targets}) cannot be written into a"
            " read-only root filesystem (read_only = true)"
        )
    for cf in spec.configs:
        target = posixpath.normpath(cf.target)
        for m in spec.mounts:
            if m.read_only and is_under(target, posixpath.normpath(m.target)):
                return (
                    f"container {spec.name}: config {target} cannot be written into"
                    f" read-only mount {m.target}"
                )
    return None
