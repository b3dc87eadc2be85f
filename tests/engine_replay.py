"""Record what ``DockerEngine`` sends and receives, and replay it without an engine.

``RecordingEngine`` talks to a real engine and keeps every JSON exchange
(method, path without the ``/vX.Y`` prefix, request body, status, answer);
``ReplayEngine`` answers the same calls from such a recording, in order, and
fails when the adapter asks for something else. ``scenario`` is the one
sequence of adapter calls both run, so a fixture recorded against Docker 20.10
and one written from a newer API's swagger exercise the same code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envd.engine.docker.client import DockerEngine
from envd.engine.docker.transport import Response
from envd.values.types import (
    ContainerCreate,
    Healthcheck,
    Mount,
    NetworkAttachment,
    PortBinding,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "engine_api"
_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")


@dataclass
class Exchange:
    method: str
    path: str  # without the version prefix, query included
    request: Any  # the JSON body sent, or None
    status: int
    answer: Any  # the decoded JSON answer, or None

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "request": self.request,
            "status": self.status,
            "answer": self.answer,
        }


def _split(url: str) -> str:
    return _VERSION_PREFIX.sub("", url)


class RecordingEngine(DockerEngine):
    """A ``DockerEngine`` keeping each JSON exchange it has with the real engine."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges: list[Exchange] = []
        self.urls: list[str] = []

    def _send(  # type: ignore[override]
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        **kw: Any,
    ) -> Response:
        resp = super()._send(method, path, query, body, **kw)
        url = self._url(path, query, kw.get("versioned", True))
        self.urls.append(url)
        try:
            answer = resp.json()
        except ValueError:
            answer = None
        self.exchanges.append(Exchange(method, _split(url), body, resp.status, answer))
        return resp


class ReplayEngine(DockerEngine):
    """A ``DockerEngine`` whose engine is a recording: answers in order, checks each ask."""

    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        super().__init__(host="unix:///nonexistent/envd-replay.sock")
        self.script = list(exchanges)
        self.sent: list[Exchange] = []
        self.urls: list[str] = []

    def _send(  # type: ignore[override]
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        **kw: Any,
    ) -> Response:
        url = self._url(path, query, kw.get("versioned", True))
        self.urls.append(url)
        if not self.script:
            raise AssertionError(f"the adapter asked {method} {url} beyond the recording")
        want = self.script.pop(0)
        got = (method, _split(url))
        assert got == (want["method"], want["path"]), f"asked {got}, recording has {want}"
        self.sent.append(Exchange(method, _split(url), body, want["status"], want["answer"]))
        answer = want["answer"]
        data = b"" if answer is None else json.dumps(answer).encode()
        return Response(want["status"], data, {})


def load(name: str) -> list[dict[str, Any]]:
    doc = json.loads((FIXTURES / name).read_text())
    exchanges: list[dict[str, Any]] = doc["exchanges"]
    return exchanges


def scenario(eng: DockerEngine, project: str, image: str) -> dict[str, Any]:
    """The adapter calls a fixture covers; what the adapter made of the answers."""
    labels = {"dev.envd.project": project}
    front, back = f"{project}-front", f"{project}-back"
    vol = f"{project}-data"
    out: dict[str, Any] = {"version": eng.describe()}
    eng.create_network(front, labels)
    eng.create_network(back, labels, internal=True)
    eng.create_volume(vol, labels)
    spec = ContainerCreate(
        name=f"{project}-web",
        image=image,
        labels={**labels, "dev.envd.service": "web"},
        command=("sleep", "3600"),
        mounts=(Mount("volume", "/data", vol), Mount("volume", "/scratch")),
        ports=(PortBinding(8080, host_ip="127.0.0.1"),),
        networks=(NetworkAttachment(front, ("web",)), NetworkAttachment(back, ("api",))),
        healthcheck=Healthcheck(("CMD-SHELL", "true"), interval_s=1, timeout_s=1, retries=1),
        stop_timeout=1,
    )
    cid = eng.create_container(spec)
    eng.start_container(cid)
    out["containers"] = [
        (c.name, c.status, c.labels.get("dev.envd.service"), [p.container_port for p in c.ports])
        for c in eng.list_containers(project)
    ]
    state = eng.container_state(cid)
    out["state"] = (state.status, state.has_healthcheck, state.exit_code, state.oom_killed)
    out["mounts"] = sorted(
        (m.type, m.target, m.anonymous, m.read_only) for m in eng.container_mounts(cid)
    )
    image_info = eng.inspect_image(image)
    out["image"] = bool(image_info and image_info.id.startswith("sha256:"))
    out["networks"] = sorted((n.name, n.internal) for n in eng.list_networks(project))
    out["volumes"] = sorted(v.name for v in eng.list_volumes(project))
    eng.remove_container(cid, volumes=True)
    eng.remove_network(front)
    eng.remove_network(back)
    eng.remove_volume(vol)
    return out
