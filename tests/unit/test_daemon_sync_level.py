"""Level-triggered sync on the fake engine: a container is brought up to the working tree
when envd starts it and after every pass, from the manifest of what envd copied there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from envd.daemon.sync import Syncer
from envd.daemon.synctree import protected_files
from envd.spec.models import WatchRule
from tests.helpers import DaemonWorld

SPEC = """\
[project]
name = "unitd"

[secrets.token]
file = "src/token.txt"

[services.web]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
watch = [
  { path = "src", action = "sync", target = "/app/src", ignore = ["*.log"] },
  { path = "deps.txt", action = "sync+exec", target = "/app/deps.txt", exec = { command = ["sh", "-c", "echo installed"], user = "root", environment = { A = "1" } } },
]
"""

Published = list[tuple[str, str, str, str, dict[str, object]]]


class Level:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        (self.root / "src").mkdir()
        (self.root / "src" / "token.txt").write_text("hunter2")
        (self.root / ".env").write_text("X=1\n")
        (self.root / "deps.txt").write_text("flask\n")
        self.write("src/app.py", "v1")
        self.world = DaemonWorld(self.root, SPEC)
        self.world.converge()
        self.published: Published = []
        self.manifest = self.root / ".envd-test-manifest.json"
        self.syncer = self.new_syncer()
        self.cid = self.world.containers()["unitd-web-1"].id

    def new_syncer(self) -> Syncer:
        """A Syncer as a (re)started daemon makes one: same manifest file."""
        return Syncer(
            self.world.engine,
            self.root,
            self.publish,
            protected=lambda: protected_files(self.world.reconciler.loaded, self.root),
            manifest=self.manifest,
        )

    def publish(self, kind: str, resource: str, message: str, phase: str, **extra: object) -> None:
        self.published.append((kind, resource, message, phase, extra))

    def rules(self) -> dict[str, list[WatchRule]]:
        loaded = self.world.reconciler.loaded
        assert loaded is not None
        return {n: list(s.watch) for n, s in loaded.active_services().items() if s.watch}

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def level(self, syncer: Syncer | None = None) -> None:
        desired = self.world.reconciler.desired
        assert desired is not None
        (syncer or self.syncer).converged(desired, self.rules(), "test pass")

    def files(self) -> dict[str, bytes]:
        return {p: f[0] for p, f in self.world.engine.files(self.cid).items()}

    def calls(self, method: str) -> list[tuple[str, ...]]:
        return [c for c in self.world.engine.mutating_calls() if c[0] == method]

    def events(self, kind: str) -> Published:
        return [p for p in self.published if p[0] == kind]


@pytest.fixture
def lv(tmp_path: Path) -> Level:
    return Level(tmp_path)


def test_a_container_envd_never_synced_gets_the_whole_tree(lv: Level) -> None:
    """The first level sync copies every file of every sync rule, in one archive."""
    lv.level()
    files = lv.files()
    assert files["/app/src/app.py"] == b"v1"
    assert files["/app/deps.txt"] == b"flask\n"
    assert len(lv.calls("put_archive")) == 1
    _, resource, message, phase, extra = lv.events("initial-sync")[0]
    assert (resource, phase, extra["reason"], extra["copied"], extra["deleted"]) == (
        "container unitd-web-1",
        "done",
        "test pass",
        2,
        0,
    )
    assert message.startswith("2 file(s) copied, 0 removed in ")


def test_a_second_pass_with_nothing_changed_copies_nothing_and_says_nothing(lv: Level) -> None:
    """Level sync on an unchanged tree makes no engine call and publishes no event."""
    lv.level()
    before = len(lv.world.engine.mutating_calls())
    lv.published.clear()
    lv.level()
    assert len(lv.world.engine.mutating_calls()) == before
    assert lv.published == []


def test_an_edit_made_while_the_daemon_was_down_is_copied_by_the_next_daemon(lv: Level) -> None:
    """A new Syncer reading the manifest copies only the file edited meanwhile."""
    lv.level()
    path = lv.write("src/app.py", "v2-longer")
    os.utime(path, ns=(1, 1))  # even an older mtime differs from the recorded one
    restarted = lv.new_syncer()
    lv.level(restarted)
    assert lv.files()["/app/src/app.py"] == b"v2-longer"
    assert lv.events("initial-sync")[-1][4]["copied"] == 1


def test_a_file_envd_synced_and_the_tree_dropped_is_deleted_but_image_files_stay(
    lv: Level,
) -> None:
    """Deletion removes exactly what envd copied and the tree no longer has; the image's
    own files under the target are never named."""
    lv.world.engine.put_archive(lv.cid, "/", _tar({"app/src/from_image.py": b"image"}))
    lv.write("src/old.py", "old")
    lv.level()
    (lv.root / "src" / "old.py").unlink()
    lv.level()
    files = lv.files()
    assert "/app/src/old.py" not in files
    assert files["/app/src/from_image.py"] == b"image"
    rm = [c for c in lv.calls("exec_run") if "rm" in c]
    assert rm == [("exec_run", lv.cid, "rm", "-f", "--", "/app/src/old.py")]


def test_ignore_patterns_secret_files_and_dotenv_stay_out(lv: Level) -> None:
    """A rule's ignores, the spec's secret file and .env are never copied by the level sync."""
    lv.write("src/debug.log", "noise")
    lv.write("src/.env", "Y=2\n")
    lv.level()
    files = lv.files()
    assert "/app/src/debug.log" not in files
    assert "/app/src/token.txt" not in files
    assert "/app/src/app.py" in files
    withheld = [m for _, _, m, _, _ in lv.events("sync") if "not copied" in m]
    assert withheld == [
        "src/token.txt not copied: it holds the spec's secrets or variables"
        " (a rule whose path names it copies it)"
    ]


def test_sync_exec_runs_its_command_after_its_files_reached_the_container(lv: Level) -> None:
    """A sync+exec rule whose file was copied runs its exec with the hook's user and variables,
    after the archive; a rule whose files did not change does not run again."""
    lv.level()
    calls = lv.world.engine.mutating_calls()
    put = calls.index(next(c for c in calls if c[0] == "put_archive"))
    execs = [i for i, c in enumerate(calls) if c[0] == "exec_run"]
    assert execs and execs[0] > put
    cid, cmd, options = lv.world.engine.exec_options[-1]
    assert (cid, cmd, options.user, options.env) == (
        lv.cid,
        ("sh", "-c", "echo installed"),
        "root",
        (("A", "1"),),
    )
    _, _, message, phase, extra = lv.events("sync-exec")[0]
    assert phase == "done" and extra["exit_code"] == 0 and "(test pass)" in message
    lv.write("src/app.py", "v3")
    lv.level()
    assert len(lv.events("sync-exec")) == 1  # deps.txt did not change


def test_a_failing_sync_exec_is_an_error_event_with_its_status(lv: Level) -> None:
    """A sync+exec command that exits non-zero is reported with its exit status."""
    lv.world.engine.set_exec_handler(lambda cid, cmd: (3, b"boom\n"))
    lv.level()
    _, _, message, phase, extra = lv.events("sync-exec")[0]
    assert phase == "error" and extra["exit_code"] == 3
    assert "exited with status 3" in message and "boom" in message


def test_the_manifest_forgets_removed_containers_and_a_planted_one_is_harmless(
    lv: Level,
) -> None:
    """Entries of containers that are gone are pruned; a garbage manifest only costs a copy."""
    lv.level()
    data = json.loads(lv.manifest.read_text())
    assert set(data) == {lv.cid}
    lv.manifest.write_text('{"gone": {"/etc/passwd": [1, 1, 1]}, "x": 5}')
    restarted = lv.new_syncer()
    lv.level(restarted)
    assert set(json.loads(lv.manifest.read_text())) == {lv.cid}
    assert not any("/etc/passwd" in c for c in lv.calls("exec_run"))


def test_a_container_envd_starts_is_synced_before_its_post_start_hooks(lv: Level) -> None:
    """container_started (apply's after_start) copies the tree into the new container."""
    desired = lv.world.reconciler.desired
    lv.syncer.container_started(desired, "web", lv.rules()["web"], lv.cid)
    assert lv.files()["/app/src/app.py"] == b"v1"
    assert lv.events("initial-sync")[0][4]["reason"] == "container started"


def test_the_reconciler_syncs_each_container_it_starts_and_after_each_pass(tmp_path: Path) -> None:
    """Wired like the daemon: a pass that creates the container has copied the tree when it ends."""
    root = tmp_path.resolve()
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("v1")
    (root / "deps.txt").write_text("x")
    (root / "src" / "token.txt").write_text("t")
    world = DaemonWorld(root, SPEC)
    events: Published = []

    def publish(kind: str, resource: str, message: str, phase: str, **extra: object) -> None:
        events.append((kind, resource, message, phase, extra))

    syncer = Syncer(world.engine, root, publish)

    def rules() -> dict[str, list[WatchRule]]:
        loaded = world.reconciler.loaded
        return {n: list(s.watch) for n, s in loaded.active_services().items()} if loaded else {}

    world.reconciler.after_start = lambda svc, cid: syncer.container_started(
        world.reconciler.desired, svc, rules().get(svc, []), cid
    )
    world.reconciler.on_converged(lambda d, why: syncer.converged(d, rules(), why))
    world.converge()
    cid = world.containers()["unitd-web-1"].id
    assert world.engine.files(cid)["/app/src/app.py"][0] == b"v1"
    reasons = [e[4]["reason"] for e in events if e[0] == "initial-sync"]
    assert reasons == ["container started"]  # the pass's own level sync found nothing to do
    (root / "src" / "app.py").write_text("v2")
    world.converge()
    assert world.engine.files(cid)["/app/src/app.py"][0] == b"v2"
    assert [e[4]["reason"] for e in events if e[0] == "initial-sync"][-1] == "test"


def _tar(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_the_walk_leaves_out_exactly_what_the_event_path_ignores(tmp_path: Path) -> None:
    """The level sync's compiled matcher and the event path's ignored() agree file by file."""
    from types import SimpleNamespace

    from envd.daemon.synctree import DockerIgnores, ignored, walk

    root = tmp_path.resolve()
    names = [
        "a.py", "a.pyc", "b.log", "x.swp", "keep~", ".#lock", "build/out.o", "rebuild/x.o",
        "deep/a/b.pyc", "deep/__pycache__/m.py", "deep/.git/HEAD", "docs/readme.md",
        "docs/drafts/one.md", "4913", "node_modules/x/index.js", "deep/node_modules/y.js",
    ]  # fmt: skip
    for rel in names:
        (root / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "src" / rel).write_text(rel)
    patterns = ["*.pyc", "build/", "**/node_modules", "docs/drafts", "*.log"]
    rule = WatchRule(path="src", action="sync", target="/t", ignore=patterns)
    desired = SimpleNamespace(services={"web": SimpleNamespace(build=None)})
    tree = walk(
        root,
        desired,
        "web",
        [rule],
        frozenset(),
        DockerIgnores(root),
        lambda s, p: None,  # type: ignore[arg-type]
    )
    expected = {f"/t/{rel}" for rel in names if not ignored(rel, patterns)}
    assert set(tree.stats) == expected
    assert "/t/a.py" in expected and "/t/rebuild/x.o" in expected


def test_an_image_without_rm_gets_its_deletes_reported_once_then_forgotten(lv: Level) -> None:
    """Where `rm` cannot run (exit 127), the deletes are one error event, not one per pass."""
    lv.write("src/old.py", "old")
    lv.level()
    (lv.root / "src" / "old.py").unlink()
    lv.world.engine.set_exec_handler(lambda cid, cmd: (127, b"rm: not found\n"))
    lv.published.clear()
    lv.level()
    errors = [m for _, _, m, phase, _ in lv.published if phase == "error"]
    assert errors == [
        "1 deleted file(s) left in place: the container has no `rm` to delete them with"
    ]
    lv.published.clear()
    lv.level()
    assert lv.published == []
