"""Compose import/export of lifecycle hooks (post_start / pre_stop) and develop.watch sync+exec."""

from __future__ import annotations

from pathlib import Path

import yaml

from envd.interop.compose_export import to_compose
from envd.interop.compose_import import import_compose
from envd.interop.render import render_yaml
from tests.compose_corpus import import_and_load

COMPOSE = """\
services:
  app:
    image: busybox
    post_start:
      - command: chown -R 1001:1001 /data
        user: root
        privileged: true
      - command: ["sh", "-c", "echo up"]
        working_dir: /tmp
        environment:
          - MODE=dev
    pre_stop:
      - command: ./flush.sh
        environment: {FLUSH: "1"}
    develop:
      watch:
        - path: requirements.txt
          action: sync+exec
          target: /app/requirements.txt
          initial_sync: false
          exec:
            command: pip install -r /app/requirements.txt
            user: root
        - path: src
          action: sync
          target: /app/src
"""


def test_hooks_and_sync_exec_are_imported_field_for_field(tmp_path: Path) -> None:
    """post_start, pre_stop and a sync+exec rule's exec keep every ServiceHook field."""
    (tmp_path / "requirements.txt").write_text("flask\n")
    loaded = import_and_load(COMPOSE, tmp_path)
    app = loaded.spec.services["app"]
    first, second = app.post_start
    assert (first.command, first.user, first.privileged) == (
        ["chown", "-R", "1001:1001", "/data"],
        "root",
        True,
    )
    assert (second.command, second.working_dir, second.environment) == (
        ["sh", "-c", "echo up"],
        "/tmp",
        {"MODE": "dev"},
    )
    assert app.pre_stop[0].environment == {"FLUSH": "1"}
    rule = app.watch[0]
    assert rule.action == "sync+exec" and rule.exec is not None
    assert (rule.exec.command, rule.exec.user) == (
        ["pip", "install", "-r", "/app/requirements.txt"],
        "root",
    )


def test_initial_sync_false_and_unknown_hook_fields_are_noted_not_dropped_silently() -> None:
    """envd always syncs at start, so initial_sync: false is noted; an unknown hook key is named."""
    text = COMPOSE.replace("user: root\n        privileged", "bogus: 1\n        privileged")
    notes = import_compose(text).notes
    assert any("initial_sync" in n and "always brings" in n for n in notes), notes
    assert any("post_start[0].bogus" in n for n in notes), notes


def test_export_keeps_hooks_and_exec_in_x_envd_and_import_reads_them_back(tmp_path: Path) -> None:
    """envd → compose → envd is lossless for hooks and sync+exec (kept in x-envd, with a note)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "requirements.txt").write_text("flask\n")
    first = import_and_load(COMPOSE, tmp_path / "a")
    exported = to_compose(first)
    doc = exported.documents[0]
    ext = doc["x-envd"]["services"]["app"]
    assert ext["post_start"][0] == {
        "command": ["chown", "-R", "1001:1001", "/data"],
        "user": "root",
        "privileged": True,
    }
    assert ext["watch"][0]["exec"]["command"] == ["pip", "install", "-r", "/app/requirements.txt"]
    assert "post_start" not in doc["services"]["app"]
    assert any("post_start" in n and "2.30" in n for n in exported.notes)
    second = import_and_load(render_yaml(exported), tmp_path / "a")
    assert second.spec.model_dump() == first.spec.model_dump()
    assert yaml.safe_load(render_yaml(exported))["services"]["app"]["image"] == "busybox"
