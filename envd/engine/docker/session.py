"""``EngineSession``: one engine endpoint, its negotiated API version and the calls on it.

``DockerEngine`` (and the swarm engine on top of it) inherits this: the
keep-alive connection per thread, the API version learnt once per object
(from a ping's headers or ``/version``: ``envd.engine.docker.versions``), and the mapping of every failure
onto ``envd.values.errors``: ``EngineUnavailable`` when the engine cannot be
reached, ``NotFound`` (404), ``Conflict`` (409) and ``EngineError`` with the
engine's own message otherwise (Podman's 500s mapped by their ``cause``).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from envd.engine.docker import payloads, versions
from envd.engine.docker.images import SdkImages
from envd.engine.docker.payloads import Json
from envd.engine.docker.transport import (
    Connection,
    Endpoint,
    ProtocolError,
    Response,
    StaleConnection,
    failure_reason,
)
from envd.engine.docker.versions import EngineInfo
from envd.spec import engine_host
from envd.spec.engine_host import EngineHost
from envd.values.errors import EngineError, EngineUnavailable
from envd.values.limit_support import LimitSupport

DEFAULT_TIMEOUT = 60.0
_DEFAULT_TIMEOUT = -1.0  # "the engine's default read timeout"; None: no limit
_JSON = {"Content-Type": "application/json"}

# Engine answers that are a race inside the engine and go away when asked again:
# (method, text in the 500's body, times asked again at most, pause before each,
# within how many seconds).
_RACES: tuple[tuple[str, bytes, int, float, float], ...] = (
    # Podman answers a read about a container whose process exited between its
    # own steps with "read /proc/N/...: no such process"; asked again, it
    # answers from the exited state.
    ("GET", b"no such process", 2, 0.0, math.inf),
    # Docker 20.10 can fail a forced removal when its own exit handler writes
    # the container's state file while the removal empties the directory
    # ("unable to remove filesystem ... directory not empty"); the container is
    # left dead and a second removal completes it.
    ("DELETE", b"unable to remove filesystem", 50, 0.1, 5.0),
)


def _race(method: str, resp: Response) -> tuple[str, bytes, int, float, float] | None:
    """The entry of ``_RACES`` this answer is, if any."""
    if resp.status != 500:
        return None
    return next((r for r in _RACES if r[0] == method and r[1] in resp.body), None)


class EngineSession:
    """Requests to one engine at the API version negotiated with it."""

    def __init__(
        self, host: str | EngineHost | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        if host is None:
            target = engine_host.resolve()
        elif isinstance(host, str):
            target = engine_host.explicit(host)
        else:
            target = host
        self.target = target
        self.host = target.host
        self.timeout = timeout
        self._endpoint = Endpoint(target)
        self._local = threading.local()
        self._info: EngineInfo | None = None
        self._info_lock = threading.Lock()
        self._limits_note: LimitSupport | None = None  # ignored_limits(), asked once
        self._images = SdkImages(
            target, timeout, self.api_version, self._api_error, self._unavailable
        )

    # --- transport ---------------------------------------------------------
    def _unavailable(self, exc: BaseException | str) -> EngineUnavailable:
        reason = exc if isinstance(exc, str) else failure_reason(exc)
        return EngineUnavailable(f"the Docker engine is not reachable at {self.host}: {reason}")

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.pid != os.getpid():
            # A connection inherited through fork() belongs to the parent.
            conn = Connection(self._endpoint.connect)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()

    def engine_info(self) -> EngineInfo:
        """What the engine is and the API version envd speaks to it (asked once)."""
        with self._info_lock:
            if self._info is None:
                # Docker asks containerd for its versions: slower than the
                # shortest read timeouts callers pick for other calls.
                doc = self._send(
                    "GET", "/version", versioned=False, timeout=max(self.timeout, 30.0)
                )
                if doc.status != 200:
                    raise self._unavailable(f"it answered HTTP {doc.status} to /version")
                try:
                    answer = doc.json()
                except ValueError:
                    answer = None
                self._info = versions.negotiate(answer, self.host)
            return self._info

    def learn_from_ping(self, headers: Mapping[str, str]) -> None:
        """Take the engine's name and API version from a ping's headers when they say
        both (``versions.from_ping``), so ``engine_info`` needs no ``/version`` call."""
        info = versions.from_ping(headers, self.host)
        if info is not None:
            with self._info_lock:
                if self._info is None:
                    self._info = info

    def ignored_limits(self) -> LimitSupport:
        """The resource limits this engine would create a container without, saying so
        only in its own log or a create warning (``Engine.ignored_limits``).

        Asked of the engine's ``/info`` once per session, and only when a spec
        sets a limit (the caller's rule): most specs set none.
        """
        if self._limits_note is None:
            # Not under _info_lock: the request itself reads the API version.
            # Two threads asking at once both ask; the answers agree.
            resp = self._send("GET", "/info")
            if resp.status != 200:
                raise self._error(resp, "engine info")
            self._limits_note = versions.ignored_limits(resp.json())
        return self._limits_note

    def describe(self) -> dict[str, str]:
        """Which engine this is and how envd reaches it (for ``status``)."""
        info = self.engine_info()
        return {
            "endpoint": self.host,
            "context": self.target.context,
            "source": self.target.source,
            "name": info.kind,
            "version": info.version,
            "api_version": info.api_used,
            "engine_api_version": info.api_version,
        }

    def api_version(self) -> str:
        return self.engine_info().api_used

    @property
    def api(self) -> versions.Version:
        return self.engine_info().api

    def _url(self, path: str, query: Mapping[str, str | int] | None, versioned: bool = True) -> str:
        url = f"/v{self.api_version()}{path}" if versioned else path
        if query:
            url += "?" + urlencode(query)
        return url

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None = None,
        body: Json = None,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = _DEFAULT_TIMEOUT,
        versioned: bool = True,
    ) -> Response:
        """One request on this thread's keep-alive connection, retried once if stale."""
        url = self._url(path, query, versioned)
        hdrs = dict(headers or {})
        payload = data
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            hdrs.update(_JSON)
        read_timeout = self.timeout if timeout == _DEFAULT_TIMEOUT else timeout
        conn = self._connection()
        for attempt in (0, 1):
            try:
                status, resp_headers = conn.request(method, url, hdrs, payload, read_timeout)
                body_bytes = b"".join(conn.body_chunks(method, status, resp_headers))
                return Response(status, body_bytes, resp_headers)
            except StaleConnection:
                # A keep-alive connection the engine closed while idle: retry
                # once on a fresh one. A fresh connection failing is real.
                conn.close()
                if attempt == 0:
                    continue
                raise self._unavailable("it closed the connection") from None
            except (OSError, ProtocolError, ValueError) as exc:
                conn.close()
                raise self._unavailable(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None = None,
        body: Json = None,
        *,
        what: str = "",
        ok: tuple[int, ...] = (200, 201, 204, 304),
        **kw: Any,
    ) -> Response:
        resp = self._send(method, path, query, body, **kw)
        race = _race(method, resp)
        if race is not None:
            _, _, tries, step_s, within_s = race
            deadline = time.monotonic() + within_s
            for _ in range(tries):
                if _race(method, resp) is not race or time.monotonic() >= deadline:
                    break
                time.sleep(step_s)
                resp = self._send(method, path, query, body, **kw)
        if resp.status in ok:
            return resp
        raise self._error(resp, what)

    @staticmethod
    def _error(resp: Response, what: str = "") -> EngineError:
        message, cause = payloads.engine_message(resp.body), payloads.engine_cause(resp.body)
        return payloads.api_error(resp.status, message, what, cause)

    _api_error = staticmethod(payloads.api_error)

    def _stream(self, path: str, q: Mapping[str, str | int]) -> Iterator[bytes]:
        """A streamed answer's body on a dedicated connection with no read timeout
        (it may idle for ever), closed when done."""
        conn = Connection(self._endpoint.connect)
        try:
            try:
                status, headers = conn.request("GET", self._url(path, q), {}, None, None)
            except (OSError, ProtocolError, StaleConnection, ValueError) as exc:
                raise self._unavailable(exc) from None
            chunks = conn.body_chunks("GET", status, headers)
            if status != 200:
                raise self._error(Response(status, b"".join(chunks), headers))
            yield from chunks
        finally:
            conn.close()
