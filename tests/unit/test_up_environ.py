"""`envd up` hands the daemon only the variables the spec can read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import pytest

from envd.cli import _up
from envd.daemon import process
from envd.inputs.target import Target
from envd.values.errors import EnvdError

SPEC = """
[services.web]
image = "nginx:${TAG:-latest}"
environment = { DB = "$DB_URL", MODE = "${MODE:-${FALLBACK}}" }

[secrets.pg]
env = "PGPW"
"""


class _Recorder:
    """A daemon client that keeps the environment `up` sends and stops there."""

    def __init__(self) -> None:
        self.sent: Mapping[str, str] | None = None

    def reload(self, **kwargs: object) -> object:
        environ = kwargs.get("environ")
        assert isinstance(environ, Mapping)
        self.sent = dict(environ)
        raise EnvdError("recorded")


def test_up_sends_only_referenced_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable the spec does not reference (a cloud key) never reaches the daemon's request."""
    (tmp_path / "envd.toml").write_text(SPEC)
    (tmp_path / ".env").write_text("FROM_DOTENV=${DOTENV_REF}\n")
    for name, value in {
        "TAG": "1",
        "DB_URL": "postgres://",
        "FALLBACK": "x",
        "PGPW": "pw",
        "DOTENV_REF": "d",
        "ENVD_ALLOW": "1",
        "DOCKER_HOST": "unix:///var/run/docker.sock",
        "AWS_SECRET_ACCESS_KEY": "leak-me-not",
        "UNRELATED": "no",
        "SSH_AUTH_SOCK": "/tmp/agent.sock",
        "GNUPGHOME": "/home/u/.gnupg",
    }.items():
        monkeypatch.setenv(name, value)
    recorder = _Recorder()
    monkeypatch.setattr(process, "running", lambda *_: recorder)
    obj = SimpleNamespace(target=lambda: Target(project_dir=str(tmp_path)))
    desired = SimpleNamespace(environment=None)
    with pytest.raises(EnvdError, match="recorded"):
        _up.up_with_daemon(obj, tmp_path, desired, None, 1.0, False, {})  # type: ignore[arg-type]
    assert recorder.sent is not None
    for name in ("TAG", "DB_URL", "FALLBACK", "PGPW", "DOTENV_REF", "ENVD_ALLOW", "DOCKER_HOST"):
        assert name in recorder.sent, name
    # Nor what only a host command would need: the daemon runs none (`up` ran them).
    for name in (
        "AWS_SECRET_ACCESS_KEY",
        "UNRELATED",
        "PATH",
        "HOME",
        "SSH_AUTH_SOCK",
        "GNUPGHOME",
    ):
        assert name not in recorder.sent, name
