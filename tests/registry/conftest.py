"""A real local image registry for the lock tests: Debian's ``docker-registry``.

The ``registry`` session fixture starts ``docker-registry serve CONFIG`` bound
to 127.0.0.1 on a free port (the engine allows plain HTTP to 127.0.0.0/8
registries by default), with its storage in a temporary directory, waits for
``/v2/`` to answer (with a deadline), and stops it at the end of the session.
Every local image reference the tests made into it (tags and ``repo@digest``
references) is removed afterwards; images only those references kept alive
go with them, shared ones (the busybox test image) stay.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, free_tcp_port, wait_for

REGISTRY_BIN = "docker-registry"


@dataclass(frozen=True)
class Registry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``, ``log`` its output file."""

    host: str
    log: Path
    client: Any  # docker.DockerClient

    def ref(self, repo: str, tag: str = "1") -> str:
        """``127.0.0.1:PORT/<repo>:<tag>``."""
        return f"{self.host}/{repo}:{tag}"

    def push(self, image: str, repo: str, tag: str = "1") -> str:
        """Tag ``image`` as ``repo:tag`` in this registry, push it; return its manifest digest."""
        ref = self.ref(repo, tag)
        self.client.images.get(image).tag(ref)
        digest = ""
        for event in self.client.api.push(ref, stream=True, decode=True):
            if event.get("error"):
                raise AssertionError(f"pushing {ref} failed: {event['error']}")
            aux = event.get("aux") or {}
            digest = aux.get("Digest", digest)
        assert digest.startswith("sha256:"), f"no digest reported for {ref}"
        return str(digest)

    def manifest_digest(self, repo: str, tag: str = "1") -> str:
        """What the registry itself serves for ``repo:tag`` (Docker-Content-Digest)."""
        req = urllib.request.Request(
            f"http://{self.host}/v2/{repo}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(resp.headers["Docker-Content-Digest"])

    def local_refs(self) -> list[str]:
        """Every local tag and ``repo@digest`` reference that names this registry."""
        refs: list[str] = []
        for image in self.client.images.list(all=True):
            attrs = image.attrs
            for ref in [*(attrs.get("RepoTags") or []), *(attrs.get("RepoDigests") or [])]:
                if ref.startswith(self.host + "/"):
                    refs.append(ref)
        return refs

    def untag_all(self) -> None:
        """Drop every local reference to this registry (images kept only by them go too)."""
        import docker

        for ref in self.local_refs():
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.client.images.remove(ref)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False


def _start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    storage = tmp / "storage"
    storage.mkdir(exist_ok=True)
    config = tmp / "config.yml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: {storage}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}
            """
        )
    )
    log = open(tmp / "registry.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [REGISTRY_BIN, "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@pytest.fixture(scope="session", autouse=True)
def _envd_from_this_checkout() -> Iterator[None]:
    """``python -m envd`` in a subprocess imports this checkout, installed or not."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        )
        yield


@pytest.fixture(scope="session")
def registry(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A ``docker-registry`` on 127.0.0.1:<free port>, stopped (and its refs untagged) at the end."""
    if shutil.which(REGISTRY_BIN) is None:
        message = f"{REGISTRY_BIN} is not installed (apt-get install docker-registry)"
        if os.environ.get("ENVD_REQUIRE_DOCKER", "") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("registry")
    proc: subprocess.Popen[bytes] | None = None
    host = ""
    try:
        # The port is free when chosen; another process may take it before the
        # registry binds it, so a registry that dies at once is retried.
        for _attempt in range(3):
            port = free_tcp_port()
            proc = _start(tmp, port)
            url = f"http://127.0.0.1:{port}/v2/"
            try:
                wait_for(
                    lambda: proc.poll() is not None or _answers(url),  # noqa: B023
                    timeout=30,
                    ignore=(OSError,),
                    message=f"the registry to answer {url}",
                )
            except AssertionError:
                _stop(proc)
                raise
            if proc.poll() is None:
                host = f"127.0.0.1:{port}"
                break
        if not host:
            log = (tmp / "registry.log").read_text(errors="replace")
            raise AssertionError(f"{REGISTRY_BIN} exited at start-up:\n{log}")
        reg = Registry(host, tmp / "registry.log", docker_client)
        try:
            yield reg
        finally:
            reg.untag_all()
    finally:
        if proc is not None:
            _stop(proc)
