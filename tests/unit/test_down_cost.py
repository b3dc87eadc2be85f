"""What ``envd down`` costs in engine calls: one list, then per container one stop and one
remove, and nothing else per container (no inspect to look for volumes the list already named)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from envd.cli import project
from envd.engine.docker.client import DockerEngine
from envd.engine.docker.transport import Response
from envd.engine.fake import FakeEngine
from envd.run.teardown import remove_all, remove_networks
from envd.values import labels
from envd.values.events import FakeClock
from tests.helpers import cli_in_process
from tests.unit.test_daemon_pass_cost import CountingEngine

PER_CONTAINER = {"stop_container": 1, "remove_container": 1}


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever envd keeps per user goes to a temporary directory; no ENVD_ENV from outside."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ENVD_ENV", raising=False)
    monkeypatch.delenv("ENVD_PROFILES", raising=False)


def _spec(n: int) -> str:
    lines = ['[project]\nname = "downcost"\n']
    for i in range(n):
        lines.append(
            f'[services.s{i:03d}]\nimage = "envd-local/busybox:latest"\n'
            f'command = ["sleep", "3600"]\nstop_grace_period = "2s"\n'
        )
    return "\n".join(lines)


def _down_calls(
    root: Path, n: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Counter[str]:
    """Engine calls of `envd down` on an n-service project `envd up --once` brought up."""
    root.mkdir()
    (root / "envd.toml").write_text(_spec(n))
    fake = FakeEngine()
    fake.add_image("envd-local/busybox:latest")
    counting = CountingEngine(fake)
    monkeypatch.setattr(project, "engine", lambda: counting)
    code, _, err = cli_in_process(capsys, "up", "--once", "-C", root)
    assert code == 0, err
    counting.counts.clear()
    code, out, err = cli_in_process(capsys, "down", "-C", root, "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["containers"] == n
    assert fake.list_containers("downcost") == [] and fake.list_networks("downcost") == []
    return counting.counts


def test_down_makes_one_stop_and_one_remove_per_container_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`envd down` of 5 and of 40 services: the same project-wide calls, and per container
    exactly one stop and one remove (no inspect, state or mounts call)."""
    small = _down_calls(tmp_path / "a", 5, capsys, monkeypatch)
    large = _down_calls(tmp_path / "b", 40, capsys, monkeypatch)
    for kind, each in PER_CONTAINER.items():
        assert (small[kind], large[kind]) == (5 * each, 40 * each), (kind, small, large)
    project_wide_small = {k: v for k, v in small.items() if k not in PER_CONTAINER}
    project_wide_large = {k: v for k, v in large.items() if k not in PER_CONTAINER}
    assert project_wide_small == project_wide_large, (small, large)
    assert sum(project_wide_large.values()) <= 4, large  # lists + the network's removal


# --------------------------------------------------------------------------- the adapter


def _listed(i: int, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Id": f"{i:064x}",
        "Names": [f"/p-s{i}-1"],
        "Labels": {labels.PROJECT: "p", labels.SERVICE: f"s{i}"},
        "State": "running",
        "Status": "Up 1 minute",
        "Mounts": mounts,
        "HostConfig": {"NetworkMode": "p_default"},
    }


class StubDocker(DockerEngine):
    """A ``DockerEngine`` answering from a tiny in-memory Docker, counting each request."""

    ANON = "a" * 64

    def __init__(self, n: int, podman: bool = False) -> None:
        super().__init__(host="unix:///nonexistent/envd-stub.sock")
        self.podman = podman
        self.requests: list[tuple[str, str]] = []
        # s0 mounts an anonymous volume and a named one; every other container none.
        anon = {"Type": "volume", "Name": self.ANON, "Destination": "/data", "RW": True}
        named = {"Type": "volume", "Name": "p_keep", "Destination": "/keep", "RW": True}
        self.containers = [_listed(0, [anon, named])] + [_listed(i, []) for i in range(1, n)]
        self.volumes = {self.ANON, "p_keep"}

    def _send(  # type: ignore[override]
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        **kw: Any,
    ) -> Response:
        shape = re.sub(r"[0-9a-f]{64}", "ID", path)
        self.requests.append((method, shape))
        answer: Any = None
        if path == "/version":
            component = "Podman Engine" if self.podman else "Engine"
            answer = {"ApiVersion": "1.41", "Version": "20.10", "Components": [{"Name": component}]}
        elif (method, shape) == ("GET", "/containers/json"):
            answer = self.containers
        elif (method, shape) == ("GET", "/containers/ID/json"):
            [c] = [c for c in self.containers if path == f"/containers/{c['Id']}/json"]
            answer = {
                "Id": c["Id"],
                "State": {"Status": "running"},
                "Mounts": c["Mounts"],
                "HostConfig": {"Mounts": [{"Source": "p_keep"}]},
            }
        elif (method, shape) == ("GET", "/volumes"):
            answer = {"Volumes": []}
        elif (method, shape) == ("DELETE", "/containers/ID"):
            self.containers = [c for c in self.containers if path != f"/containers/{c['Id']}"]
            if (query or {}).get("v"):
                self.volumes.discard(self.ANON)  # the engine's own anonymous ones
        elif method == "DELETE" and path.startswith("/volumes/"):
            self.volumes.discard(path.rsplit("/", 1)[1])
        elif (method, shape) == ("GET", "/networks"):
            answer = [{"Id": "n1", "Name": "p_default", "Labels": {labels.PROJECT: "p"}}]
        data = b"" if answer is None else json.dumps(answer).encode()
        return Response(200 if answer is not None else 204, data, {})


@pytest.mark.parametrize("volumes", [False, True])
def test_the_adapter_inspects_only_a_container_the_list_shows_with_an_anonymous_volume(
    volumes: bool,
) -> None:
    """Down through the Docker adapter at 30 containers: one list, 30 stops, 30 deletes, one
    inspect (the container with an engine-named volume); named volumes stay, the anonymous
    one goes only with ``volumes``."""
    eng = StubDocker(30)
    remove_all(eng, eng.list_containers("p"), lambda c: 2, volumes=volumes)
    remove_networks(eng, "p", clock=FakeClock())
    calls = Counter(eng.requests)
    assert calls[("GET", "/containers/json")] == 1
    assert calls[("POST", "/containers/ID/stop")] == 30
    assert calls[("DELETE", "/containers/ID")] == 30
    assert calls[("GET", "/containers/ID/json")] == 1, calls
    assert calls[("DELETE", "/networks/p_default")] == 1
    assert eng.containers == []
    assert "p_keep" in eng.volumes
    assert (StubDocker.ANON in eng.volumes) is not volumes


def test_on_podman_the_adapter_still_inspects_before_removing() -> None:
    """Podman's list is not trusted for mounts: each remove there inspects, as before."""
    eng = StubDocker(3, podman=True)
    listed = eng.list_containers("p")  # on Podman it inspects running ones for health
    eng.requests.clear()
    remove_all(eng, listed, lambda c: 2)
    assert Counter(eng.requests)[("GET", "/containers/ID/json")] == 3
