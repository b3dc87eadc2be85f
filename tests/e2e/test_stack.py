"""The real multi-service stack of ``examples/webapp``, built and run offline.

The example is copied into a directory named after a fresh project, so the
project (and the image it builds) carry that name and are removed afterwards.
The tests run in file order over one stack: first start, the API answering,
a no-op ``up``, changing one service, and the PostgreSQL data surviving a
recreate and ``down`` but not ``down -v``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from tests.helpers import describe, free_tcp_port, project_cleanup, run_envd, wait_for

# Every step waits for PostgreSQL and Redis to report healthy.
pytestmark = [pytest.mark.usefixtures("debian_image"), pytest.mark.needs_engine_healthchecks]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webapp"
SENTINEL = "envd-e2e-sentinel"


def nanos(timestamp: str) -> int:
    """An engine timestamp (RFC 3339, up to nanoseconds, trailing zeros trimmed) in ns."""
    whole, _, frac = timestamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp()
    return int(seconds) * 10**9 + int((frac + "000000000")[:9])


@dataclass
class Stack:
    directory: Path
    project: str
    port: int
    client: Any
    events: list[dict[str, Any]] = field(default_factory=list)

    def envd(self, *args: str, timeout: float = 180.0) -> CompletedProcess[str]:
        return run_envd(
            list(args), cwd=self.directory, env={"API_PORT": str(self.port)}, timeout=timeout
        )

    def ok(self, *args: str, timeout: float = 180.0) -> CompletedProcess[str]:
        proc = self.envd(*args, timeout=timeout)
        assert proc.returncode == 0, describe(proc)
        assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
        return proc

    def up(self) -> CompletedProcess[str]:
        return self.ok("up", "--once", "--timeout", "150")

    def edit(self, old: str, new: str) -> None:
        """Change the copied spec, as a user edits envd.toml."""
        path = self.directory / "envd.toml"
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} is not once in the example's envd.toml"
        path.write_text(text.replace(old, new))

    def containers(self) -> dict[str, dict[str, Any]]:
        """service → inspect document of its (non one-off) container."""
        out = {}
        flt = {"label": f"dev.envd.project={self.project}"}
        for c in self.client.api.containers(all=True, filters=flt):
            if c["Labels"].get("dev.envd.one-off") == "1":
                continue
            out[c["Labels"]["dev.envd.service"]] = self.client.api.inspect_container(c["Id"])
        return out

    def identity(self) -> dict[str, tuple[str, str]]:
        """service → (container id, StartedAt): what a no-op must not change."""
        return {s: (i["Id"], i["State"]["StartedAt"]) for s, i in self.containers().items()}

    def volumes(self) -> list[str]:
        flt = {"label": f"dev.envd.project={self.project}"}
        return sorted(v["Name"] for v in self.client.api.volumes(filters=flt).get("Volumes") or [])

    def sql(self, query: str) -> CompletedProcess[str]:
        return self.envd(
            "exec", "db", "--", "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-XAtc", query
        )

    def get(self, path: str = "/") -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            doc: dict[str, Any] = json.loads(resp.read())
            return doc


class EventRecorder:
    """Records the engine's start and health events of a project while it runs.

    The engine keeps only its last 256 events for later queries, and health
    probes produce several per second, so the events are streamed live.
    """

    def __init__(self, client: Any, project: str) -> None:
        # The subscription is active once this call returns (headers received).
        self._stream = client.api.events(
            decode=True,
            filters={
                "type": "container",
                "label": f"dev.envd.project={project}",
                "event": ["start", "health_status"],
            },
        )
        self.events: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends when closed
            for event in self._stream:
                self.events.append(event)

    def stop(self) -> list[dict[str, Any]]:
        self._stream.close()
        self._thread.join(timeout=10)
        return self.events


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Stack]:
    """examples/webapp, copied under a fresh project name and brought up once."""
    name = f"t-{secrets.token_hex(4)}"
    directory = tmp_path_factory.mktemp("stack") / name
    shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns(".envd", "__pycache__"))
    s = Stack(directory, name, free_tcp_port(), docker_client)
    with project_cleanup(name, lambda: docker_client):
        recorder = EventRecorder(docker_client, name)
        try:
            s.up()
        finally:
            s.events = recorder.stop()
        yield s


def test_the_api_starts_only_after_db_and_cache_are_healthy(stack: Stack) -> None:
    """`depends_on = "healthy"` holds the API back until PostgreSQL and Redis report healthy."""
    services = stack.containers()
    assert sorted(services) == ["api", "cache", "db"]
    for name, info in services.items():
        assert info["State"]["Running"], (name, info["State"])
        assert info["State"]["Health"]["Status"] == "healthy", (name, info["State"]["Health"])

    def healthy_at(service: str) -> int:
        cid = services[service]["Id"]
        times = [
            e["timeNano"]
            for e in stack.events
            if e.get("id") == cid and e.get("status") == "health_status: healthy"
        ]
        seen = [
            (e.get("Actor", {}).get("Attributes", {}).get("name"), e.get("status"))
            for e in stack.events
        ]
        assert times, f"no 'health_status: healthy' event for {service}; seen: {seen}"
        return min(times)

    api_started = nanos(services["api"]["State"]["StartedAt"])
    assert api_started > healthy_at("db"), "the API started before the database was healthy"
    assert api_started > healthy_at("cache"), "the API started before Redis was healthy"
    # The dependencies themselves were started in parallel, before the API.
    for dep in ("db", "cache"):
        assert nanos(services[dep]["State"]["StartedAt"]) < api_started
    # The API was built from ./api, and the image is the project's.
    image = stack.client.api.inspect_image(services["api"]["Image"])
    assert image["Config"]["Labels"]["dev.envd.project"] == stack.project


def test_the_api_answers_with_redis_and_postgres_behind_it(stack: Stack) -> None:
    """The published API reaches Redis (a hit counter) and PostgreSQL over the project network."""
    first = wait_for(lambda: stack.get(), timeout=30, interval=0.2, ignore=(OSError,))
    second = stack.get()
    assert first["greeting"] == "hello from envd"
    assert first["db"] is True
    assert isinstance(first["hits"], int) and second["hits"] == first["hits"] + 1


def test_a_noop_up_touches_nothing(stack: Stack) -> None:
    """`up --once` on an up-to-date stack keeps every container (ids and StartedAt) and plans 0 changes."""
    before = stack.identity()
    stack.up()
    assert stack.identity() == before
    plan = json.loads(stack.ok("plan", "--json").stdout)
    assert plan["changes"] == 0, plan
    assert {a["action"] for a in plan["actions"]} == {"ok"}, plan


def test_changing_the_apis_env_recreates_only_the_api(stack: Stack) -> None:
    """Editing one service's env recreates that service's container and nothing else."""
    before = stack.identity()
    stack.edit('GREETING = "${GREETING:-hello from envd}"', 'GREETING = "hello again"')
    plan = json.loads(stack.ok("plan", "--json").stdout)
    changed = [(a["action"], a.get("service")) for a in plan["actions"] if a["action"] != "ok"]
    assert changed == [("recreate", "api")], plan
    stack.up()
    after = stack.identity()
    assert after["api"][0] != before["api"][0]
    assert {s: after[s] for s in ("db", "cache")} == {s: before[s] for s in ("db", "cache")}
    assert wait_for(lambda: stack.get(), timeout=30, ignore=(OSError,))["greeting"] == "hello again"


def test_a_row_in_postgres_survives_a_recreate_of_the_database(stack: Stack) -> None:
    """Changing the database's env recreates its container on the same named volume: data stays."""
    write = stack.sql(f"CREATE TABLE sentinel (v text); INSERT INTO sentinel VALUES ('{SENTINEL}')")
    assert write.returncode == 0, describe(write)
    before = stack.identity()
    stack.edit(
        'env = { PGDATA = "/var/lib/postgresql/data",',
        'env = { E2E_GENERATION = "2", PGDATA = "/var/lib/postgresql/data",',
    )
    stack.up()
    after = stack.identity()
    assert after["db"][0] != before["db"][0]
    assert after["cache"] == before["cache"]
    read = stack.sql("SELECT v FROM sentinel")
    assert read.returncode == 0 and read.stdout.strip() == SENTINEL, describe(read)


def test_a_row_in_postgres_survives_down_and_up(stack: Stack) -> None:
    """`down` keeps the named volume, so the database comes back with its rows."""
    stack.ok("down")
    assert stack.containers() == {}
    assert stack.volumes() == [f"{stack.project}_pgdata"]
    stack.up()
    read = stack.sql("SELECT v FROM sentinel")
    assert read.returncode == 0 and read.stdout.strip() == SENTINEL, describe(read)


def test_down_v_removes_the_volume_and_its_data(stack: Stack) -> None:
    """`down -v` removes the named volume: the next `up` starts with an empty database."""
    stack.ok("down", "-v")
    assert stack.containers() == {}
    assert stack.volumes() == []
    stack.up()
    gone = stack.sql("SELECT to_regclass('public.sentinel') IS NULL")
    assert gone.returncode == 0 and gone.stdout.strip() == "t", describe(gone)
