"""Which engine the user means: ``DOCKER_HOST``, ``DOCKER_CONTEXT`` or the Docker CLI's context.

The Docker CLI's order: ``DOCKER_HOST`` wins (the ``default`` context pointed
elsewhere), then ``DOCKER_CONTEXT``, then ``currentContext`` in the CLI's
``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``), then the local socket.
A context lives in ``contexts/meta/<sha256 of its name>/meta.json`` and its
TLS files in ``contexts/tls/<sha256>/docker/``.

It lives this low (below both ``envd.inputs`` and ``envd.engine``) so the
engine adapter connects to, and consent reasons about, the same endpoint.
Those files are the user's own but read as untrusted input: sizes capped,
types checked, any problem one sentence (``UsageError``, exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from envd.values.errors import UsageError
from envd.values.record import value

DEFAULT_HOST = "unix:///var/run/docker.sock"
_MAX_FILE = 1 << 20  # a CLI config or context meta larger than this is not one


@value
class EngineHost:
    """An engine endpoint and how to reach it securely."""

    host: str  # unix:///path, tcp://host:port, ssh://[user@]host[:port]
    context: str  # the Docker context it came from ("default" for DOCKER_HOST / the socket)
    source: str  # "DOCKER_HOST" | "DOCKER_CONTEXT" | "config" | "default" | "explicit"
    tls: bool = False
    tls_verify: bool = True
    ca_cert: str = ""  # paths; empty: the system's trust store / no client certificate
    client_cert: str = ""
    client_key: str = ""

    @property
    def unix_path(self) -> str:
        """The socket path of a ``unix://`` host ("" for other schemes)."""
        url = urlsplit(self.host)
        if url.scheme in ("unix", ""):
            return url.path or "/var/run/docker.sock"
        return ""


def config_dir(environ: Mapping[str, str]) -> str:
    """The Docker CLI's configuration directory."""
    explicit = environ.get("DOCKER_CONFIG", "")
    if explicit:
        return explicit
    return os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".docker")


def _read_json(path: str, what: str) -> dict[str, object] | None:
    """A JSON object from a user's file, None when absent; one sentence when malformed."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_FILE:
        raise UsageError(f"{what} {path} is larger than 1 MiB; it is not one")
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise UsageError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{what} {path} is not a JSON object")
    return doc


def _env_tls(host: str, environ: Mapping[str, str], context: str, source: str) -> EngineHost:
    """The ``default`` context: TLS from ``DOCKER_TLS_VERIFY`` / ``DOCKER_TLS`` / ``DOCKER_CERT_PATH``."""
    verify = environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    tls = verify or environ.get("DOCKER_TLS", "") not in ("", "0")
    tls = tls or urlsplit(host).scheme == "https"
    if not tls:
        return EngineHost(host, context, source)
    certs = environ.get("DOCKER_CERT_PATH", "") or config_dir(environ)

    def pem(name: str) -> str:
        path = os.path.join(certs, name)
        return path if os.path.isfile(path) else ""

    return EngineHost(
        host,
        context,
        source,
        tls=True,
        tls_verify=verify or urlsplit(host).scheme == "https",
        ca_cert=pem("ca.pem"),
        client_cert=pem("cert.pem"),
        client_key=pem("key.pem"),
    )


def check_host(host: str, where: str) -> str:
    """``host`` if envd can reach an engine at it; one sentence naming ``where`` if not."""
    url = urlsplit(host)
    if url.scheme in ("unix", "tcp", "http", "https", "ssh") or (not url.scheme and host):
        if url.scheme == "ssh":
            if url.password is not None:
                raise UsageError(f"{where}: {host!r} carries a password; use an SSH key instead")
            if url.path not in ("", "/") or url.query or url.fragment:
                raise UsageError(f"{where}: {host!r} must be ssh://[user@]host[:port], no path")
            if not url.hostname or url.hostname.startswith("-"):
                raise UsageError(f"{where}: {host!r} names no usable host")
        return host
    raise UsageError(
        f"{where}: the engine address {host!r} is not unix://, tcp://, https:// or ssh://"
    )


def _context(name: str, environ: Mapping[str, str], source: str) -> EngineHost:
    where = "DOCKER_CONTEXT" if source == "DOCKER_CONTEXT" else "the Docker CLI's currentContext"
    if name == "default":
        return _env_tls(DEFAULT_HOST, environ, "default", source)
    root = os.path.join(config_dir(environ), "contexts")
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_path = os.path.join(root, "meta", digest, "meta.json")
    meta = _read_json(meta_path, f"the meta of Docker context {name!r}")
    if meta is None:
        raise UsageError(
            f'{where} names the Docker context "{name}", which does not exist '
            f"(no {meta_path}); run `docker context ls`"
        )
    endpoints = meta.get("Endpoints")
    docker = endpoints.get("docker") if isinstance(endpoints, dict) else None
    host = docker.get("Host") if isinstance(docker, dict) else None
    if not isinstance(host, str) or not host:
        raise UsageError(f'Docker context "{name}" ({meta_path}) has no docker endpoint Host')
    check_host(host, f'Docker context "{name}"')
    assert isinstance(docker, dict)
    skip_verify = docker.get("SkipTLSVerify") is True
    tls_dir = os.path.join(root, "tls", digest, "docker")

    def pem(file: str) -> str:
        path = os.path.join(tls_dir, file)
        return path if os.path.isfile(path) else ""

    ca, cert, key = pem("ca.pem"), pem("cert.pem"), pem("key.pem")
    scheme = urlsplit(host).scheme
    tls = scheme == "https" or (scheme == "tcp" and bool(ca or cert or skip_verify))
    if not tls:
        return EngineHost(host, name, source)
    return EngineHost(
        host,
        name,
        source,
        tls=True,
        tls_verify=not skip_verify,
        ca_cert=ca,
        client_cert=cert,
        client_key=key,
    )


def resolve(environ: Mapping[str, str] | None = None) -> EngineHost:
    """The engine the Docker CLI would talk to with this environment."""
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST", "")
    if host:
        check_host(host, "DOCKER_HOST")
        return _env_tls(host, env, "default", "DOCKER_HOST")
    name = env.get("DOCKER_CONTEXT", "")
    if name:
        return _context(name, env, "DOCKER_CONTEXT")
    config_path = os.path.join(config_dir(env), "config.json")
    config = _read_json(config_path, "the Docker CLI config")
    current = (config or {}).get("currentContext")
    if isinstance(current, str) and current:
        return _context(current, env, "config")
    return _env_tls(DEFAULT_HOST, env, "default", "default")


def explicit(host: str, environ: Mapping[str, str] | None = None) -> EngineHost:
    """A host given in code (tests, a private engine): TLS settings from the environment."""
    env = os.environ if environ is None else environ
    return _env_tls(host, env, "default", "explicit")


def ssh_command(host: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """The command the Docker CLI runs to reach an ``ssh://`` engine: ``docker system dial-stdio``."""
    env = os.environ if environ is None else environ
    url = urlsplit(check_host(host, "the engine address"))
    argv = ["ssh"]
    opts = env.get("DOCKER_SSH_OPTS", "")
    if opts:
        import shlex

        argv += shlex.split(opts)
    argv += ["-o", "ConnectTimeout=30", "-T"]
    if url.username:
        argv += ["-l", url.username]
    if url.port:
        argv += ["-p", str(url.port)]
    argv += ["--", str(url.hostname), "docker", "system", "dial-stdio"]
    return argv
