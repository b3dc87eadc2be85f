"""The per-user key envd digests secret values with, as a value.

``envd.inputs.keys`` resolves it once (``ENVD_HASH_KEY`` or
``$XDG_STATE_HOME/envd/hash-key``); everything below inputs receives it, so
the pure core never reads the environment or the disk to hash a secret.
"""

from __future__ import annotations

from envd.values.sha import Hmac

# HKDF (RFC 5869) with SHA-256: a fixed salt extracts a pseudorandom key from
# the root key, and each use expands it under its own context string.
_SALT = b"envd key derivation/1"
CACHE_CONTEXT = b"envd desired-cache key"
SEAL_CONTEXT = b"envd desired-cache seal"


def _derive(root: bytes, context: bytes) -> bytes:
    prk = Hmac(_SALT, root).digest()
    return Hmac(prk, context + b"\x01").digest()


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

    # A plain frozen class, not a dataclass: the lean entry loads this module and
    # no ``dataclasses``. Equal and hashed by the root key; its repr shows no key
    # (a traceback or a debug print must not show one).
    __slots__ = ("cache_key", "hash_key", "seal_key")

    hash_key: bytes
    cache_key: bytes
    seal_key: bytes

    def __init__(self, hash_key: bytes) -> None:
        object.__setattr__(self, "hash_key", hash_key)
        object.__setattr__(self, "cache_key", _derive(hash_key, CACHE_CONTEXT))
        object.__setattr__(self, "seal_key", _derive(hash_key, SEAL_CONTEXT))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: Keys are frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: Keys are frozen")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, Keys)
            return self.hash_key == other.hash_key
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.hash_key,))

    def __repr__(self) -> str:
        return "Keys()"

    def digest(self, value: bytes) -> str:
        """Keyed digest (HMAC-SHA256 under the root key, hex) of a secret value, safe in a label."""
        return Hmac(self.hash_key, value).hexdigest()

    def cache_digest(self, value: bytes) -> str:
        """Keyed digest (hex) under the desired-cache key: what the cache records of inputs."""
        return Hmac(self.cache_key, value).hexdigest()

    def seal(self, body: bytes) -> bytes:
        """The 32-byte seal of a cache body, under the seal key."""
        return Hmac(self.seal_key, body).digest()
