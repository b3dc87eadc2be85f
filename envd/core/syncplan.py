"""Level-triggered sync: what to copy into and delete from one container.

The daemon keeps, per container, a manifest of the files it copied there:
the container path and the (size, mtime, mode) the working-tree file had when
it was read for the copy. Bringing a container up to the tree is then a
comparison of two maps, with no call into the container:

- a tree file whose stat differs from the manifest's, or that the manifest
  lacks, is copied (a container envd has no record of gets every file: what
  the image holds at those paths cannot be known without a shell in it);
- a manifest entry under a current sync target that the tree no longer has
  is deleted: envd only ever deletes what it copied itself, never the image's
  own files;
- manifest entries outside every current target (a rule removed or moved)
  are forgotten, not deleted.

The manifest is written after each copy, with the stat taken *before* the
file was read: an edit racing the copy leaves a stat that differs next time,
so the file is copied again rather than missed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class FileStat:
    """What decides whether a tree file changed since envd copied it."""

    size: int
    mtime_ns: int
    mode: int

    def to_json(self) -> list[int]:
        return [self.size, self.mtime_ns, self.mode]


Manifest = Mapping[str, FileStat]  # container path -> stat of the copied tree file


@dataclass(frozen=True)
class SyncPlan:
    copy: tuple[str, ...] = ()  # container paths, sorted
    delete: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.copy and not self.delete


def under(path: str, target: str) -> bool:
    """Whether container ``path`` is ``target`` or inside it."""
    target = target.rstrip("/") or "/"
    return path == target or path.startswith(target if target == "/" else target + "/")


def plan_sync(tree: Manifest, synced: Manifest, targets: Iterable[str]) -> SyncPlan:
    """Copy what differs from the manifest, delete what envd copied and the tree dropped."""
    roots = tuple(targets)
    copy = sorted(dest for dest, stat in tree.items() if synced.get(dest) != stat)
    delete = sorted(
        dest for dest in synced if dest not in tree and any(under(dest, root) for root in roots)
    )
    return SyncPlan(tuple(copy), tuple(delete))


def after_sync(
    synced: Manifest,
    tree: Manifest,
    copied: Iterable[str],
    deleted: Iterable[str],
    targets: Iterable[str],
) -> dict[str, FileStat]:
    """The manifest once ``copied`` and ``deleted`` reached the container.

    Entries outside every target are dropped (forgotten, never deleted).
    """
    roots = tuple(targets)
    out = {d: s for d, s in synced.items() if any(under(d, r) for r in roots)}
    for dest in deleted:
        out.pop(dest, None)
    for dest in copied:
        if dest in tree:
            out[dest] = tree[dest]
    return out


def deleted_under(synced: Manifest, paths: Iterable[str]) -> list[str]:
    """The manifest entries at or under container ``paths`` (a deleted file or directory)."""
    wanted = tuple(paths)
    return sorted(d for d in synced if any(under(d, p) for p in wanted))


# The manifest file (hostile input: a cloned repository may carry a .envd/).


def decode_manifests(data: object) -> dict[str, dict[str, FileStat]]:
    """``{container id: {path: [size, mtime_ns, mode]}}``; anything malformed is dropped.

    A dropped entry only costs a copy: the file is sent again.
    """
    out: dict[str, dict[str, FileStat]] = {}
    if not isinstance(data, dict):
        return out
    for cid, entries in data.items():
        if not isinstance(cid, str) or not isinstance(entries, dict):
            continue
        files: dict[str, FileStat] = {}
        for dest, stat in entries.items():
            if (
                isinstance(dest, str)
                and dest.startswith("/")
                and isinstance(stat, list)
                and len(stat) == 3
                and all(type(x) is int for x in stat)
            ):
                files[dest] = FileStat(stat[0], stat[1], stat[2])
        out[cid] = files
    return out


def encode_manifests(manifests: Mapping[str, Manifest]) -> dict[str, dict[str, list[int]]]:
    return {
        cid: {dest: stat.to_json() for dest, stat in sorted(entries.items())}
        for cid, entries in sorted(manifests.items())
    }
