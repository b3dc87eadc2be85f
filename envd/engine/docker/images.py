"""Building and pulling images: the one place envd uses the Docker SDK.

Builds need a context tarred the way ``.dockerignore`` says and pulls need
the registry credentials of the docker CLI's config; the SDK does both. It
is imported lazily (about 190 ms), so only a command that builds or pulls
pays for it. Its failures become envd's errors through the callbacks
``DockerEngine`` hands in, so the error mapping stays in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from envd.engine.docker.payloads import split_ref
from envd.spec.engine_host import EngineHost
from envd.values.errors import EngineError, EngineUnavailable
from envd.values.types import BuildRequest

if TYPE_CHECKING:
    from envd.engine.base import ProgressFn

# (status, engine message, what was asked) → the error to raise
ApiErrorFn = Callable[[int, str, str], EngineError]
# (the failure) → EngineUnavailable
UnavailableFn = Callable[[BaseException], EngineUnavailable]


class SdkImages:
    """Pulls and builds through one lazily made SDK client."""

    def __init__(
        self,
        target: EngineHost,
        timeout: float,
        api_version: Callable[[], str],
        api_error: ApiErrorFn,
        unavailable: UnavailableFn,
    ) -> None:
        self._target = target
        self._timeout = timeout
        self._version = api_version
        self._api_error = api_error
        self._unavailable = unavailable
        self._sdk: Any = None  # docker.APIClient: the SDK is untyped
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._sdk is None:
                import docker  # lazy: 190 ms; only builds and pulls need it

                t = self._target
                kwargs: dict[str, Any] = {
                    "base_url": t.host,
                    "version": self._version(),
                    "timeout": max(self._timeout, 600),
                }
                if t.tls:
                    kwargs["base_url"] = "https://" + t.host.split("://", 1)[-1]
                    kwargs["tls"] = docker.tls.TLSConfig(  # type: ignore[attr-defined]
                        client_cert=(t.client_cert, t.client_key)
                        if t.client_cert and t.client_key
                        else None,
                        ca_cert=t.ca_cert or None,
                        verify=t.ca_cert or True if t.tls_verify else False,
                    )
                if t.host.startswith("ssh://"):
                    # The ssh binary, as the Docker CLI does (not paramiko).
                    kwargs["use_ssh_client"] = True
                self._sdk = docker.APIClient(**kwargs)  # type: ignore[attr-defined]
            return self._sdk

    def _error(self, exc: Exception, what: str) -> EngineError:
        import docker.errors

        if isinstance(exc, docker.errors.APIError):
            return self._api_error(exc.status_code or 0, str(exc.explanation or exc), what)
        if isinstance(exc, docker.errors.DockerException | OSError):
            return self._unavailable(exc)
        return EngineError(f"{what}: {exc}")

    def pull(self, ref: str, progress: ProgressFn | None = None) -> None:
        """Pull ``ref``; progress lines as the registry sends layers."""
        import docker.errors

        api = self._client()
        repo, tag = split_ref(ref)
        try:
            for event in api.pull(repo, tag=tag, stream=True, decode=True):
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    detail = event.get("errorDetail") or {}
                    message = str(detail.get("message") or event["error"])
                    raise EngineError(f"pulling {ref} failed: {message}")
                if progress is not None and event.get("status"):
                    line = str(event["status"])
                    if event.get("id"):
                        line = f"{event['id']}: {line}"
                    if event.get("progress"):
                        line += f" {event['progress']}"
                    progress(line)
        except EngineError:
            raise
        except (docker.errors.DockerException, OSError) as exc:
            raise self._error(exc, f"pulling {ref} failed") from None

    def build(self, req: BuildRequest, progress: ProgressFn | None = None) -> str:
        """Build ``req``; the id the build reported ("" if none)."""
        import docker.errors

        api = self._client()
        image_id = ""
        try:
            for event in api.build(
                path=req.context,
                dockerfile=req.dockerfile,
                buildargs=dict(req.args),
                target=req.target or None,
                labels=dict(req.labels),
                tag=req.tag,
                rm=True,
                forcerm=True,  # a failed step must not leave its container behind
                decode=True,
            ):
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    detail = event.get("errorDetail") or {}
                    message = str(detail.get("message") or event["error"]).strip()
                    raise EngineError(f"building {req.tag} failed: {message}")
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
                if progress is not None and event.get("stream"):
                    for line in str(event["stream"]).splitlines():
                        if line.strip():
                            progress(line)
        except EngineError:
            raise
        except (docker.errors.DockerException, OSError) as exc:
            raise self._error(exc, f"building {req.tag} failed") from None
        return image_id
