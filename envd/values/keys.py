"""The per-user key envd digests secret values with, as a value.

``envd.inputs.keys`` resolves it once (``ENVD_HASH_KEY`` or
``$XDG_STATE_HOME/envd/hash-key``); everything below inputs receives it, so
the pure core never reads the environment or the disk to hash a secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import field

from envd.values.record import value

# HKDF (RFC 5869) with SHA-256: a fixed salt extracts a pseudorandom key from
# the root key, and each use expands it under its own context string.
_SALT = b"envd key derivation/1"
CACHE_CONTEXT = b"envd desired-cache key"
SEAL_CONTEXT = b"envd desired-cache seal"


def _derive(root: bytes, context: bytes) -> bytes:
    prk = hmac.new(_SALT, root, hashlib.sha256).digest()
    return hmac.new(prk, context + b"\x01", hashlib.sha256).digest()


@value
class Keys:
    """The root key and the keys derived from it, one per use.

    Labels use the root key itself, as every envd before derivation did:
    ``digest`` is HMAC-SHA256(root, value), so upgrading envd changes no
    ``dev.envd.config-hash`` label and recreates no container. Every other
    use gets its own key by HKDF-SHA256 (salt ``_SALT``, a distinct context
    string per use). The derivation keys its HMAC with the salt, never with
    the root key, so no secret value can be chosen whose label digest equals
    a derived key: a label never reveals the cache or seal key, and knowing
    the cache key does not let anyone forge a seal or a label.
    """

    # Kept out of repr: a traceback or a debug print must not show the key.
    hash_key: bytes = field(repr=False)
    cache_key: bytes = field(init=False, repr=False, compare=False)
    seal_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_key", _derive(self.hash_key, CACHE_CONTEXT))
        object.__setattr__(self, "seal_key", _derive(self.hash_key, SEAL_CONTEXT))

    def digest(self, value: bytes) -> str:
        """Keyed digest (HMAC-SHA256 under the root key, hex) of a secret value, safe in a label."""
        return hmac.new(self.hash_key, value, hashlib.sha256).hexdigest()

    def cache_digest(self, value: bytes) -> str:
        """Keyed digest (hex) under the desired-cache key: what the cache records of inputs."""
        return hmac.new(self.cache_key, value, hashlib.sha256).hexdigest()

    def seal(self, body: bytes) -> bytes:
        """The 32-byte seal of a cache body, under the seal key."""
        return hmac.new(self.seal_key, body, hashlib.sha256).digest()
