"""The pure diff of level-triggered sync: what to copy and delete, and the manifest after."""

from __future__ import annotations

from envd.core.syncplan import (
    FileStat,
    after_sync,
    decode_manifests,
    deleted_under,
    encode_manifests,
    plan_sync,
    under,
)

A = FileStat(3, 1_000, 0o644)
A2 = FileStat(3, 2_000, 0o644)  # same size, newer mtime
B = FileStat(5, 1_000, 0o644)
TARGETS = ["/app/src"]


def test_a_container_without_a_manifest_gets_every_file() -> None:
    """A container envd never synced gets every tree file and loses nothing."""
    tree = {"/app/src/a.py": A, "/app/src/b.py": B}
    plan = plan_sync(tree, {}, TARGETS)
    assert plan.copy == ("/app/src/a.py", "/app/src/b.py")
    assert plan.delete == ()


def test_only_files_whose_stat_changed_are_copied() -> None:
    """An unchanged file is not sent again; a changed mtime, size or mode is."""
    synced = {"/app/src/a.py": A, "/app/src/b.py": B, "/app/src/c.py": A}
    tree = {"/app/src/a.py": A, "/app/src/b.py": B, "/app/src/c.py": A2}
    assert plan_sync(tree, synced, TARGETS).copy == ("/app/src/c.py",)
    moded = {"/app/src/a.py": FileStat(3, 1_000, 0o755)}
    assert plan_sync(moded, {"/app/src/a.py": A}, TARGETS).copy == ("/app/src/a.py",)


def test_in_sync_is_an_empty_plan() -> None:
    """Tree and manifest agreeing means nothing to do."""
    tree = {"/app/src/a.py": A}
    assert plan_sync(tree, dict(tree), TARGETS).empty


def test_only_files_envd_synced_are_deleted() -> None:
    """A manifest entry the tree dropped is deleted; anything else in the container is not named."""
    synced = {"/app/src/gone.py": A, "/app/src/kept.py": B}
    plan = plan_sync({"/app/src/kept.py": B}, synced, TARGETS)
    assert plan.delete == ("/app/src/gone.py",)
    assert plan.copy == ()


def test_entries_outside_every_current_target_are_forgotten_not_deleted() -> None:
    """A rule removed or moved: its old files are left in the container and dropped from the manifest."""
    synced = {"/old/x.py": A, "/app/src/a.py": A}
    tree = {"/app/src/a.py": A}
    assert plan_sync(tree, synced, TARGETS).delete == ()
    assert after_sync(synced, tree, (), (), TARGETS) == {"/app/src/a.py": A}


def test_the_manifest_records_what_was_copied_and_drops_what_was_deleted() -> None:
    """After a sync the manifest holds the copied files' stats, without the deleted ones."""
    synced = {"/app/src/gone.py": A, "/app/src/old.py": A}
    tree = {"/app/src/old.py": A2, "/app/src/new.py": B, "/app/src/vanished.py": B}
    # vanished.py was planned but could not be read: it stays unrecorded, so it is retried.
    out = after_sync(
        synced, tree, ["/app/src/old.py", "/app/src/new.py"], ["/app/src/gone.py"], TARGETS
    )
    assert out == {"/app/src/old.py": A2, "/app/src/new.py": B}


def test_a_file_target_is_its_own_root() -> None:
    """A single-file rule (target /app/requirements.txt) is compared and deleted by its own path."""
    targets = ["/app/requirements.txt"]
    assert plan_sync({}, {"/app/requirements.txt": A}, targets).delete == ("/app/requirements.txt",)
    assert plan_sync({"/app/requirements.txt": A}, {}, targets).copy == ("/app/requirements.txt",)


def test_under_matches_whole_path_components() -> None:
    """/app/src2 is not under /app/src; / holds everything."""
    assert under("/app/src/a", "/app/src")
    assert under("/app/src", "/app/src/")
    assert not under("/app/src2/a", "/app/src")
    assert under("/x", "/")


def test_a_deleted_directory_takes_the_synced_files_under_it() -> None:
    """A delete event for a directory removes the files envd copied beneath it, nothing else."""
    synced = {"/app/src/pkg/a.py": A, "/app/src/pkg/sub/b.py": B, "/app/src/pkgx.py": A}
    assert deleted_under(synced, ["/app/src/pkg"]) == ["/app/src/pkg/a.py", "/app/src/pkg/sub/b.py"]


def test_manifests_round_trip_and_a_hostile_file_is_dropped_entry_by_entry() -> None:
    """What envd writes reads back equal; malformed entries (wrong types, relative paths) are dropped."""
    manifests = {"c1": {"/app/a": A, "/app/b": B}}
    assert decode_manifests(encode_manifests(manifests)) == manifests
    hostile = {
        "c1": {
            "/app/a": [3, 1000, 420],
            "rel/x": [1, 1, 1],
            "/app/b": ["3", 1, 1],
            "/app/c": [1, 2],
        },
        "c2": "not a map",
        "c3": {"/app/d": [1, True, 3]},
    }
    assert decode_manifests(hostile) == {"c1": {"/app/a": FileStat(3, 1000, 420)}, "c3": {}}
    assert decode_manifests(["a list"]) == {}
