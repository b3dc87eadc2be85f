"""Which engine envd talks to: DOCKER_HOST, DOCKER_CONTEXT and the Docker CLI's current context."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from envd.engine.docker import versions
from envd.engine.docker.payloads import api_error, create_body, network_body
from envd.spec.engine_host import DEFAULT_HOST, resolve, ssh_command
from envd.values.errors import Conflict, EngineUnavailable, NotFound, UsageError
from envd.values.types import ContainerCreate, NetworkAttachment


def _context(config: Path, name: str, host: str, tls: bool = False, skip: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": skip}
    doc = {"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}
    (meta / "meta.json").write_text(json.dumps(doc))
    if tls:
        certs = config / "contexts" / "tls" / digest / "docker"
        certs.mkdir(parents=True)
        for pem in ("ca.pem", "cert.pem", "key.pem"):
            (certs / pem).write_text("x")


def _env(config: Path, **extra: str) -> dict[str, str]:
    return {"DOCKER_CONFIG": str(config), "HOME": "/nonexistent", **extra}


def test_no_configuration_is_the_local_socket(tmp_path: Path) -> None:
    """Without DOCKER_HOST, DOCKER_CONTEXT or a current context envd uses /var/run/docker.sock."""
    got = resolve(_env(tmp_path))
    assert (got.host, got.context, got.source, got.tls) == (
        DEFAULT_HOST,
        "default",
        "default",
        False,
    )


def test_precedence_is_the_docker_clis(tmp_path: Path) -> None:
    """DOCKER_HOST beats DOCKER_CONTEXT, which beats the config's currentContext."""
    _context(tmp_path, "remote", "tcp://10.0.0.5:2375")
    _context(tmp_path, "other", "unix:///run/other.sock")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "other"}))
    assert resolve(_env(tmp_path)).host == "unix:///run/other.sock"
    assert resolve(_env(tmp_path)).source == "config"
    got = resolve(_env(tmp_path, DOCKER_CONTEXT="remote"))
    assert (got.host, got.context, got.source) == (
        "tcp://10.0.0.5:2375",
        "remote",
        "DOCKER_CONTEXT",
    )
    got = resolve(_env(tmp_path, DOCKER_CONTEXT="remote", DOCKER_HOST="unix:///x.sock"))
    assert (got.host, got.context, got.source) == ("unix:///x.sock", "default", "DOCKER_HOST")
    assert resolve(_env(tmp_path, DOCKER_CONTEXT="default")).host == DEFAULT_HOST


def test_a_context_with_tls_material_speaks_tls(tmp_path: Path) -> None:
    """A tcp context with files under contexts/tls uses them; SkipTLSVerify turns verification off."""
    _context(tmp_path, "secure", "tcp://engine:2376", tls=True)
    _context(tmp_path, "lax", "tcp://engine:2376", skip=True)
    got = resolve(_env(tmp_path, DOCKER_CONTEXT="secure"))
    assert got.tls and got.tls_verify and got.ca_cert.endswith("docker/ca.pem")
    assert got.client_cert.endswith("cert.pem") and got.client_key.endswith("key.pem")
    lax = resolve(_env(tmp_path, DOCKER_CONTEXT="lax"))
    assert lax.tls and not lax.tls_verify


def test_docker_tls_verify_and_cert_path(tmp_path: Path) -> None:
    """DOCKER_TLS_VERIFY makes tcp:// TLS with the certificates in DOCKER_CERT_PATH."""
    for pem in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / pem).write_text("x")
    got = resolve(
        {"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}
    )
    assert (got.tls, got.tls_verify, got.ca_cert) == (True, True, str(tmp_path / "ca.pem"))
    assert resolve({"DOCKER_HOST": "tcp://h:2375"}).tls is False


@pytest.mark.parametrize(
    ("files", "env", "message"),
    [
        ({}, {"DOCKER_CONTEXT": "nope"}, 'DOCKER_CONTEXT names the Docker context "nope"'),
        ({"config.json": "{not json"}, {}, "is not valid JSON"),
        ({"config.json": "[1]"}, {}, "is not a JSON object"),
        ({}, {"DOCKER_HOST": "ftp://x"}, "is not unix://, tcp://, https:// or ssh://"),
        ({}, {"DOCKER_HOST": "ssh://u:pw@h"}, "carries a password"),
        ({}, {"DOCKER_HOST": "ssh://h/path"}, "no path"),
        ({}, {"DOCKER_HOST": "ssh://-oProxyCommand=x"}, "names no usable host"),
    ],
)
def test_bad_configuration_is_one_sentence(
    tmp_path: Path, files: dict[str, str], env: dict[str, str], message: str
) -> None:
    """A missing context, a broken config.json or a bad host is a UsageError (exit 2)."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        resolve(_env(tmp_path, **env))
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_a_context_without_docker_endpoint_is_refused(tmp_path: Path) -> None:
    """A context meta.json with no docker endpoint is named in one sentence."""
    _context(tmp_path, "k8s", "")
    with pytest.raises(UsageError, match=r'context "k8s" .* has no docker endpoint'):
        resolve(_env(tmp_path, DOCKER_CONTEXT="k8s"))


def test_ssh_command_is_the_docker_clis() -> None:
    """ssh://user@host:port runs `ssh -l user -p port -- host docker system dial-stdio`."""
    assert ssh_command("ssh://me@build.example:2222", {}) == [
        "ssh",
        "-o",
        "ConnectTimeout=30",
        "-T",
        "-l",
        "me",
        "-p",
        "2222",
        "--",
        "build.example",
        "docker",
        "system",
        "dial-stdio",
    ]
    assert ssh_command("ssh://h", {"DOCKER_SSH_OPTS": "-i /k"})[:3] == ["ssh", "-i", "/k"]


# --------------------------------------------------------------------------- versions


def _version(api: str, **extra: object) -> dict[str, object]:
    return {"Version": "x", "ApiVersion": api, **extra}


@pytest.mark.parametrize(
    ("engine", "spoken"), [("1.41", "1.41"), ("1.44", "1.44"), ("1.55", "1.55"), ("1.60", "1.55")]
)
def test_the_version_spoken_is_the_lower_of_both(engine: str, spoken: str) -> None:
    """envd speaks the engine's API version, capped at the newest it knows."""
    assert versions.negotiate(_version(engine), "h").api_used == spoken


def test_an_engine_older_than_1_41_is_refused_in_one_sentence() -> None:
    """Docker 19.03 (API 1.40) is refused with EngineUnavailable (exit 3) naming both versions."""
    with pytest.raises(
        EngineUnavailable, match=r"speaks Docker API 1\.40, older than the 1\.41"
    ) as e:
        versions.negotiate(_version("1.40"), "unix:///s")
    assert e.value.exit_code == 3


def test_podman_is_told_apart() -> None:
    """Podman's /version names a "Podman Engine" component."""
    doc = _version("1.41", Components=[{"Name": "Podman Engine", "Version": "4.3.1"}])
    assert versions.negotiate(doc, "h").kind == "Podman"
    assert versions.negotiate(_version("1.41"), "h").kind == "Docker"


# Headers of a real /_ping answer: Docker 20.10 and Podman 4.3's Docker API.
DOCKER_PING = {"api-version": "1.41", "server": "Docker/20.10.24+dfsg1 (linux)"}
PODMAN_PING = {
    "api-version": "1.41",
    "server": "Libpod/4.3.1 (linux)",
    "libpod-api-version": "4.3.1",
}


def test_a_ping_names_the_engine_and_its_api_version() -> None:
    """A ping's Api-Version and Server headers give what /version would: Docker or Podman."""
    docker = versions.from_ping(DOCKER_PING, "h")
    podman = versions.from_ping(PODMAN_PING, "h")
    assert docker is not None and podman is not None
    assert (docker.kind, docker.version, docker.api_used) == ("Docker", "20.10.24+dfsg1", "1.41")
    assert (podman.kind, podman.version, podman.api_used) == ("Podman", "4.3.1", "1.41")
    newer = versions.from_ping({"api-version": "1.60", "server": "Docker/99.0.1 (linux)"}, "h")
    assert newer is not None and newer.api_used == "1.55"


@pytest.mark.parametrize(
    "headers",
    [
        {"server": "Docker/20.10.24 (linux)"},
        {"api-version": "1.41"},
        {"api-version": "1.41", "server": "nginx/1.25"},
        {"api-version": "latest", "server": "Docker/20.10.24 (linux)"},
    ],
)
def test_a_ping_that_does_not_say_both_leaves_it_to_version(headers: dict[str, str]) -> None:
    """Without both headers in the engine's own form envd asks /version, as before."""
    assert versions.from_ping(headers, "h") is None


def test_a_ping_from_an_engine_older_than_1_41_is_refused() -> None:
    """An engine whose ping says API 1.40 is refused as its /version answer would be."""
    with pytest.raises(EngineUnavailable, match=r"speaks Docker API 1\.40, older than the 1\.41"):
        versions.from_ping({"api-version": "1.40", "server": "Docker/19.03.15 (linux)"}, "h")


def test_payloads_follow_the_version() -> None:
    """Below 1.44 create takes one network and CheckDuplicate is sent; from 1.44 neither."""
    spec = ContainerCreate(
        name="c", image="i", labels={}, networks=(NetworkAttachment("a"), NetworkAttachment("b"))
    )
    old = create_body(spec, (1, 41))["NetworkingConfig"]["EndpointsConfig"]
    new = create_body(spec, (1, 44))["NetworkingConfig"]["EndpointsConfig"]
    assert (list(old), list(new)) == (["a"], ["a", "b"])
    assert network_body("n", {}, "bridge", False, (1, 41))["CheckDuplicate"] is True
    assert "CheckDuplicate" not in network_body("n", {}, "bridge", False, (1, 44))


@pytest.mark.parametrize(
    ("cause", "kind"),
    [
        ("that name is already in use", Conflict),
        ("network not found", NotFound),
        ("container already exists", Conflict),  # a namespace owner with joined containers
    ],
)
def test_podman_500s_map_by_cause(cause: str, kind: type) -> None:
    """Podman's 500 answers become NotFound / Conflict by their cause, as Docker's 404/409."""
    assert isinstance(api_error(500, "m", "w", cause), kind)
    assert not isinstance(api_error(500, "m", "w", ""), NotFound | Conflict)
