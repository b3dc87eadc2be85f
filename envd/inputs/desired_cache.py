"""The desired state of the last successful load, reused while its inputs stand still.

A repeated ``envd up --once`` spends most of its time before the first engine
call: importing pydantic and building the spec models costs more than
observing and planning 50 services. The desired state is a pure function of
files and variables, so it is kept in ``.envd/desired.cache`` with a key over
every input, and a lookup that matches skips the loader (and pydantic) whole.

The key covers the code that computes a desired state, the Python version,
the target (directory, file, environment, profiles, swarm, ``--frozen``),
the bytes of the spec,
``.env`` and ``envd.lock``, and the whole process environment. What the spec
points at is recorded when an entry is stored and checked on lookup: the
contents of ``env_file`` files, which paths must exist (bind sources, watch
paths) and where bind sources resolve to (a link retargeted out of the project
needs this user's approval, ``envd.inputs.consent``), each build context's digest, and each secret's value (by keyed
digest; values are read again on every hit, never stored).

The file is JSON (``envd.inputs.desired_codec``: explicit typed decoders,
nothing in it can name code to run), written temp + rename at 0600, and
sealed with an HMAC under the seal key derived from the per-user key
(``envd.inputs.keys``, kept outside the project). Reading opens it without
following a link, takes it only when ``fstat`` says a regular file of ours
below a size cap, and checks the seal before parsing: a cache file that came
with a cloned repository, that another user wrote, or that was swapped for a
link, a FIFO or a huge file, is ignored rather than trusted, read or waited on.

Anything unexpected — a missing file, a changed digest, a secret that cannot
be read — is a miss: the caller loads the spec the slow way, which also
produces the proper error message.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from envd.core.desired import DesiredProject
from envd.inputs import desired_codec as codec
from envd.inputs import desired_key
from envd.inputs.buildctx import BuildInputs
from envd.inputs.desired_patch import RawSections
from envd.inputs.safefile import UnsafeStateDir, own_dir, read_regular, write_replacing
from envd.inputs.target import Target
from envd.spec.paths import resolve_paths
from envd.values.keys import Keys

if TYPE_CHECKING:
    from envd.inputs.secrets import CommandValue
    from envd.spec.load import LoadedSpec

# The key, the file's name, format and limits: envd.inputs.desired_key (stdlib
# only, shared with the lean entry).
CACHE_FILE = desired_key.CACHE_FILE
_SEAL = desired_key.SEAL
MAX_BYTES = desired_key.MAX_BYTES
_key = desired_key.compute
_code_fingerprint = desired_key.code_fingerprint


@dataclass(frozen=True)
class _Secret:
    name: str
    file: str | None
    env: str | None
    command: tuple[str, ...] | None
    digest: str  # keyed digest of the value the entry was built with


@dataclass(frozen=True)
class _Entry:
    key: str
    desired: DesiredProject  # secret values stripped
    secrets: tuple[_Secret, ...]
    # per service, the secret name behind each of template.secrets, in order
    secret_sources: Mapping[str, tuple[str, ...]]
    files: tuple[tuple[str, str | None], ...]  # (path, keyed digest of contents | None)
    paths: tuple[tuple[str, str | None], ...]  # (path, its real path | None: absent)
    builds: tuple[tuple[BuildInputs, str], ...]  # (inputs, digest)
    # A changed spec (desired_patch): the key over every input but the spec's
    # bytes, and the parsed spec the entry was built from ("" / None: never).
    base: str = ""
    raw_top: Mapping[str, str] | None = None
    raw_services: Mapping[str, str] | None = None


_decode_secret = codec.table(
    _Secret,
    name=codec.string,
    file=codec.optional(codec.string),
    env=codec.optional(codec.string),
    command=codec.optional(codec.strings),
    digest=codec.string,
)
_decode_entry = codec.table(
    _Entry,
    key=codec.string,
    desired=codec.decode_project,
    secrets=codec.tuple_of(_decode_secret),
    secret_sources=codec.map_of(codec.strings),
    files=codec.tuple_of(codec.pair(codec.string, codec.optional(codec.string))),
    paths=codec.tuple_of(codec.pair(codec.string, codec.optional(codec.string))),
    builds=codec.tuple_of(codec.pair(codec.decode_build_inputs, codec.string)),
    base=codec.string,
    raw_top=codec.optional(codec.string_map),
    raw_services=codec.optional(codec.string_map),
)


def lookup(
    target: Target, environ: Mapping[str, str], frozen: bool, keys: Keys, extra: str = ""
) -> DesiredProject | None:
    """The cached desired state for these inputs, or None (then load the spec).

    ``extra`` joins the key: the caller's own inputs (this user's approvals).
    """
    hit = lookup_with_commands(target, environ, frozen, keys, extra)
    return None if hit is None else hit[0]


def lookup_with_commands(
    target: Target,
    environ: Mapping[str, str],
    frozen: bool,
    keys: Keys,
    extra: str = "",
    *,
    run_commands: bool = True,
    outcome: list[str] | None = None,
) -> tuple[DesiredProject, dict[str, CommandValue]] | None:
    """``lookup``, and what each ``command`` source printed on this (re)read.

    ``run_commands=False`` (a read-only command such as ``status``): an entry
    with a ``command`` secret source is a miss, so no host command runs.
    ``outcome``: gets "hit" (every input as stored) or "patched" (a spec edit
    applied, ``_patched``) appended when the answer is not None.
    """
    try:
        spec_file, base = resolve_paths(target.project_dir, target.file)
        raw = _read(base / ".envd" / CACHE_FILE)
    except OSError:
        return None
    if raw is None:
        return None
    try:
        seal, body = raw[:_SEAL], raw[_SEAL:]
        if not hmac.compare_digest(seal, keys.seal(body)):
            return None
        data = json.loads(body)
        if not isinstance(data, dict):
            return None
        entry = _decode_entry(data)
        # status and down run no host command: an entry fed by one is theirs to miss.
        if not run_commands and any(sec.command is not None for sec in entry.secrets):
            return None
        key, base_key, spec_bytes = _key(keys, target, environ, frozen, spec_file, base, extra)
        if data.get("key") == key:
            found = _revalidate(entry, base, environ, keys)
            kind = "hit"
        # --frozen checks the lock's per-service digests (env too): the full load's.
        elif base_key and data.get("base") == base_key and spec_bytes is not None and not frozen:
            found = _patched(entry, data, key, spec_bytes, spec_file, base, target, environ, keys)
            kind = "patched"
        else:
            return None
        if found is not None and outcome is not None:
            outcome.append(kind)
        return found
    except Exception:  # any doubt is a miss, and the slow path speaks
        return None


def _patched(
    entry: _Entry,
    data: Mapping[str, object],
    key: str,
    spec_bytes: bytes,
    spec_file: Path,
    base: Path,
    target: Target,
    environ: Mapping[str, str],
    keys: Keys,
) -> tuple[DesiredProject, dict[str, CommandValue]] | None:
    """The entry's desired state with a spec edit that changed only some
    services' ``env`` applied (``envd.inputs.desired_patch``), stored as the
    new entry; None for any other edit (then load the spec the full way).
    ``data``: the entry as read (JSON), the stored one is made from."""
    from envd.inputs import desired_patch
    from envd.spec.read import MAX_FILE_BYTES, decode, parse_toml

    if entry.raw_top is None or entry.raw_services is None or len(spec_bytes) > MAX_FILE_BYTES:
        return None
    # The spec's own reader, limits included: what it refuses, the full load words.
    data = parse_toml(decode(spec_bytes, str(spec_file)), str(spec_file))
    before = desired_patch.RawSections(entry.raw_top, entry.raw_services)
    found = desired_patch.changed_envs(before, data, target.environment)
    if found is None:
        return None
    after, envs = found
    hit = _revalidate(entry, base, environ, keys)
    if hit is None:
        return None
    desired, commands = hit

    def with_envs(project: DesiredProject) -> DesiredProject:
        services = dict(project.services)
        for name, env in envs.items():
            svc = services.get(name)
            if svc is not None:  # not active (profiles): not in the desired state
                services[name] = replace(svc, template=replace(svc.template, env=env))
        return replace(project, services=services)

    stored = replace(
        entry,
        key=key,
        desired=with_envs(entry.desired),
        raw_top=after.top,
        raw_services=after.services,
    )
    try:
        body = json.dumps(_patched_json(data, stored, envs), separators=(",", ":")).encode()
        _write(base / ".envd" / CACHE_FILE, keys.seal(body) + body)
    except UnsafeStateDir:
        raise
    except Exception:  # a cache that cannot be written is only slower
        pass
    return with_envs(desired), commands


def _patched_json(
    data: Mapping[str, object], stored: _Entry, changed: Iterable[str]
) -> dict[str, object]:
    """``codec.encode(stored)``, made from ``data`` (the JSON of the entry ``stored``
    was patched from): only the changed services are encoded again. Encoding all
    50 services of a project was half of a changed spec's time before the engine."""
    doc = dict(data)
    doc.update(key=stored.key, raw_top=codec.encode(stored.raw_top))
    doc["raw_services"] = codec.encode(stored.raw_services)
    project = data["desired"]
    if not isinstance(project, dict) or not isinstance(project.get("services"), dict):
        return {**doc, "desired": codec.encode(stored.desired)}
    services = dict(project["services"])
    for name in changed:
        if name in stored.desired.services:
            services[name] = codec.encode(stored.desired.services[name])
    doc["desired"] = {**project, "services": services}
    return doc


def store(
    target: Target,
    environ: Mapping[str, str],
    frozen: bool,
    loaded: LoadedSpec,
    desired: DesiredProject,
    builds: Mapping[str, BuildInputs],
    keys: Keys,
    extra: str = "",
) -> None:
    """Remember a desired state that was just loaded and validated the slow way."""
    try:
        spec_file, base = resolve_paths(target.project_dir, target.file)
        key, base_key, spec_bytes = _key(keys, target, environ, frozen, spec_file, base, extra)
        raw = _raw_sections(spec_file, spec_bytes)
        active = loaded.active_services()
        sources = secret_sources(loaded)
        # The values `desired` was built with, not a second read: a `command`
        # source would run twice, and a rotating one could differ.
        values = secret_values(desired, sources)
        names = sorted(values)
        secrets = tuple(
            _Secret(
                n,
                loaded.spec.secrets[n].file,
                loaded.spec.secrets[n].env,
                tuple(loaded.spec.secrets[n].command or ()) or None,
                keys.cache_digest(values[n]),
            )
            for n in names
        )
        files: list[tuple[str, str | None]] = []
        paths: list[tuple[str, str | None]] = []
        for svc in active.values():
            for env_file in svc.env_file:
                files.append((str(base / env_file), _file_digest(base / env_file, keys)))
            for mount in svc.volumes:
                if mount.type == "bind":
                    src = loaded.bind_sources[mount.source]
                    paths.append((src, _real(Path(src))))
            for rule in svc.watch:
                paths.append((str(base / rule.path), _real(base / rule.path)))
        # configs: a changed file is a changed desired state (its content is in it)
        from envd.inputs.configs import config_files

        for path in config_files(loaded):
            files.append((str(path), _file_digest(path, keys)))
        stripped = _with_secret_values(desired, sources, lambda source, value: b"")
        build_digests = {
            name: s.build.digest for name, s in desired.services.items() if s.build is not None
        }
        entry = _Entry(
            key=key,
            base=base_key,
            raw_top=None if raw is None else raw.top,
            raw_services=None if raw is None else raw.services,
            desired=stripped,
            secrets=secrets,
            secret_sources=sources,
            files=tuple(files),
            paths=tuple(paths),
            builds=tuple(
                (inputs, build_digests[name])
                for name, inputs in sorted(builds.items())
                if name in build_digests
            ),
        )
        body = json.dumps(codec.encode(entry), separators=(",", ":")).encode()
        _write(base / ".envd" / CACHE_FILE, keys.seal(body) + body)
    except UnsafeStateDir:
        raise
    except Exception:  # a cache that cannot be written is only slower
        return


def _raw_sections(spec_file: Path, spec_bytes: bytes | None) -> RawSections | None:
    """The parsed spec (the bytes the key covers), for a later edit (desired_patch)."""
    import tomllib

    from envd.inputs.desired_patch import sections

    if spec_bytes is None or spec_file.suffix != ".toml":
        return None  # another format (a Compose file): only the full load reads it
    return sections(tomllib.loads(spec_bytes.decode("utf-8")))


def _revalidate(
    entry: _Entry, base: Path, environ: Mapping[str, str], keys: Keys
) -> tuple[DesiredProject, dict[str, CommandValue]] | None:
    from envd.inputs.secrets import CommandValue, read_secret

    for path, want in entry.files:
        if _file_digest(Path(path), keys) != want:
            return None
    for path, real in entry.paths:
        if _real(Path(path)) != real:
            return None
    cache_dir = base / ".envd"
    for inputs, want_digest in entry.builds:
        if inputs.digest(cache_dir) != want_digest:
            return None
    values: dict[str, bytes] = {}
    for sec in entry.secrets:
        definition = SimpleNamespace(
            file=sec.file, env=sec.env, command=list(sec.command) if sec.command else None
        )
        value = read_secret(sec.name, definition, base, environ)  # type: ignore[arg-type]
        if keys.cache_digest(value) != sec.digest:
            return None
        values[sec.name] = value
    commands = {
        sec.name: CommandValue(sec.command, values[sec.name])
        for sec in entry.secrets
        if sec.command is not None
    }
    if not values:
        return entry.desired, commands
    desired = _with_secret_values(
        entry.desired, entry.secret_sources, lambda source, value: values[source]
    )
    return desired, commands


def secret_sources(loaded: LoadedSpec) -> dict[str, tuple[str, ...]]:
    """Per active service, the secret behind each of its template's secret files, in order."""
    return {
        name: tuple(s.source for s in svc.secrets) for name, svc in loaded.active_services().items()
    }


def secret_values(
    desired: DesiredProject, sources: Mapping[str, tuple[str, ...]]
) -> dict[str, bytes]:
    """The value ``desired`` carries for each secret its services use."""
    values: dict[str, bytes] = {}
    _with_secret_values(desired, sources, lambda source, value: values.setdefault(source, value))
    return values


def _with_secret_values(
    desired: DesiredProject,
    sources: Mapping[str, tuple[str, ...]],
    value_of: Callable[[str, bytes], bytes],
) -> DesiredProject:
    """``desired`` with each secret file's value replaced by ``value_of(source, value)``."""
    return replace(
        desired,
        services={
            name: replace(
                s,
                template=replace(
                    s.template,
                    secrets=tuple(
                        replace(f, value=value_of(source, f.value))
                        for f, source in zip(s.template.secrets, sources[name], strict=True)
                    ),
                ),
            )
            for name, s in desired.services.items()
        },
    )


def _real(path: Path) -> str | None:
    """Where ``path`` resolves to (links followed), or None when it does not exist."""
    return os.path.realpath(path) if path.exists() else None


def _file_digest(path: Path, keys: Keys) -> str | None:
    try:
        return keys.cache_digest(path.read_bytes())
    except OSError:
        return None


def _read(path: Path) -> bytes | None:
    """The cache file's bytes, or None unless it is a regular file of ours under the cap."""
    try:
        data = read_regular(path, MAX_BYTES, follow=False, own=True)
    except OSError:  # missing, a link (ELOOP), a FIFO, someone else's, too big
        return None
    return data if len(data) > _SEAL else None


def _write(path: Path, data: bytes) -> None:
    own_dir(path.parent)
    write_replacing(path, data, 0o600)


def clear(project_dir: Path) -> None:
    """Forget the cached desired state (tests, and `envd down`)."""
    (project_dir / ".envd" / CACHE_FILE).unlink(missing_ok=True)
