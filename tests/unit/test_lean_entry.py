"""The lean entry (``envd.cli._lean_up``, ``envd.cli._lean_status``) answers only when certain.

A fake Docker engine and a fake daemon serve HTTP on unix sockets in a
thread; the lean code talks to them exactly as to the real ones. Every
hostile or changed input must make it give way (None) to the full path.
"""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from envd.cli import _lean_status, _lean_up
from envd.inputs import desired_key
from envd.inputs.keys import load_keys
from envd.values.keys import Keys

Routes = dict[str, tuple[int, Any]]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    routes: Routes
    server_header: str
    asked: list[str]


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline().decode()
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        url = line.split(" ")[1]
        server: _Server = self.server  # type: ignore[assignment]
        server.asked.append(url)
        status, doc = server.routes.get(url.split("?")[0], (404, {"message": "no such"}))
        body = json.dumps(doc).encode()
        head = (
            f"HTTP/1.1 {status} X\r\nServer: {server.server_header}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.wfile.write(head.encode() + body)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str, Routes, str], _Server]]:
    servers: list[_Server] = []

    def start(path: str, routes: Routes, header: str = "Docker/20.10.24 (linux)") -> _Server:
        server = _Server(path, _Handler)
        server.routes = routes
        server.server_header = header
        server.asked = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _container(cid: str, name: str, state: str = "running", status: str = "Up 3 minutes") -> Any:
    return {
        "Id": cid,
        "Names": [f"/{name}"],
        "Labels": {"dev.envd.project": "p", "dev.envd.config-hash": "h-" + name},
        "State": state,
        "Status": status,
        "ImageID": "sha256:img",
    }


class World:
    """A project directory, this user's key, a fake engine, and a witness of a no-op run."""

    def __init__(self, tmp: Path, serve: Callable[..., _Server]) -> None:
        self.dir = tmp / "proj"
        (self.dir / ".envd").mkdir(parents=True)
        os.chmod(self.dir / ".envd", 0o700)
        (self.dir / "envd.toml").write_text('[services.a]\nimage = "busybox"\n')
        self.env = {
            "XDG_STATE_HOME": str(tmp / "state"),
            "HOME": str(tmp),
            "DOCKER_HOST": f"unix://{tmp}/docker.sock",
            "PYDANTIC_DISABLE_PLUGINS": "__all__",
        }
        self.keys: Keys = load_keys(self.env)
        self.engine = serve(
            str(tmp / "docker.sock"),
            {
                "/containers/json": (200, [_container("c1", "p-a-1", status="Up 2 s (healthy)")]),
                "/networks": (200, [{"Id": "n1", "Name": "p_default", "Labels": {}}]),
                "/volumes": (200, {"Volumes": [], "Warnings": None}),
                "/images/busybox/json": (200, {"Id": "sha256:img"}),
            },
        )
        self.argv = ["-C", str(self.dir), "up", "--once"]

    def witness(self) -> None:
        """What a full no-op `up --once` leaves: the desired cache and the witness."""
        args = _lean_up.parse(self.argv, self.env)
        assert args is not None
        found = _lean_up._inputs(args, self.env, self.keys)
        assert found is not None
        key = found[1]
        body = json.dumps({"key": key, "files": [], "paths": [], "secrets": [], "builds": []})
        cache = self.dir / ".envd" / desired_key.CACHE_FILE
        cache.write_bytes(self.keys.seal(body.encode()) + body.encode())
        os.chmod(cache, 0o600)
        witnessing = _lean_up.begin("p", ["busybox"], self.env)
        assert witnessing is not None
        _lean_up.note(witnessing, "ready", "service a", "ready", "done", "a")
        _lean_up.finish(
            witnessing,
            project_dir=str(self.dir),
            file=None,
            environment=None,
            profiles=frozenset(),
            project="p",
            state_dir=str(self.dir),
            services={"a": "ready"},
            warnings=["envd.toml:1:1: warning: X is not set"],
            environ=self.env,
        )

    @property
    def witness_file(self) -> Path:
        return _lean_up.witness_path(self.dir, None)


@pytest.fixture
def world(tmp_path: Path, serve: Callable[..., _Server], monkeypatch: pytest.MonkeyPatch) -> World:
    # The converge lock lives under this user's state directory: keep it in tmp.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    w = World(tmp_path, serve)
    w.witness()
    return w


def test_a_witnessed_state_is_answered_with_the_witnessed_output(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same inputs and the same engine answers print what the full path printed, exit 0."""
    assert _lean_up.try_up(world.argv, world.env) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "envd.toml:1:1: warning: X is not set\n✔ service a: Ready\nProject p is up: 1 service(s) ready.\n"
    )
    assert _lean_up.try_up([*world.argv, "--json"], world.env) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out.splitlines()[-1]) == {
        "result": "ok",
        "project": "p",
        "services": {"a": "ready"},
    }


def _planted(world: World) -> None:
    body = world.witness_file.read_bytes()[desired_key.SEAL :]
    other = Keys(b"k" * 32)
    world.witness_file.write_bytes(other.seal(body) + body)


def _linked_witness(world: World) -> None:
    real = world.dir / "elsewhere"
    real.write_bytes(world.witness_file.read_bytes())
    world.witness_file.unlink()
    world.witness_file.symlink_to(real)


def _linked_state_dir(world: World) -> None:
    moved = world.dir / "state-copy"
    (world.dir / ".envd").rename(moved)
    (world.dir / ".envd").symlink_to(moved)


def _foreign(world: World) -> None:
    os.chown(world.witness_file, 12345, 12345)


def _containers(world: World, doc: Any) -> None:
    world.engine.routes["/containers/json"] = (200, doc)


_HOSTILE: dict[str, Callable[[World], None]] = {
    "no witness": lambda w: w.witness_file.unlink(),
    "planted witness": _planted,
    "witness is a link": _linked_witness,
    ".envd is a link": _linked_state_dir,
    "edited spec": lambda w: (w.dir / "envd.toml").write_text('[services.a]\nimage = "x"\n'),
    "changed variable": lambda w: w.env.update(NEW_VAR="1"),
    "new .env": lambda w: (w.dir / ".env").write_text("A=1\n"),
    "desired cache gone": lambda w: (w.dir / ".envd" / desired_key.CACHE_FILE).unlink(),
    "daemon socket": lambda w: (w.dir / ".envd" / "daemon.sock").write_text(""),
    "container removed": lambda w: _containers(w, []),
    "extra container": lambda w: _containers(
        w, [_container("c1", "p-a-1", status="Up 2 s (healthy)"), _container("c2", "p-b-1")]
    ),
    "killed": lambda w: _containers(
        w, [_container("c1", "p-a-1", "exited", "Exited (137) 1 second ago")]
    ),
    "unhealthy": lambda w: _containers(w, [_container("c1", "p-a-1", status="Up 2 s (unhealthy)")]),
    "replaced container": lambda w: _containers(
        w, [_container("c9", "p-a-1", status="Up 2 s (healthy)")]
    ),
    "different hash": lambda w: _containers(
        w,
        [
            {
                **_container("c1", "p-a-1", status="Up 2 s (healthy)"),
                "Labels": {"dev.envd.project": "p", "dev.envd.config-hash": "other"},
            }
        ],
    ),
    "image retagged": lambda w: w.engine.routes.update(
        {"/images/busybox/json": (200, {"Id": "sha256:new"})}
    ),
    "network gone": lambda w: w.engine.routes.update({"/networks": (200, [])}),
    "a Podman engine": lambda w: setattr(w.engine, "server_header", "Libpod/4.3 (linux)"),
    "engine error": lambda w: w.engine.routes.update({"/volumes": (500, {"message": "x"})}),
    "another engine": lambda w: w.env.update(DOCKER_HOST="tcp://127.0.0.1:2375"),
}


@pytest.mark.parametrize("change", sorted(_HOSTILE))
def test_any_change_or_hostile_state_takes_the_full_path(
    world: World, change: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A planted, foreign or linked witness, an edited input or a different engine state is a miss."""
    _HOSTILE[change](world)
    assert _lean_up.try_up(world.argv, world.env) is None
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("edit", ["edited spec", "changed variable", "new .env"])
def test_an_edit_asks_the_engine_nothing(world: World, edit: str) -> None:
    """After an edit (the one-change path) the lean attempt gives way before asking the
    engine anything: the full path that follows has the engine to itself."""
    assert _lean_up.try_up(world.argv, world.env) == 0
    assert world.engine.asked, "a hit asks the engine"
    world.engine.asked.clear()
    _HOSTILE[edit](world)
    assert _lean_up.try_up(world.argv, world.env) is None
    assert world.engine.asked == []


def test_the_witness_is_not_written_when_the_engine_changed_during_the_run(world: World) -> None:
    """An engine answering differently after the full path's run than before leaves no witness."""
    world.witness_file.unlink()
    witnessing = _lean_up.begin("p", ["busybox"], world.env)
    assert witnessing is not None
    _containers(world, [_container("c1", "p-a-1", "exited", "Exited (1) 1 second ago")])
    _lean_up.finish(
        witnessing,
        project_dir=str(world.dir),
        file=None,
        environment=None,
        profiles=frozenset(),
        project="p",
        state_dir=str(world.dir),
        services={"a": "ready"},
        warnings=[],
        environ=world.env,
    )
    assert not world.witness_file.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["up"],
        ["up", "--once", "--force-recreate"],
        ["up", "--once", "--rerun", "a"],
        ["up", "--once", "--no-wait"],
        ["up", "--once", "--timeout", "0"],
        ["up", "--once", "--timeout", "0.5"],
        ["up", "--once", "--timeout", "nan"],
        ["up", "--once", "--frozen"],
        ["up", "--once", "--lock-timeout", "3"],
        ["-C", "--once", "up", "--once"],
        ["--verbose", "up", "--once"],
        ["up", "--once", "-C", "x"],
    ],
)
def test_only_the_flags_it_can_answer_exactly_are_lean(argv: list[str]) -> None:
    """Flags that change what `up` does (or that the lean entry does not parse) go to the full path."""
    assert _lean_up.parse(argv, {}) is None


def test_the_lean_flags_parse_as_click_would() -> None:
    """-C/-f/--env/--profile before `up`, --json/--strict/--timeout after it, ENVD_ENV as default."""
    args = _lean_up.parse(
        ["-C", "d", "--env", "ci", "--profile", "x", "up", "--once", "--json", "--timeout", "5"],
        {"ENVD_ENV": "other"},
    )
    assert args == _lean_up.Args("d", None, "ci", frozenset({"x"}), True, False)
    assert _lean_up.parse(["up", "--once"], {"ENVD_ENV": "ci"}) == _lean_up.Args(
        None, None, "ci", frozenset(), False, False
    )
    assert _lean_up.parse(["up", "--once"], {"ENVD_PROFILES": "x"}) is None


def test_the_lean_modules_import_no_heavy_module() -> None:
    """Importing the lean entry loads no click, pydantic, Docker SDK, engine stack or http.client."""
    code = (
        "import sys, envd.__main__, envd.cli._lean_up, envd.cli._lean_status;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('click','pydantic','docker',"
        "'rich') or m.startswith(('envd.engine','envd.core.desired','envd.core.plan',"
        "'envd.core.status.','envd.values.types','envd.run.converge','envd.cli.app',"
        "'envd.daemon.client','http.client','email'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _status_world(tmp: Path, serve: Callable[..., _Server], report: Any, code: int = 200) -> Path:
    state = tmp / "proj" / ".envd"
    state.mkdir(parents=True)
    serve(str(state / "daemon.sock"), {"/v1/status": (code, report)}, "uvicorn")
    return tmp / "proj"


def test_status_json_prints_the_daemons_report_as_the_full_path_does(
    tmp_path: Path, serve: Callable[..., _Server], capsys: pytest.CaptureFixture[str]
) -> None:
    """The report comes out as ``json.dumps(report, indent=2)``, exit 0."""
    report = {"daemon": {"pid": 1}, "services": [{"name": "a", "drift": []}], "orphans": []}
    project = _status_world(tmp_path, serve, report)
    assert _lean_status.try_status(["-C", str(project), "status", "--json"], {}) == 0
    assert capsys.readouterr().out == json.dumps(report, indent=2) + "\n"


@pytest.mark.parametrize(
    ("report", "code", "argv_tail"),
    [
        ({"daemon": {}, "spec_error": "broken"}, 200, ["--json"]),  # no services: full observe
        ({"error": "no"}, 500, ["--json"]),
        ({"services": []}, 200, ["--json", "-v"]),
        ({"services": []}, 200, ["--json", "--target", "swarm"]),
    ],
)
def test_status_gives_way_when_the_daemon_cannot_answer_alone(
    tmp_path: Path,
    serve: Callable[..., _Server],
    report: Any,
    code: int,
    argv_tail: list[str],
) -> None:
    """A broken spec, an error answer, other flags or no daemon leave it to the full path."""
    project = _status_world(tmp_path, serve, report, code)
    assert _lean_status.try_status(["-C", str(project), "status", *argv_tail], {}) is None
    assert _lean_status.try_status(["-C", str(tmp_path), "status", "--json"], {}) is None


def test_the_key_module_and_the_cache_agree() -> None:
    """desired_cache computes its key with desired_key (one function, never two)."""
    from envd.inputs import desired_cache

    assert desired_cache._key is desired_key.compute


def test_the_wire_reads_chunked_and_sized_answers_and_refuses_broken_ones() -> None:
    """A chunked or sized answer is read whole; a short, truncated or non-HTTP one raises."""
    from envd.cli._lean_wire import WireError, parse

    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n"
    )
    assert parse(chunked).body == b"[1,2]"
    sized = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nServer: Docker/1\r\n\r\n{}"
    answer = parse(sized)
    assert (answer.status, answer.headers["server"], answer.body) == (404, "Docker/1", b"{}")
    for broken in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n[1]",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK",
    ):
        with pytest.raises(WireError):
            parse(broken)


@pytest.mark.parametrize("environment", [None, "ci"])
def test_the_lean_status_asks_the_daemons_own_socket(environment: str | None) -> None:
    """The lean client's socket path is the one the daemon binds (StatePaths)."""
    from envd.cli._lean_args import daemon_socket
    from envd.daemon.paths import StatePaths

    base = Path("/p")
    want = StatePaths.for_project(base, environment).socket
    assert daemon_socket(str(base), environment) == str(want)


def test_the_lean_status_imports_no_dataclasses() -> None:
    """`status` against a daemon loads neither dataclasses nor typing before it answers."""
    code = (
        "import sys, envd.__main__, envd.cli._lean_status, envd.cli._status_text;"
        "print(sorted(m for m in ('dataclasses', 'typing', 'inspect') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_hit_loads_none_of_what_the_lean_path_has_no_time_for(world: World) -> None:
    """A real hit (in a fresh interpreter) answers without loading any LEAN_HEAVY module."""
    from tests.unit.test_start_up_imports import LEAN_HEAVY

    code = (
        "import os, sys\n"
        "from envd.cli._lean_read import try_up\n"
        f"rc = try_up({world.argv!r}, {world.env!r})\n"
        f"heavy = {LEAN_HEAVY!r}\n"
        "sys.stdout.write(repr((rc, sorted(m for m in sys.modules if m.split('.')[0] in heavy"
        " or m in heavy))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**world.env, "XDG_RUNTIME_DIR": os.environ["XDG_RUNTIME_DIR"]},
    ).stdout
    assert out == "(0, [])"
