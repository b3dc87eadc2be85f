"""Talk to a project's daemon over its unix socket (HTTP + JSON)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from envd.values.errors import EnvdError

if TYPE_CHECKING:
    from envd.inputs.secrets import CommandValue


class DaemonUnavailable(EnvdError):
    """No daemon answers on the project's socket."""


class ForeignDaemon(EnvdError):
    """The project's socket is served by another user's process: nothing is sent to it."""

    exit_code = 2


class Reload(NamedTuple):
    generation: int  # the generation whose pass covers the request
    seq: int  # the event sequence number before it
    environ_applied: bool  # False: a daemon older than the `environ` field ignored it


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None, trust_foreign: bool = False) -> None:
        super().__init__("envd", timeout=timeout)
        self._path = path
        self._trust_foreign = trust_foreign

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
            if not self._trust_foreign:
                _check_peer(sock, self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _check_peer(sock: socket.socket, path: str) -> None:
    # Before one byte is sent: in a shared or cloned project directory the
    # socket may be served by someone else, who would receive our variables.
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    if uid != os.geteuid():
        raise ForeignDaemon(
            f"{path} is served by process {pid} of uid {uid}, not by you (uid {os.geteuid()});"
            " envd sent it nothing"
        )


class DaemonClient:
    def __init__(
        self, socket_path: Path, timeout: float = 10.0, *, trust_foreign: bool = False
    ) -> None:
        """``trust_foreign``: skip the peer check; only for requests that carry
        nothing of the caller's (``stop``), never for ``reload``."""
        self.path = str(socket_path)
        self.timeout = timeout
        self.trust_foreign = trust_foreign

    def _request(
        self,
        method: str,
        url: str,
        body: Mapping[str, object] | None = None,
        timeout: float | None = None,
    ) -> Any:  # decoded JSON: its shape is the endpoint's
        conn = _UnixConnection(
            self.path, timeout if timeout is not None else self.timeout, self.trust_foreign
        )
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload else {}
            conn.request(method, url, body=payload, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonUnavailable(f"the daemon at {self.path} does not answer: {exc}") from None
        finally:
            conn.close()
        result = json.loads(data or b"null")
        if resp.status >= 400:
            message = result.get("error") if isinstance(result, dict) else str(result)
            raise EnvdError(f"the daemon refused: {message}")
        return result

    def alive(self) -> bool:
        try:
            self._request("GET", "/v1/ping", timeout=2.0)
            return True
        except ForeignDaemon:
            raise
        except EnvdError:
            return False

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/status")
        return result

    def plan(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/v1/plan", timeout=60.0)
        return result

    def reload(
        self,
        wait_timeout: float | None = None,
        restart_exited: bool = True,
        environ: Mapping[str, str] | None = None,
        commands: Mapping[str, CommandValue] | None = None,
        rerun: tuple[str, ...] = (),
    ) -> Reload:
        """Ask for a pass. ``environ`` (the caller's process environment) is what
        the daemon reads the spec with from this pass on; None keeps its current one.
        ``commands``: what the spec's command secrets printed when the caller ran them."""
        body: dict[str, object] = {
            "wait_timeout": wait_timeout,
            "restart_exited": restart_exited,
            "reason": "envd up",
        }
        if environ is not None:
            body["environ"] = dict(environ)
        if commands is not None:
            body["commands"] = {
                name: {
                    "command": list(cv.command),
                    "value": base64.b64encode(cv.value).decode("ascii"),
                }
                for name, cv in commands.items()
            }
        if rerun:
            body["rerun"] = list(rerun)
        result = self._request("POST", "/v1/reload", body)
        return Reload(
            int(result["generation"]),
            int(result["seq"]),
            environ is None or result.get("environ") is True,
        )

    def stop(self) -> None:
        self._request("POST", "/v1/stop")

    def act(self, action: str, service: str) -> tuple[int, int]:
        """Ask for ``action`` on ``service``; (the generation of the pass doing it,
        the event sequence number before it)."""
        result = self._request("POST", "/v1/action", {"action": action, "service": service})
        return int(result["generation"]), int(result["seq"])

    def ui_url(self) -> str:
        """The dashboard's URL, token included (this socket is the user's own)."""
        return str(self._request("GET", "/v1/ui")["url"])

    def events(self, since: int | None = None) -> Iterator[dict[str, Any]]:
        """Follow the event stream (JSON lines) until the daemon closes it."""
        conn = _UnixConnection(self.path, None)
        url = "/v1/events" + (f"?since={since}" if since is not None else "")
        try:
            conn.request("GET", url)
            resp = conn.getresponse()
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonUnavailable(f"the daemon's event stream broke: {exc}") from None
        finally:
            conn.close()
