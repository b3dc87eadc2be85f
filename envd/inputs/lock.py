"""``envd.lock``: pinned image digests and spec digests (contract §6).

The lock is diff-friendly TOML, sorted, one table per environment and
service. While it exists, ``up`` runs exactly the locked images (pulled by
digest, so a tag that moved in the registry changes nothing until
``envd lock`` runs again). ``--frozen`` also refuses to start when the spec,
an image reference or a build context drifted from it.

The lock is committed and checked on other machines, so its digests are of
the spec as written, before interpolation (the parsed TOML with the
environment's overlay applied, ``${VAR}`` references kept as they are): the
same on every machine, and free of any value from the environment, ``.env``
or a secret. Format 1 digested the interpolated spec, and a dictionary
attack on its digests recovered a password passed through ``${PGPW}``; it is
still read (its pinned images still apply) but ``--frozen`` asks for a new
lock. The only interpolated values left in the lock are image references
(``image``), which must name what runs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envd.inputs.safefile import read_regular, write_replacing
from envd.spec.load import LoadedSpec, apply_environment, parse_toml
from envd.spec.locate import Locator
from envd.values.errors import LockMismatch

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_FILE = "envd.lock"
LOCK_VERSION = 2  # 2: digests of the spec as written (1: of the interpolated spec)
_READABLE = (1, LOCK_VERSION)
_MAX_BYTES = 16 * 1024 * 1024  # far above any real lock; a bigger file is refused unread
BASE = "default"


@dataclass(frozen=True)
class LockedService:
    image: str  # the reference the spec names (or the build tag)
    resolved: str  # what runs: repo@sha256:… (pulled) or the image id (local/built)
    image_id: str
    config: str  # digest of the service's resolved spec
    context: str = ""  # build context digest (builds only)


@dataclass(frozen=True)
class LockedEnvironment:
    spec: str
    services: Mapping[str, LockedService] = field(default_factory=dict)


@dataclass(frozen=True)
class Lock:
    environments: Mapping[str, LockedEnvironment]
    version: int = LOCK_VERSION  # an older one pins images but cannot be checked

    def for_env(self, environment: str | None) -> LockedEnvironment | None:
        return self.environments.get(environment or BASE)


def lock_path(project_dir: Path) -> Path:
    return project_dir / LOCK_FILE


def _digest(data: Any) -> str:
    # default=str: a TOML date or time is digested as written.
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def spec_digest(loaded: LoadedSpec) -> str:
    """Digest of the spec as written, with the environment's overlay applied.

    Not interpolated: no variable's value reaches the lock, and the digest is
    the same on every machine. The project name is as written too: one derived
    from the checkout's directory name must not make a CI clone "drift".
    """
    return _digest(_written(loaded))


def service_digest(loaded: LoadedSpec, service: str) -> str:
    """Per-field short digests (``command=ab12cd34,env=…``) of the service as written:
    drift can name the field."""
    data = _written(loaded)["services"][service]
    return ",".join(f"{k}={_digest(v)[7:15]}" for k, v in sorted(data.items()))


def _written(loaded: LoadedSpec) -> dict[str, Any]:
    """The spec file as parsed, the environment's overlay applied, not interpolated."""
    text = loaded.file.read_text(encoding="utf-8")
    return _overlaid(text, str(loaded.file), loaded.environment)


@functools.lru_cache(maxsize=8)
def _overlaid(text: str, display: str, environment: str | None) -> dict[str, Any]:
    # Cached: a check digests every service of one text; callers only read it.
    raw = parse_toml(text, display)
    data = apply_environment(raw, environment, Locator(text), display)
    data.pop("environments", None)
    return data


def _changed(old: str, new: str) -> list[str]:
    a = dict(p.split("=", 1) for p in old.split(",") if "=" in p)
    b = dict(p.split("=", 1) for p in new.split(",") if "=" in p)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def read(project_dir: Path) -> Lock | None:
    path = lock_path(project_dir)
    try:
        data = read_regular(path, _MAX_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a FIFO, a device, a huge file: never waited on or read
        raise LockMismatch(
            f"{path.name} cannot be read ({exc.strerror or exc}); regenerate it with `envd lock`"
        ) from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
        version = raw.get("version")
        if version not in _READABLE:
            raise ValueError(f"unsupported lock version {version!r}")
        envs: dict[str, LockedEnvironment] = {}
        for env, body in raw.get("environments", {}).items():
            services = {
                name: LockedService(
                    image=str(s["image"]),
                    resolved=str(s["resolved"]),
                    image_id=str(s.get("image_id", "")),
                    config=str(s.get("config", "")),
                    context=str(s.get("context", "")),
                )
                for name, s in body.get("services", {}).items()
            }
            envs[env] = LockedEnvironment(spec=str(body["spec"]), services=services)
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise LockMismatch(
            f"{path.name} is corrupt ({exc}); regenerate it with `envd lock`"
        ) from None
    return Lock(envs, version)


def _q(text: str) -> str:
    return json.dumps(text)  # a TOML basic string is a JSON string for our alphabet


def render(lock: Lock) -> str:
    lines = [
        "# envd.lock: pinned images and spec digests. Generated by `envd lock`; commit it.",
        f"version = {LOCK_VERSION}",
    ]
    for env in sorted(lock.environments):
        body = lock.environments[env]
        lines += ["", f"[environments.{_q(env)}]", f"spec = {_q(body.spec)}"]
        for name in sorted(body.services):
            s = body.services[name]
            lines += ["", f"[environments.{_q(env)}.services.{_q(name)}]"]
            lines += [f"image = {_q(s.image)}", f"resolved = {_q(s.resolved)}"]
            lines += [f"image_id = {_q(s.image_id)}", f"config = {_q(s.config)}"]
            if s.context:
                lines.append(f"context = {_q(s.context)}")
    return "\n".join(lines) + "\n"


def write(project_dir: Path, lock: Lock) -> Path:
    path = lock_path(project_dir)
    # A fresh temp name, never a predictable one a repository could ship as a link.
    write_replacing(path, render(lock).encode("utf-8"), 0o666)  # umask applies
    return path


def overrides(lock: Lock | None, loaded: LoadedSpec) -> dict[str, str]:
    """Image references to run instead of the spec's, for pulled images in the lock.

    Only when the spec still names the locked reference: an edited ``image``
    is the user's new intent (``--frozen`` is what refuses it).
    """
    if lock is None:
        return {}
    env = lock.for_env(loaded.environment)
    if env is None:
        return {}
    out: dict[str, str] = {}
    for name, svc in loaded.spec.services.items():
        locked = env.services.get(name)
        if locked is None or svc.build is not None or svc.image != locked.image:
            continue
        out[name] = locked.resolved
    return out


def check(lock: Lock | None, loaded: LoadedSpec, contexts: Mapping[str, str]) -> list[str]:
    """Readable drift between the spec and the lock; empty when frozen-safe."""
    if lock is None:
        return [f"no {LOCK_FILE} in {loaded.project_dir}; run `envd lock` and commit it"]
    if lock.version != LOCK_VERSION:
        return [
            f"{LOCK_FILE} is in format {lock.version}, whose digests could reveal values"
            " interpolated into the spec; run `envd lock` and commit the new one"
        ]
    key = loaded.environment or BASE
    env = lock.for_env(loaded.environment)
    if env is None:
        return [f"environment {key!r} is not in {LOCK_FILE}; run `envd lock`"]
    problems: list[str] = []
    if env.spec != spec_digest(loaded):
        problems.append(
            f"the resolved spec of environment {key!r} changed since {LOCK_FILE} was written"
        )
    # The lock pins every service, whichever profiles this run enables.
    active = dict(loaded.spec.services)
    names = set(active) | set(env.services)
    for name in sorted(names):
        svc = active.get(name)
        locked = env.services.get(name)
        if svc is None:
            problems.append(f"  - service {name!r} is locked but no longer in the spec")
            continue
        if locked is None:
            problems.append(f"  + service {name!r} is in the spec but not in the lock")
            continue
        now = service_digest(loaded, name)
        if locked.config != now:
            fields = ", ".join(_changed(locked.config, now)) or "its spec"
            problems.append(f"  ~ service {name!r}: changed {fields}")
        want_image = svc.image or ""
        if svc.build is None and want_image != locked.image:
            problems.append(f"  ~ service {name!r}: image {locked.image!r} → {want_image!r}")
        if svc.build is not None and name in contexts and contexts[name] != locked.context:
            problems.append(
                f"  ~ service {name!r}: build context changed"
                f" ({locked.context[:19]}… → {contexts[name][:19]}…)"
            )
    return problems


def repo_digest(ref: str, repo_digests: tuple[str, ...]) -> str:
    """The ``repo@sha256:…`` of an image that matches the reference's repository."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    repo = name.rsplit(":", 1)[0] if ":" in last else name
    candidates = {repo, f"docker.io/{repo}", f"docker.io/library/{repo}", f"library/{repo}"}
    for entry in repo_digests:
        if entry.split("@", 1)[0] in candidates:
            return entry
    return ""
