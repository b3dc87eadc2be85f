"""Secret values: reading them from their sources and digesting them safely.

Values live only in memory and inside containers. What envd stores anywhere
else (the config-hash label) is an HMAC keyed by a per-user key kept outside
the project (``$XDG_STATE_HOME/envd/hash-key``, mode 0600), so a low-entropy
password cannot be recovered by hashing guesses against a label.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets as _random
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from envd.values.errors import SpecError, SpecProblem

if TYPE_CHECKING:
    from envd.spec.models import SecretDef

_KEY_CACHE: bytes | None = None


def hash_key() -> bytes:
    global _KEY_CACHE
    if _KEY_CACHE is not None:
        return _KEY_CACHE
    env_key = os.environ.get("ENVD_HASH_KEY")
    if env_key:
        _KEY_CACHE = env_key.encode()
        return _KEY_CACHE
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "envd"
    path = state / "hash-key"
    try:
        _KEY_CACHE = path.read_bytes()
        if _KEY_CACHE:
            return _KEY_CACHE
    except OSError:
        pass
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = _random.token_hex(32).encode()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    try:
        os.link(tmp, path)  # first writer wins when two processes race
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    _KEY_CACHE = path.read_bytes()
    return _KEY_CACHE


def digest(value: bytes) -> str:
    """Keyed digest of a secret value, safe to put in a label."""
    return hmac.new(hash_key(), value, hashlib.sha256).hexdigest()


def read_secret(name: str, definition: SecretDef, base: Path, environ: Mapping[str, str]) -> bytes:
    """The value of one secret; a clear SpecError (exit 2) when it cannot be read."""
    if definition.file is not None:
        path = base / definition.file
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SpecError(
                SpecProblem(
                    f"cannot read file {definition.file!r}: {exc.strerror}", path=f"secrets.{name}"
                )
            ) from None
    if definition.env is not None:
        if definition.env not in environ:
            raise SpecError(
                SpecProblem(
                    f"environment variable {definition.env} is not set", path=f"secrets.{name}.env"
                )
            )
        return environ[definition.env].encode()
    assert definition.command is not None
    try:
        proc = subprocess.run(
            definition.command,
            cwd=base,
            # The environment the spec is loaded with: a daemon's is that of
            # the last `envd up`, not the one it was started with.
            env=dict(environ),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpecError(
            SpecProblem(f"command failed to run: {exc}", path=f"secrets.{name}.command")
        ) from None
    if proc.returncode != 0:
        # stderr may echo the value on some tools; report only the code.
        raise SpecError(
            SpecProblem(
                f"command exited with code {proc.returncode}", path=f"secrets.{name}.command"
            )
        )
    return proc.stdout.rstrip(b"\n")


def read_secrets(
    names: set[str], definitions: Mapping[str, SecretDef], base: Path, environ: Mapping[str, str]
) -> dict[str, bytes]:
    problems: list[SpecProblem] = []
    values: dict[str, bytes] = {}
    for name in sorted(names):
        try:
            values[name] = read_secret(name, definitions[name], base, environ)
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    return values
