"""A secret's target may not lie under a mount of its service: the value would land in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.spec.load import load
from envd.values.errors import SpecError

HEAD = """
[secrets.db]
env = "PW"

[services.app]
image = "alpine"
"""


def problems(tmp_path: Path, service: str) -> list[str]:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "envd.toml").write_text(HEAD + service)
    with pytest.raises(SpecError) as info:
        load(tmp_path, environ={"PW": "x"})
    return [f"{p.file}:{p.line}:{p.column}: {p.message}" for p in info.value.problems]


@pytest.mark.parametrize(
    ("service", "mount"),
    [
        ('volumes = ["./data:/run/secrets"]\nsecrets = ["db"]\n', "bind mount of './data'"),
        (
            'volumes = ["./data:/etc/app"]\nsecrets = [{source = "db", target = "/etc/app/pw"}]\n',
            "bind mount of './data'",
        ),
        (
            'volumes = ["cache:/run/secrets"]\nsecrets = ["db"]\n[volumes.cache]\n',
            "volume of 'cache' at /run/secrets",
        ),
        ('volumes = ["/run"]\nsecrets = ["db"]\n', "anonymous volume at /run"),
        ('tmpfs = ["/run/secrets:size=1m"]\nsecrets = ["db"]\n', "tmpfs at /run/secrets"),
        ('read_only = true\nvolumes = ["./data:/run/secrets/"]\nsecrets = ["db"]\n', "bind mount"),
    ],
)
def test_a_secret_under_a_mount_is_a_located_spec_error(
    tmp_path: Path, service: str, mount: str
) -> None:
    """A secret target under a bind mount, volume or tmpfs (or AT /run/secrets) is refused, located."""
    found = problems(tmp_path, service)
    assert len(found) == 1, found
    assert "service 'app'" in found[0] and "secret 'db'" in found[0] and mount in found[0]
    assert "envd.toml:" in found[0] and ":0:" not in found[0]


def test_a_mount_beside_the_secrets_is_fine(tmp_path: Path) -> None:
    """A mount that holds no secret target (a sibling path) stays allowed."""
    (tmp_path / "data").mkdir()
    (tmp_path / "envd.toml").write_text(
        HEAD + 'volumes = ["./data:/run/secrets-not", "/run/other"]\nsecrets = ["db"]\n'
    )
    assert "app" in load(tmp_path, environ={"PW": "x"}).spec.services
