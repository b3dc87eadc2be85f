"""Engine answers that are a race inside the engine are asked again; other failures are not.

Docker's exit handler may write the container's state file while a forced
removal empties its directory; the removal then answers 500 "unable to remove
filesystem ... directory not empty" and leaves the container dead, and asking
again removes it. No engine: ``ReplayEngine`` answers, in order.
"""

from __future__ import annotations

from typing import Any

import pytest

from envd.engine.docker import session
from envd.values.errors import EngineError
from tests.engine_replay import ReplayEngine

CID = "772bea2ba57f"
DELETE = f"/containers/{CID}?v=0&force=1"
RACE = {
    "message": f"unable to remove filesystem for {CID}: unlinkat"
    f" /var/lib/docker/containers/{CID}: directory not empty"
}
VERSION = {
    "method": "GET",
    "path": "/version",
    "status": 200,
    "answer": {"Version": "20.10.24", "ApiVersion": "1.41", "Components": []},
}


def _delete(status: int, answer: Any = None) -> dict[str, Any]:
    return {"method": "DELETE", "path": DELETE, "status": status, "answer": answer}


def test_a_removal_that_lost_dockers_race_is_asked_again_until_it_completes() -> None:
    eng = ReplayEngine([VERSION, _delete(500, RACE), _delete(500, RACE), _delete(204)])
    eng.remove_container(CID, mounted=())
    assert eng.script == []
    assert [x.method for x in eng.sent] == ["GET", "DELETE", "DELETE", "DELETE"]


def test_any_other_failure_of_a_removal_is_reported_at_once() -> None:
    other = {"message": "driver overlay2 failed to remove root filesystem: device busy"}
    eng = ReplayEngine([VERSION, _delete(500, other)])
    with pytest.raises(EngineError) as failed:
        eng.remove_container(CID, mounted=())
    assert str(failed.value) == f"container {CID}: {other['message']}"
    assert eng.script == []


def test_a_race_that_does_not_clear_fails_naming_the_container(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same race, allowed no time to clear.
    races = tuple((*r[:4], 0.0) if r[0] == "DELETE" else r for r in session._RACES)
    monkeypatch.setattr(session, "_RACES", races)
    eng = ReplayEngine([VERSION, _delete(500, RACE)])
    with pytest.raises(EngineError) as failed:
        eng.remove_container(CID, mounted=())
    assert str(failed.value) == RACE["message"]
    assert failed.value.status == 500
    assert eng.script == []


def test_podmans_read_of_a_just_exited_container_is_asked_again() -> None:
    """The same mechanism serves Podman's race: a GET answered 500 "no such process"."""
    inspect = f"/containers/{CID}/json"
    gone = {"message": "read /proc/4242/cgroup: no such process", "cause": "no such process"}
    eng = ReplayEngine(
        [
            VERSION,
            {"method": "GET", "path": inspect, "status": 500, "answer": gone},
            {"method": "GET", "path": inspect, "status": 200, "answer": {"Id": CID, "Mounts": []}},
        ]
    )
    assert eng.container_mounts(CID) == []
    assert eng.script == []
