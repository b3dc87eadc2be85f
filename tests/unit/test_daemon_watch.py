"""The daemon's watchers: file changes routed by watch rules, and the engine's event stream.

Everything runs on the fake engine with an injected clock; ``FileWatcher.handle``
is called directly with the paths the file watcher would report, and the engine event
follower is run in the test's thread against a scripted stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from envd.daemon.watch import EngineEvents, FileWatcher, Syncer, ignored, protected_files
from envd.spec.models import WatchRule
from envd.values.errors import EngineError, EngineUnavailable
from tests.helpers import DaemonWorld, wait_for

SPEC = """\
[project]
name = "unitd"

[services.web]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
replicas = 2
watch = [
  { path = "src", action = "sync", target = "/app/src", ignore = ["*.pyc"] },
  { path = "conf", action = "restart" },
]

[services.worker]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
watch = [{ path = "lib", action = "sync+restart", target = "/app/lib" }]
"""


class StepClock:
    """A monotonic clock that moves 0.25 s each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 0.25
        return self.now

    def sleep(self, seconds: float) -> None:
        raise AssertionError("the watcher must not sleep")


class Setup:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        for d in ("src", "conf", "lib", "docs"):
            (self.root / d).mkdir()
        self.world = DaemonWorld(self.root, SPEC)
        self.world.converge()
        self.published: list[tuple[str, str, str, str, dict[str, object]]] = []
        self.triggers: list[str] = []
        self.syncer = Syncer(self.world.engine, self.root, self.publish, StepClock())
        self.watcher = FileWatcher(
            self.root,
            self.triggers.append,
            self.syncer,
            lambda: self.world.reconciler.desired,
            self.rules,
            threading.Event(),
            self.world.log,
        )

    def publish(self, kind: str, resource: str, message: str, phase: str, **extra: object) -> None:
        self.published.append((kind, resource, message, phase, extra))

    def rules(self) -> dict[str, list[WatchRule]]:
        loaded = self.world.reconciler.loaded
        assert loaded is not None
        return {n: list(s.watch) for n, s in loaded.active_services().items() if s.watch}

    def write(self, rel: str, text: str = "x") -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def files(self, container: str) -> dict[str, bytes]:
        c = self.world.containers()[container]
        return {p: data for p, (data, *_rest) in self.world.engine.files(c.id).items()}

    def calls(self, method: str) -> list[tuple[str, ...]]:
        return [c for c in self.world.engine.mutating_calls() if c[0] == method]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


IGNORED = [
    ("src/.main.py.swp", [], True),  # editor droppings
    ("src/main.py~", [], True),
    (".git/HEAD", [], True),  # VCS and tool directories anywhere
    ("a/__pycache__/m.pyc", [], True),
    ("src/main.py", [], False),
    ("main.pyc", ["*.pyc"], True),  # a rule's own ignore list, by base name
    ("deep/main.pyc", ["*.pyc"], True),
    ("deep/main.pyc", ["**/*.pyc"], True),
    ("build/out/x.o", ["build/"], True),  # a directory pattern takes its subtree
    ("rebuild/x.o", ["build/"], False),
    # `**/dir` takes that directory's subtree at any depth, the top level included.
    ("node_modules/x/index.js", ["**/node_modules"], True),
    ("a/node_modules/y.js", ["**/node_modules"], True),
    ("a/node_modules_old/y.js", ["**/node_modules"], False),
]


@pytest.mark.parametrize(("rel", "patterns", "expected"), IGNORED)
def test_ignored_paths(rel: str, patterns: list[str], expected: bool) -> None:
    """Editor droppings, tool directories and a rule's ignore patterns never reach a rule."""
    assert ignored(rel, patterns) is expected


def test_sync_rule_copies_changed_files_into_every_running_replica(setup: Setup) -> None:
    """A change under a sync rule's path is copied into each replica, without a reconcile."""
    path = setup.write("src/app/main.py", "print(1)")
    setup.watcher.handle({path})
    for name in ("unitd-web-1", "unitd-web-2"):
        assert setup.files(name)["/app/src/app/main.py"] == b"print(1)"
    assert setup.triggers == []
    assert setup.calls("stop_container") == []
    kind, resource, message, phase, extra = setup.published[-1]
    assert (kind, resource, phase, extra) == ("sync", "service web", "done", {"service": "web"})
    # The injected clock moved 0.25 s between the two reads: the message says so.
    assert message == "1 file(s) copied, 0 removed in 250 ms into 2 container(s)"


def test_the_running_watcher_syncs_an_edit_and_ends_when_the_daemon_stops(
    setup: Setup,
) -> None:
    """The watcher's own thread (inotify on Linux) copies an edit into the replicas and
    ends once the daemon's stop event is set."""
    setup.watcher.start()
    count = iter(range(10**6))

    def synced() -> bool:
        # Written again on every try: the first may land before the tree is watched.
        setup.write("src/live.py", f"v{next(count)}")
        return "/app/src/live.py" in setup.files("unitd-web-1")

    wait_for(synced, 10, 0.05, "the edit synced by the running watcher")
    setup.watcher.stop_event.set()
    setup.watcher.join(5)
    assert not setup.watcher.is_alive()


def test_a_burst_is_one_archive_per_rule(setup: Setup) -> None:
    """Many files changed at once under one rule are copied with one archive per container."""
    paths = {setup.write(f"src/f{i}.py") for i in range(20)}
    setup.watcher.handle(paths)
    assert len(setup.calls("put_archive")) == 2
    assert len([p for p in setup.files("unitd-web-1") if p.startswith("/app/src/")]) == 20


def test_deleted_files_envd_synced_are_removed_in_the_containers(setup: Setup) -> None:
    """A synced file deleted from the tree is removed from the containers with rm -f."""
    path = setup.write("src/gone.py")
    setup.watcher.handle({path})
    path.unlink()
    setup.watcher.handle({path})
    rm = setup.calls("exec_run")
    assert len(rm) == 2
    assert rm[0][2:] == ("rm", "-f", "--", "/app/src/gone.py")
    assert "/app/src/gone.py" not in setup.files("unitd-web-1")


def test_a_deleted_path_envd_never_synced_is_left_alone(setup: Setup) -> None:
    """A delete event for a path envd did not copy never reaches the image's own files."""
    setup.watcher.handle({setup.root / "src" / "gone.py"})
    assert setup.calls("exec_run") == []


def test_a_rules_ignore_patterns_keep_files_out(setup: Setup) -> None:
    """A file matching the rule's ignore list is neither copied nor reported."""
    setup.watcher.handle({setup.write("src/m.pyc")})
    assert setup.calls("put_archive") == []
    assert setup.published == []
    assert setup.triggers == []


def test_dockerignored_files_are_not_synced(setup: Setup) -> None:
    """A file the build context's .dockerignore leaves out is not copied into containers."""
    setup.write(".dockerignore", "src/secret*\n")
    setup.watcher.handle({setup.write("src/secret.txt"), setup.write("src/ok.txt")})
    files = setup.files("unitd-web-1")
    assert "/app/src/ok.txt" in files and "/app/src/secret.txt" not in files


def test_sync_and_digest_agree_on_what_dockerignore_leaves_out(setup: Setup) -> None:
    """The watcher skips exactly what the build digest skips: an exception that does not
    name an ignored directory does not reach into it (the engine does not enter it)."""
    from envd.inputs.buildctx import DockerIgnore

    setup.write(".dockerignore", "src/vendor\n!**/keep.txt\n")
    kept = setup.write("src/vendor/keep.txt")
    assert DockerIgnore.read(setup.root).ignored("src/vendor/keep.txt")
    setup.watcher.handle({kept})
    assert "/app/src/vendor/keep.txt" not in setup.files("unitd-web-1")


def test_restart_rule_restarts_the_services_containers(setup: Setup) -> None:
    """A change under a restart rule restarts each running container of the service."""
    setup.watcher.handle({setup.write("conf/app.ini")})
    stopped = {c[1] for c in setup.calls("stop_container")}
    web = {setup.world.containers()[n].id for n in ("unitd-web-1", "unitd-web-2")}
    assert stopped == web
    assert all(c.status == "running" for c in setup.world.containers().values())
    assert [p[3] for p in setup.published] == ["done", "done"]
    assert "conf/app.ini changed" in setup.published[0][2]
    assert setup.triggers == []


def test_sync_restart_rule_copies_then_restarts(setup: Setup) -> None:
    """A sync+restart rule copies the file and restarts the container."""
    setup.watcher.handle({setup.write("lib/util.py", "u")})
    assert setup.files("unitd-worker-1")["/app/lib/util.py"] == b"u"
    worker = setup.world.containers()["unitd-worker-1"].id
    assert [c[1] for c in setup.calls("stop_container")] == [worker]


def test_changes_outside_every_rule_trigger_a_pass(setup: Setup) -> None:
    """Other changes mark the project dirty, naming at most three files."""
    setup.watcher.handle({setup.write(f"docs/{n}.md") for n in "abcde"})
    assert setup.triggers == ["files changed: docs/a.md, docs/b.md, docs/c.md and 2 more"]
    assert setup.calls("put_archive") == []


def test_editor_droppings_outside_rules_trigger_nothing(setup: Setup) -> None:
    """A swap file written next to the spec does not start a pass."""
    setup.watcher.handle({setup.write(".envd.toml.swp")})
    assert setup.triggers == []


def test_a_failed_copy_is_reported_and_the_rest_continue(setup: Setup) -> None:
    """An engine error on one container publishes an error; the other replica still gets the file."""
    setup.world.engine.fail_next("put_archive", EngineError("disk full", 500))
    setup.watcher.handle({setup.write("src/a.py", "a")})
    phases = [p[3] for p in setup.published]
    assert phases == ["error", "done"]
    assert "sync failed: disk full" in setup.published[0][2]
    copied = [n for n in ("unitd-web-1", "unitd-web-2") if "/app/src/a.py" in setup.files(n)]
    assert len(copied) == 1


def test_no_desired_state_yet_means_no_sync(setup: Setup) -> None:
    """Before the first good pass the watcher copies nothing (it does not know the services)."""
    setup.world.reconciler.desired = None
    setup.watcher.handle({setup.write("src/a.py")})
    assert setup.calls("put_archive") == []


# --------------------------------------------------------------------------- engine events


class ScriptedEngine:
    """Answers stream_events from a script (a list of events, or an exception to raise),
    and ping from another (an exception to raise, or None: it answers)."""

    def __init__(
        self,
        script: list[list[dict[str, Any]] | Exception],
        pings: list[Exception | None] | None = None,
    ) -> None:
        self.script = script
        self.pings = pings or []

    def ping(self) -> None:
        outcome = self.pings.pop(0) if self.pings else None
        if outcome is not None:
            raise outcome

    def stream_events(self, project: str) -> Iterator[dict[str, Any]]:
        step = self.script.pop(0) if self.script else []
        if isinstance(step, Exception):
            raise step
        return iter(step)


class CountingStop(threading.Event):
    """A stop event whose wait returns at once, records the delay, and stops after ``rounds``."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds
        self.delays: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.delays.append(timeout)
        if len(self.delays) >= self.rounds:
            self.set()
        return self.is_set()


def _event(name: str, action: str) -> dict[str, Any]:
    return {"Action": action, "Actor": {"Attributes": {"name": name}}}


def _follow(
    script: list[list[dict[str, Any]] | Exception],
    rounds: int,
    pings: list[Exception | None] | None = None,
) -> tuple[list[str], list[float]]:
    """Run the follower in this thread until it has waited ``rounds`` times.

    Returns the triggers (an engine reported lost as "lost: <why>") and the waits.
    """
    triggers: list[str] = []
    stop = CountingStop(rounds)
    log = structlog.wrap_logger(logging.getLogger("test.daemon"))
    EngineEvents(
        ScriptedEngine(script, pings),
        "unitd",
        triggers.append,
        stop,
        log,
        lost=lambda why: triggers.append(f"lost: {why}"),
    ).run()
    return triggers, stop.delays


def test_engine_events_trigger_passes_but_execs_do_not() -> None:
    """Container events mark the project dirty; exec, attach and resize noise does not; the stream's end reports the engine lost."""
    triggers, _ = _follow(
        [
            [
                _event("unitd-web-1", "die"),
                _event("unitd-web-1", "exec_start: sh"),
                _event("unitd-web-1", "resize"),
                _event("unitd-worker-1", "health_status: unhealthy"),
            ]
        ],
        rounds=1,
    )
    assert triggers == [
        "container unitd-web-1: die",
        "container unitd-worker-1: health_status: unhealthy",
        "lost: engine event stream ended",
    ]


def test_a_dropped_stream_reconnects_with_backoff_reset_by_an_event() -> None:
    """Each dropped stream waits twice as long before reconnecting; an event resets the wait."""
    _, delays = _follow([[], [], [_event("w", "start")], [], []], rounds=5)
    assert delays == [0.5, 1.0, 0.5, 1.0, 2.0]


def test_an_unavailable_engine_is_reported_lost_once_and_its_return_triggers_a_pass() -> None:
    """The engine going away is reported once (not per retry); its return triggers one pass."""
    down = EngineUnavailable("down")
    triggers, delays = _follow([down, []], rounds=4, pings=[down, down, None])
    assert triggers == [
        "lost: engine event stream lost",
        "engine event stream reconnected",
        "lost: engine event stream ended",
    ]
    assert delays == [0.5, 1.0, 2.0, 2.0]


def test_the_backoff_is_capped() -> None:
    """However long the engine stays away, the follower asks again at least every 2 s."""
    _, delays = _follow([], rounds=10)
    assert delays[-1] == 2.0 and max(delays) == 2.0


SECRET_SPEC = """\
[project]
name = "unitd"

[secrets.db]
file = "secrets/db_password.txt"

[services.web]
image = "envd-local/busybox:latest"
command = ["sleep", "3600"]
watch = [{rule}]
"""


def secret_world(root: Path, rule: str, publish: Callable[..., None]) -> tuple[DaemonWorld, Syncer]:
    """A converged project with a file secret, and a Syncer guarding the spec's secret files."""
    world = DaemonWorld(root, SECRET_SPEC.format(rule=rule))
    world.converge()
    syncer = Syncer(
        world.engine,
        root,
        publish,
        StepClock(),
        protected=lambda: protected_files(world.reconciler.loaded, root),
    )
    return world, syncer


def test_a_directory_sync_rule_leaves_the_specs_secret_files_and_dotenv_out(tmp_path: Path) -> None:
    """A sync rule over a directory holding a file secret or .env copies neither; it says so once."""
    root = tmp_path.resolve()
    (root / "secrets").mkdir()
    (root / "secrets" / "db_password.txt").write_text("hunter2")
    (root / ".env").write_text("PGPW=hunter2\n")
    published: list[tuple[str, str]] = []

    def publish(kind: str, resource: str, message: str, phase: str, **extra: object) -> None:
        published.append((message, phase))

    world, syncer = secret_world(root, '{ path = ".", action = "sync", target = "/app" }', publish)
    loaded = world.reconciler.loaded
    assert loaded is not None
    rules = {n: list(s.watch) for n, s in loaded.active_services().items() if s.watch}
    watcher = FileWatcher(
        root,
        lambda why: None,
        syncer,
        lambda: world.reconciler.desired,
        lambda: rules,
        threading.Event(),
        world.log,
    )
    (root / "main.py").write_text("print(1)")
    changed = {root / "secrets" / "db_password.txt", root / ".env", root / "main.py"}
    watcher.handle(changed)
    watcher.handle(changed)
    c = world.containers()["unitd-web-1"]
    files = world.engine.files(c.id)
    assert "/app/main.py" in files
    assert not any(p.endswith(("db_password.txt", "/.env")) for p in files), sorted(files)
    withheld = [m for m, _ in published if "not copied" in m]
    assert sorted(withheld) == sorted(
        [
            ".env not copied: it holds the spec's secrets or variables"
            " (a rule whose path names it copies it)",
            "secrets/db_password.txt not copied: it holds the spec's secrets or variables"
            " (a rule whose path names it copies it)",
        ]
    )


def test_a_rule_naming_a_secret_file_itself_copies_it(tmp_path: Path) -> None:
    """A sync rule whose path is the secret file itself still copies it: the user named it."""
    root = tmp_path.resolve()
    (root / "secrets").mkdir()
    (root / "secrets" / "db_password.txt").write_text("hunter2")
    world, syncer = secret_world(
        root,
        '{ path = "secrets/db_password.txt", action = "sync", target = "/app/pw" }',
        lambda *a, **k: None,
    )
    loaded = world.reconciler.loaded
    assert loaded is not None
    syncer.sync(
        world.reconciler.desired,
        "web",
        loaded.spec.services["web"].watch[0],  # type: ignore[arg-type]
        {root / "secrets" / "db_password.txt"},
    )
    c = world.containers()["unitd-web-1"]
    assert world.engine.files(c.id)["/app/pw"][0] == b"hunter2"
