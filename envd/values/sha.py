"""SHA-256 and HMAC-SHA256 without loading OpenSSL.

``hashlib`` (and ``hmac``, which imports it) maps OpenSSL's ``_hashlib`` on
import, ~2.5 ms that the lean entry's whole no-op has not got to spare.
CPython's built-in ``_sha256`` computes the same digests with nothing to
load; at the sizes envd hashes on its start-up path (a spec, a desired cache
of ~100 KB, an engine answer of ~70 KB at 50 services) it costs well under
what the load saves. ``Hmac`` is RFC 2104 over it, as ``hmac.new(key, msg,
hashlib.sha256)`` computes (a unit test compares them); where ``_sha256`` is
missing (CPython 3.12 names it ``_sha2``; other interpreters) ``hashlib``'s is used.
"""

from __future__ import annotations

from _operator import _compare_digest as compare_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import sha256
else:
    try:
        from _sha256 import sha256
    except ImportError:  # pragma: no cover - another CPython or interpreter
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256

__all__ = ["Hmac", "compare_digest", "sha256"]

_BLOCK = 64  # SHA-256's block size in bytes
_INNER = bytes(x ^ 0x36 for x in range(256))
_OUTER = bytes(x ^ 0x5C for x in range(256))


class Hmac:
    """HMAC-SHA256 under ``key``: ``update``, ``digest``, ``hexdigest`` as ``hmac``'s."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, msg: bytes = b"") -> None:
        if len(key) > _BLOCK:
            key = sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._outer = sha256(key.translate(_OUTER))
        self._inner = sha256(key.translate(_INNER))
        if msg:
            self._inner.update(msg)

    def update(self, msg: bytes) -> None:
        self._inner.update(msg)

    def digest(self) -> bytes:
        outer = self._outer.copy()
        outer.update(self._inner.digest())
        return outer.digest()

    def hexdigest(self) -> str:
        return self.digest().hex()
