"""The engine's own work, done through envd's engine adapter with no planning.

Shared by the benchmarks: ``parallel`` runs calls from a thread pool (as envd
and Compose do), and ``EngineProject`` performs, for a project of N services,
exactly the engine calls a Compose-like tool cannot avoid — the floor that
``bench_compose.py`` prints beside envd and Compose:

* cold up   — create a labelled network, then create + start N containers
* no-op up  — one labelled list call
* change    — stop + remove + create + start of the one changed container
* down      — stop + remove the N containers (as many in flight as ``envd down``),
  then remove the network

Import it with ``bench/`` on ``sys.path`` (a script in ``bench/`` has it).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from downtime import CONTAINER_PORT, HTTPD  # noqa: E402

from envd.engine.docker.client import DockerEngine  # noqa: E402
from envd.run.teardown import DOWN_WORKERS  # noqa: E402
from envd.values import labels  # noqa: E402
from envd.values.types import ContainerCreate, NetworkAttachment, PortBinding  # noqa: E402

T = TypeVar("T")
WORKERS = 8


def parallel(fn: Callable[[int], T], n: int, workers: int = WORKERS) -> float:
    """Seconds to run ``fn(0) .. fn(n-1)`` from ``workers`` threads."""
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, range(n)))
    return time.perf_counter() - t


@dataclass
class EngineRun:
    """One timed step: like a tool's run, with the CPU of this process."""

    seconds: float
    cpu_s: float
    code: int
    output: str


@dataclass
class EngineProject:
    """N containers of ``image`` on one network, driven by raw adapter calls."""

    name: str
    services: list[str]
    image: str
    stop_timeout: int = 2
    generation: dict[str, int] = field(default_factory=dict)
    engine: DockerEngine = field(default_factory=DockerEngine)
    ids: dict[str, str] = field(default_factory=dict)  # service -> container id
    probe_port: int = 0  # the first service serves HTTP here (downtime.py), as in the tools'

    @property
    def network(self) -> str:
        return f"{self.name}_default"

    def container_name(self, service: str) -> str:
        # Compose v2's naming, so the bench's "which one was recreated" check applies.
        return f"{self.name}-{service}-1"

    def _spec(self, service: str) -> ContainerCreate:
        served = service == self.services[0] and self.probe_port
        return ContainerCreate(
            name=self.container_name(service),
            image=self.image,
            labels={labels.PROJECT: self.name, labels.SERVICE: service},
            command=HTTPD if served else ("sleep", "86400"),
            ports=(PortBinding(CONTAINER_PORT, "tcp", "127.0.0.1", self.probe_port),)
            if served
            else (),
            env=(("BENCH_GEN", str(self.generation.get(service, 0))),),
            networks=(NetworkAttachment(self.network, aliases=(service,)),),
            init=True,
            stop_timeout=self.stop_timeout,
        )

    def _up_one(self, service: str) -> None:
        cid = self.engine.create_container(self._spec(service))
        self.ids[service] = cid
        self.engine.start_container(cid)

    def _down_one(self, service: str) -> None:
        cid = self.ids.pop(service)
        self.engine.stop_container(cid, self.stop_timeout)
        # Its containers mount no volume, which the adapter needs no inspect
        # to know (mounted=()): the stop and the delete are the engine's work.
        self.engine.remove_container(cid, volumes=True, mounted=())

    def _cold(self) -> None:
        # A network the engine leaked on an earlier run (moby#42119: "has active
        # endpoints" with none attached) is reused, as the tools reuse theirs,
        # rather than taking another address pool or failing the run.
        if not self.engine.network_exists(self.network):
            self.engine.create_network(self.network, {labels.PROJECT: self.name})
        parallel(lambda i: self._up_one(self.services[i]), len(self.services))

    def _noop(self) -> None:
        self.engine.list_containers(self.name)

    def _change(self, service: str) -> None:
        self._down_one(service)
        self._up_one(service)

    def _down(self) -> None:
        up = list(self.ids)
        # As many in flight as `envd down` keeps: the same engine work, minus envd.
        parallel(lambda i: self._down_one(up[i]), len(up), DOWN_WORKERS)
        self.engine.remove_network(self.network)

    def run(self, step: str, changed: str) -> EngineRun:
        """Time one step; an engine error becomes a failed run, like a tool's exit code."""
        work: dict[str, Callable[[], None]] = {
            "cold": self._cold,
            "noop": self._noop,
            "change": lambda: self._change(changed),
            "down": self._down,
        }
        cpu = time.process_time()
        start = time.perf_counter()
        code, output = 0, ""
        try:
            work[step]()
        except Exception:
            code, output = 1, traceback.format_exc()
        return EngineRun(time.perf_counter() - start, time.process_time() - cpu, code, output)
