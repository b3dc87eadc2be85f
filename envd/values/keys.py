"""The per-user key envd digests secret values with, as a value.

``envd.inputs.keys`` resolves it once (``ENVD_HASH_KEY`` or
``$XDG_STATE_HOME/envd/hash-key``); everything below inputs receives it, so
the pure core never reads the environment or the disk to hash a secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Keys:
    # Kept out of repr: a traceback or a debug print must not show the key.
    hash_key: bytes = field(repr=False)

    def digest(self, value: bytes) -> str:
        """Keyed digest (HMAC-SHA256, hex) of a secret value, safe to put in a label."""
        return hmac.new(self.hash_key, value, hashlib.sha256).hexdigest()
