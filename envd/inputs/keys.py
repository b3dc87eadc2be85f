"""Resolving the per-user hash key: the one place envd reads it.

What envd stores outside memory and containers (the config-hash label, the
desired cache's seal) is an HMAC keyed by a per-user key kept outside the
project (``$XDG_STATE_HOME/envd/hash-key``, mode 0600), so a low-entropy
password cannot be recovered by hashing guesses against a label.
``ENVD_HASH_KEY`` sets the key explicitly (CI, several users of one project).

The key fails closed: a key of fewer than 32 random bytes, or a key file that
is a link, not a regular file, someone else's, readable or writable by group
or others, or not exactly 64 hex digits (an empty file left by a crash
included), is refused with exit 2 rather than used or silently replaced. A new
key is written and fsync'd (file and directory) before it is linked into
place, so no crash leaves an empty key behind.
"""

from __future__ import annotations

import os
import stat

from envd.values.error_base import UsageError
from envd.values.keys import Keys

TYPE_CHECKING = False
if TYPE_CHECKING:  # the lean entry reads the key too: no pathlib, re or typing loaded
    from collections.abc import Mapping
    from pathlib import Path

# A key file read once stays this process's key for that path: a daemon keeps
# its key (and so its containers) even if the file is removed under it.
_FILE_KEYS: dict[str, bytes] = {}

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_BASE64_DIGITS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_MAX_READ = 4096  # more than any valid key file; a huge file is refused, not read


def _hex_key(data: bytes) -> bool:
    """What envd writes, or `openssl rand -hex 32`: 64 hex digits and an optional newline."""
    body = data[:-1] if data.endswith(b"\n") else data
    return len(body) == 64 and _all_in(body.decode("latin-1"), _HEX_DIGITS)


def _all_in(text: str, alphabet: frozenset[str]) -> bool:
    return bool(text) and all(c in alphabet for c in text)


def _base64(text: str) -> bool:
    """Base64 digits (either alphabet) and at most two ``=`` of padding."""
    body = text.rstrip("=")
    return len(text) - len(body) <= 2 and _all_in(body, _BASE64_DIGITS)


class HashKeyRefused(UsageError):
    """The hash key (``ENVD_HASH_KEY`` or the key file) is too weak or not safely ours."""


def key_file(environ: Mapping[str, str]) -> Path:
    """Where the per-user key lives (it may not exist yet)."""
    from pathlib import Path

    return Path(key_path(environ))


def key_path(environ: Mapping[str, str]) -> str:
    """``key_file`` as a string."""
    state = environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(state, "envd", "hash-key")


def load_keys(environ: Mapping[str, str] | None = None) -> Keys:
    """The hash key: ``ENVD_HASH_KEY``, else the key file, created on first use.

    ``environ`` defaults to this process's environment (not the spec's: the
    key belongs to the user running envd, not to the project). Raises
    ``HashKeyRefused`` (exit 2) for a weak key or an unsafe key file.
    """
    environ = os.environ if environ is None else environ
    env_key = environ.get("ENVD_HASH_KEY")
    if env_key:
        check_env_key(env_key)
        # The bytes as given, not decoded: labels stay what earlier envd made.
        return Keys(env_key.encode())
    path = key_path(environ)
    cached = _FILE_KEYS.get(path)
    if cached is None:
        cached = _FILE_KEYS[path] = _read_or_create(path)
    return Keys(cached)


def check_env_key(value: str) -> None:
    """Refuse an ``ENVD_HASH_KEY`` that cannot hold 32 random bytes."""
    text = value.strip()
    if _all_in(text, _HEX_DIGITS):
        short = len(text) < 64
    elif _base64(text):
        short = len(text.rstrip("=")) < 43
    else:
        raise HashKeyRefused(
            "ENVD_HASH_KEY must be written in hex or base64 (at least 32 random bytes,"
            " e.g. `openssl rand -hex 32`)"
        )
    if short:
        raise HashKeyRefused(
            "ENVD_HASH_KEY must be at least 32 random bytes, 64 hex or 43 base64 characters"
            f" (e.g. `openssl rand -hex 32`), not {len(text)}"
        )


def _read_or_create(path: str) -> bytes:
    key = _read(path)
    if key is not None:
        return key
    _create(path)
    key = _read(path)
    if key is None:  # removed between our link and our read: refuse, never guess
        raise HashKeyRefused(f"the hash key file {path} vanished while envd created it; retry")
    return key


def _read(path: str) -> bytes | None:
    """The key in ``path``; None when there is no file; refused when it is not safely ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        # ELOOP: the last component is a symbolic link.
        raise HashKeyRefused(
            f"the hash key file {path} cannot be opened safely ({exc.strerror}); it must be"
            " a regular file, not a link; remove it to let envd create a new key"
        ) from None
    try:
        st = os.fstat(fd)
        problem = _unsafe(st)
        if problem:
            raise HashKeyRefused(
                f"the hash key file {path} {problem}; fix it or remove it to let envd create"
                " a new key (containers labelled with the old key are then recreated)"
            )
        data = os.read(fd, _MAX_READ)
    finally:
        os.close(fd)
    if not _hex_key(data):
        raise HashKeyRefused(
            f"the hash key file {path} does not hold a key (64 hex digits; it has"
            f" {len(data)} bytes); remove it to let envd create a new key"
            " (containers labelled with the old key are then recreated)"
        )
    return data


def _unsafe(st: os.stat_result) -> str:
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}, not to you"
    if st.st_mode & 0o077:
        return f"is readable or writable by others (mode {stat.S_IMODE(st.st_mode):04o}, want 0600)"
    return ""


def _create(where: str) -> None:
    """Write a fresh key beside ``where`` and link it into place; the first writer wins."""
    from pathlib import Path

    path = Path(where)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, os.urandom(32).hex().encode())  # secrets.token_hex(32), unimported
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(path.parent)
        try:
            os.link(tmp, path)  # never replaces: two processes racing share one key
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
