"""The desired cache's key, computed with the standard library alone.

Split from ``envd.inputs.desired_cache`` so the lean entry (``envd.cli._lean_up``)
can tell whether the cached desired state still stands without importing
the codec, the desired-state values or pydantic. Both compute the key here,
so they can never disagree about it.
"""

from __future__ import annotations

import os
import sys

from envd import __version__
from envd.inputs.safefile import read_regular
from envd.values.sha import Hmac, compare_digest, sha256

TYPE_CHECKING = False
if TYPE_CHECKING:  # nothing loaded for types: the lean entry computes this key too
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Protocol

    from envd.values.keys import Keys

    class Aim(Protocol):
        """What of a ``Target`` the key covers (the lean entry passes its own arguments)."""

        @property
        def environment(self) -> str | None: ...
        @property
        def profiles(self) -> frozenset[str]: ...
        @property
        def swarm(self) -> bool: ...


CACHE_FILE = "desired.cache"
# 3: JSON under a derived seal key (2 was a pickle); 4: paths by where they resolve
FORMAT = b"envd-desired-cache/4"
SEAL = 32  # bytes of HMAC-SHA256 in front of the JSON
# Far above any real entry (50 services make about 100 KB): a bigger file is
# not ours, and is refused before it is read.
MAX_BYTES = 16 * 1024 * 1024

# The code a desired state is computed by: inputs and the layers below it (the
# import contracts keep inputs from importing anything else of envd).
_ENVD = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_CODE_DIRS = tuple(os.path.join(_ENVD, d) for d in ("values", "spec", "core", "inputs"))

# What the shell sets about itself, different with every way of starting envd
# (`_` is the command's path: `time envd up` after `envd up` changes it), and
# ENVD_LEAN (whether the lean entry may answer: it changes how envd runs, never
# what it wants). They leave the key unless the spec or .env names them, so a
# miss is not bought with nothing a spec reads.
_SHELL_BOOKKEEPING = ("_", "SHLVL", "OLDPWD", "ENVD_LEAN")


def compute(
    keys: Keys,
    target: Aim,
    environ: Mapping[str, str],
    frozen: bool,
    spec_file: str | Path,
    base: str | Path,
    extra: str = "",
) -> tuple[str, str, bytes | None]:
    """(the key over every input, the key over all but the spec's bytes, those bytes).

    ``spec_file`` and ``base`` are absolute, as ``envd.spec.paths.resolve_paths``
    gives them (a string or a ``Path``: the key covers their text)."""
    h = Hmac(keys.cache_key, FORMAT)

    def feed(*parts: object) -> None:
        for part in parts:
            data = part if isinstance(part, bytes) else repr(part).encode()
            h.update(len(data).to_bytes(8, "big") + data)

    feed(__version__, sys.version, code_fingerprint())
    feed(
        str(spec_file),
        str(base),
        target.environment,
        sorted(target.profiles),
        target.swarm,
        frozen,
    )
    spec_bytes: bytes | None = None
    try:
        spec_bytes = read_regular(spec_file, MAX_BYTES)
    except FileNotFoundError:
        pass
    texts = [spec_bytes or b""]
    for path in (os.path.join(base, ".env"), os.path.join(base, "envd.lock")):
        try:
            # A FIFO or a device here makes a miss (NotRegular), not a hang.
            data = read_regular(path, MAX_BYTES)
            texts.append(data)
            feed(data)
        except FileNotFoundError:
            feed(None)
    feed(sorted(keyed_environ(environ, texts).items()), extra)
    base_key = h.hexdigest()
    feed(spec_bytes)
    return h.hexdigest(), base_key, spec_bytes


def keyed_environ(environ: Mapping[str, str], texts: list[bytes]) -> Mapping[str, str]:
    """``environ`` without the shell's bookkeeping the spec and .env do not name."""
    named = {
        name
        for name in _SHELL_BOOKKEEPING
        if any(f"${name}".encode() in t or f"${{{name}".encode() in t for t in texts)
        or (name != "_" and any(name.encode() in t for t in texts))
    }
    return {k: v for k, v in environ.items() if k not in _SHELL_BOOKKEEPING or k in named}


def code_fingerprint() -> str:
    """Size and mtime of every module that computes a desired state: changed code is a
    changed input."""
    # One scandir per package and one stat per module: this runs on every
    # hit, so it avoids os.walk's extra per-entry work.
    lines: list[str] = []
    stack = list(_CODE_DIRS)
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.endswith(".py"):
                st = entry.stat()
                lines.append(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}")
            elif entry.name != "__pycache__" and entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return sha256("\n".join(lines).encode()).hexdigest()


def read_sealed(path: str | Path, keys: Keys) -> bytes | None:
    """The body of a sealed state file of ours, or None (missing, a link, a FIFO,
    someone else's, too big, or a seal this user's key did not make)."""
    try:
        raw = read_regular(path, MAX_BYTES, follow=False, own=True)
    except OSError:
        return None
    if len(raw) <= SEAL:
        return None
    seal, body = raw[:SEAL], raw[SEAL:]
    return body if compare_digest(seal, keys.seal(body)) else None
