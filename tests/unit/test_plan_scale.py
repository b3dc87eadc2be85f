"""The planner at scale: what it asks of each service is found directly, never by
trying every other service (make_plan stays linear in the project's size)."""

from __future__ import annotations

from pathlib import Path

from envd.core.desired import desire
from envd.core.host_settings import joined_services
from envd.spec.load import load
from envd.values.keys import Keys

SPEC = """\
[project]
name = "ns-a"

[services.db]
image = "busybox"
ipc = "shareable"

[services.db-1]
image = "busybox"
ipc = "shareable"

[services.web]
image = "busybox"
pid = "service:db-1"
ipc = "service:db"

[services.other]
image = "busybox"
"""


def test_joined_services_reads_the_owner_back_from_dashed_names(tmp_path: Path) -> None:
    """pid/ipc service:NAME joins are found for names with dashes, and only for those."""
    (tmp_path / "envd.toml").write_text(SPEC)
    desired = desire(load(str(tmp_path)), {}, keys=Keys(b"unit-test-hash-key"))
    services = desired.services
    assert joined_services(desired.project, services["web"], services) == {"db", "db-1"}
    assert joined_services(desired.project, services["other"], services) == set()
    assert joined_services(desired.project, services["db"], services) == set()
