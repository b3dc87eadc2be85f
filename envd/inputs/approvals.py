"""This user's approvals of what specs reach outside their projects (``envd allow``).

Kept in ``$XDG_STATE_HOME/envd/approvals.json`` (default
``~/.local/state/envd``), never in the project: a repository must not be able
to ship its own approval. The directory is 0700 and must be a real directory
owned by this user; the file is 0600, opened without following links, checked
to be a regular file of this user under a size cap, and replaced whole
(temp file + rename) so a crash never leaves half a record.

An approval is keyed by the project directory, the spec file and the
environment overlay, and holds the digest of each approved item
(``envd.inputs.consent.ReachItem.digest``) with its description, so
``envd allow --list`` can say what was approved.
"""

from __future__ import annotations

import os
import stat
import time

from envd.values import jsontext
from envd.values.error_base import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # the lean entry computes state_token: no pathlib, json or typing loaded
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import Any

    from envd.inputs.consent import ReachItem
    from envd.spec.load import LoadedSpec

FILE = "approvals.json"
_CAP = 4 * 1024 * 1024
_FORMAT = 1


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    from pathlib import Path

    return Path(_state_dir(environ))


def _state_dir(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    state = environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(state, "envd")


def key_of(loaded: LoadedSpec) -> str:
    """Which approval a loaded spec needs: its real directory, spec file and environment."""
    return _key(loaded.file, loaded.project_dir, loaded.environment)


def _key(spec_file: str | Path, project_dir: str | Path, environment: str | None) -> str:
    return "\n".join(
        (os.path.realpath(project_dir), os.path.realpath(spec_file), environment or "")
    )


def _check_dir(path: str, create: bool) -> bool:
    """True when ``path`` is this user's private directory; False when absent (and not created)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            return False
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"refusing to use {path}: it is not a directory (a link?)")
    if st.st_uid != os.geteuid():
        raise UsageError(f"refusing to use {path}: it belongs to another user")
    if st.st_mode & 0o022:
        raise UsageError(f"refusing to use {path}: others may write to it (chmod 700 it)")
    return True


def _read(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    folder = _state_dir(environ)
    if not _check_dir(folder, create=False):
        return {}
    path = os.path.join(folder, FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        if os.path.islink(path):
            raise UsageError(f"refusing to read {path}: it is a symbolic link") from None
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"refusing to read {path}: it is not a regular file")
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise UsageError(f"refusing to read {path}: it must belong to this user with mode 0600")
        raw = fh.read(_CAP + 1)
    if len(raw) > _CAP:
        raise UsageError(f"refusing to read {path}: larger than {_CAP} bytes")
    try:
        data = jsontext.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"{path} is not valid JSON; remove it and approve again") from None
    if not isinstance(data, dict) or not isinstance(data.get("approvals"), dict):
        raise UsageError(f"{path} is not an envd approvals file; remove it and approve again")
    approvals: dict[str, Any] = data["approvals"]
    return approvals


def _write(approvals: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    import json

    folder = _state_dir(environ)
    _check_dir(folder, create=True)
    path = os.path.join(folder, FILE)
    if os.path.islink(path):
        raise UsageError(f"refusing to write {path}: it is a symbolic link")
    tmp = os.path.join(folder, f".{FILE}.{os.getpid()}.tmp")
    body = json.dumps({"format": _FORMAT, "approvals": approvals}, indent=1, sort_keys=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body.encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # rename replaces a link itself, never its target
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def approved_digests(key: str, environ: Mapping[str, str] | None = None) -> frozenset[str]:
    entry = _read(environ).get(key)
    if not isinstance(entry, dict):
        return frozenset()
    return frozenset(
        str(i["digest"]) for i in entry.get("items", []) if isinstance(i, dict) and "digest" in i
    )


def approve(
    loaded: LoadedSpec, items: Sequence[ReachItem], environ: Mapping[str, str] | None = None
) -> None:
    """Record exactly ``items`` as this spec's approval (replacing the previous one)."""
    approvals = dict(_read(environ))
    approvals[key_of(loaded)] = {
        "project_dir": os.path.realpath(loaded.project_dir),
        "file": os.path.realpath(loaded.file),
        "environment": loaded.environment,
        "approved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "items": [{"digest": i.digest, "kind": i.kind, "description": i.describe()} for i in items],
    }
    _write(approvals, environ)


def revoke(key: str, environ: Mapping[str, str] | None = None) -> bool:
    """Remove one approval; False when there was none."""
    approvals = dict(_read(environ))
    if key not in approvals:
        return False
    del approvals[key]
    _write(approvals, environ)
    return True


def listing(environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every approval this user holds, oldest project path first."""
    out = [dict(v) for v in _read(environ).values() if isinstance(v, dict)]
    return sorted(out, key=lambda e: (str(e.get("project_dir")), str(e.get("file"))))


def state_token(
    spec_file: str | Path,
    project_dir: str | Path,
    environment: str | None,
    environ: Mapping[str, str],
) -> str:
    """What a cached desired state must be keyed on so a revoked or changed
    approval is never bypassed: this spec's approved digests and ENVD_ALLOW."""
    key = _key(spec_file, project_dir, environment)
    allow = environ.get("ENVD_ALLOW", "")
    return jsontext.dumps([allow, sorted(approved_digests(key))])
