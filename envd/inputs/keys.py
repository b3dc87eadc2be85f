"""Resolving the per-user hash key: the one place envd reads it.

What envd stores outside memory and containers (the config-hash label, the
desired cache's seal) is an HMAC keyed by a per-user key kept outside the
project (``$XDG_STATE_HOME/envd/hash-key``, mode 0600), so a low-entropy
password cannot be recovered by hashing guesses against a label.
``ENVD_HASH_KEY`` sets the key explicitly (CI, several users of one project).
"""

from __future__ import annotations

import os
import secrets as _random
from collections.abc import Mapping
from pathlib import Path

from envd.values.keys import Keys

# A key file read once stays this process's key for that path: a daemon keeps
# its key (and so its containers) even if the file is removed under it.
_FILE_KEYS: dict[Path, bytes] = {}


def key_file(environ: Mapping[str, str]) -> Path:
    """Where the per-user key lives (it may not exist yet)."""
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "envd" / "hash-key"


def load_keys(environ: Mapping[str, str] | None = None) -> Keys:
    """The hash key: ``ENVD_HASH_KEY``, else the key file, created on first use.

    ``environ`` defaults to this process's environment (not the spec's: the
    key belongs to the user running envd, not to the project).
    """
    environ = os.environ if environ is None else environ
    env_key = environ.get("ENVD_HASH_KEY")
    if env_key:
        return Keys(env_key.encode())
    path = key_file(environ)
    cached = _FILE_KEYS.get(path)
    if cached is None:
        cached = _FILE_KEYS[path] = _read_or_create(path)
    return Keys(cached)


def _read_or_create(path: Path) -> bytes:
    try:
        key = path.read_bytes()
        if key:
            return key
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_random.token_hex(32).encode())
    try:
        os.link(tmp, path)  # first writer wins when two processes race
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()
