"""End-to-end tests: the ``envd`` command run as a subprocess, as a user runs it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def _envd_from_this_checkout() -> Iterator[None]:
    """``python -m envd`` in a subprocess imports this checkout, installed or not."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        )
        yield
