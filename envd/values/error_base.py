"""The base of envd's error tree and ``UsageError``, importable without ``dataclasses``.

``envd.values.errors`` is the tree (and re-exports both); the modules the
lean entry loads (safe file reads, the hash key, approvals, the lock file)
raise these two and must not load the tree's dataclasses to do so.
"""

from __future__ import annotations


class EnvdError(Exception):
    """Base of every error envd reports to a user."""

    exit_code = 1
    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(EnvdError):
    """The command line itself is wrong."""

    exit_code = 2
