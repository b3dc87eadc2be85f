"""Reading secret values from their sources, with the environment the spec is loaded with."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from envd.inputs.secrets import read_secret
from envd.values.errors import SpecError


def source(**kw: object) -> SimpleNamespace:
    return SimpleNamespace(**{"file": None, "env": None, "command": None, **kw})


def test_a_command_runs_with_the_given_environment_not_the_process_one(tmp_path: Path) -> None:
    """A daemon loads with the environment of the last `envd up`: a command source sees it."""
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ENVD_T_TOKEN": "from-up"}
    assert "ENVD_T_TOKEN" not in os.environ
    cmd = source(command=["sh", "-c", 'printf "%s\\n" "$ENVD_T_TOKEN"'])
    assert read_secret("token", cmd, tmp_path, environ) == b"from-up"  # type: ignore[arg-type]


def test_env_and_file_sources(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(b"hunter2\n")
    assert read_secret("pw", source(file="pw"), tmp_path, {}) == b"hunter2\n"  # type: ignore[arg-type]
    assert read_secret("pw", source(env="PW"), tmp_path, {"PW": "x"}) == b"x"  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="PW is not set"):
        read_secret("pw", source(env="PW"), tmp_path, {})  # type: ignore[arg-type]
