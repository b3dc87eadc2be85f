"""The adapter replayed against recorded (API 1.41) and swagger-written (API 1.55) answers.

No engine: ``tests/engine_replay.ReplayEngine`` answers from fixtures. The
1.41 one is a recording against Docker 20.10 (kept true by
``tests/integration/test_engine_recording.py``); the 1.55 one holds only the
fields the 1.55 swagger defines, so an adapter reading a field newer engines
removed or renamed gets a different result and fails here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from envd.engine.docker import versions
from tests.engine_replay import FIXTURES, ReplayEngine, load, scenario

SWAGGER = json.loads((FIXTURES / "swagger-fields.json").read_text())


def _fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return doc


def _replay(name: str) -> tuple[ReplayEngine, dict[str, Any], dict[str, Any]]:
    doc = _fixture(name)
    eng = ReplayEngine(load(name))
    result = json.loads(json.dumps(scenario(eng, doc["project"], doc["image"])))
    assert eng.script == [], "the adapter skipped calls the recording has"
    return eng, result, doc


def _version(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result["version"][k] for k in ("name", "api_version")}


def test_replaying_the_docker_20_10_recording_gives_the_recorded_result() -> None:
    """Against Docker 20.10's own answers the adapter asks the same calls and reads the same."""
    eng, result, doc = _replay("v1.41-recorded.json")
    assert _version(result) == {"name": "Docker", "api_version": "1.41"}
    expected = dict(doc["result"])
    assert {k: v for k, v in result.items() if k != "version"} == {
        k: v for k, v in expected.items() if k != "version"
    }
    assert all(u.startswith("/v1.41/") for u in eng.urls if u != "/version")
    # 1.41 takes one network at create: the second is joined by a connect call.
    [create] = [e for e in eng.sent if e.path.startswith("/containers/create")]
    assert list(create.request["NetworkingConfig"]["EndpointsConfig"]) == [
        f"{doc['project']}-front"
    ]
    assert any(e.path.endswith("/connect") for e in eng.sent)
    assert all(
        e.request.get("CheckDuplicate") is True for e in eng.sent if e.path == "/networks/create"
    )


def test_replaying_api_1_55_answers_gives_the_same_result() -> None:
    """Against answers holding only 1.55's fields the adapter reads what it read on 1.41."""
    eng, result, _ = _replay("v1.55-swagger.json")
    assert _version(result) == {"name": "Docker", "api_version": "1.55"}
    recorded = _fixture("v1.41-recorded.json")["result"]
    assert {k: v for k, v in result.items() if k != "version"} == {
        k: v for k, v in recorded.items() if k != "version"
    }
    assert all(u.startswith("/v1.55/") for u in eng.urls if u != "/version")


def test_api_1_55_payloads_use_the_newer_forms() -> None:
    """On 1.44+: every network joins at create (no connect), no deprecated CheckDuplicate."""
    eng, _, doc = _replay("v1.55-swagger.json")
    [create] = [e for e in eng.sent if e.path.startswith("/containers/create")]
    endpoints = create.request["NetworkingConfig"]["EndpointsConfig"]
    project = doc["project"]
    assert endpoints == {
        f"{project}-front": {"Aliases": ["web"]},
        f"{project}-back": {"Aliases": ["api"]},
    }
    assert not any(e.path.endswith("/connect") for e in eng.sent)
    assert all("CheckDuplicate" not in e.request for e in eng.sent if e.path == "/networks/create")
    assert set(create.request["Healthcheck"]) <= set(SWAGGER["1.55"]["HealthConfig"])
    assert set(create.request["HostConfig"]) <= set(SWAGGER["1.55"]["HostConfig"])


_SCHEMA_OF = (
    ("/version", "SystemVersion"),
    ("/containers/json", "ContainerSummary"),
    ("/images/", "ImageInspect"),
    ("/networks?", "Network"),
)


def _keys_outside_swagger(exchange: dict[str, Any]) -> set[str]:
    fields = SWAGGER["1.55"]
    path, answer = exchange["path"], exchange["answer"]
    if exchange["method"] != "GET" or answer is None:
        return set()
    if (
        path.startswith("/containers/")
        and path.split("?")[0].endswith("/json")
        and "/json?" not in path
        and path != "/containers/json"
    ):
        extra = set(answer) - set(fields["ContainerInspectResponse"])
        extra |= set(answer["State"]) - set(fields["ContainerState"])
        extra |= set(answer["Config"]) - set(fields["ContainerConfig"])
        for m in answer["Mounts"]:
            extra |= set(m) - set(fields["MountPoint"])
        return extra
    if path.startswith("/volumes?"):
        return {k for v in answer["Volumes"] for k in v if k not in fields["Volume"]}
    for prefix, schema in _SCHEMA_OF:
        if path.startswith(prefix):
            items = answer if isinstance(answer, list) else [answer]
            return {k for item in items for k in item if k not in fields[schema]}
    return set()


def test_the_1_55_fixture_holds_only_fields_the_1_55_swagger_defines() -> None:
    """The newer fixture is faithful to the swagger: no field the 1.55 API does not have."""
    for exchange in load("v1.55-swagger.json"):
        assert _keys_outside_swagger(exchange) == set(), exchange["path"]


@pytest.mark.parametrize(
    ("removed", "schema"),
    [
        ("VirtualSize", "ImageInspect"),
        ("ContainerConfig", "ImageInspect"),
        ("Container", "ImageInspect"),
        ("MacAddress", "ContainerConfig"),
        ("Containers", "Network"),
    ],
)
def test_fields_removed_after_1_41_are_gone_from_the_1_55_swagger(
    removed: str, schema: str
) -> None:
    """The changes docs/compatibility.md lists are real: 1.55 no longer defines these fields."""
    assert removed not in SWAGGER["1.55"][schema]


def test_newest_known_version_is_the_swaggers() -> None:
    """envd speaks up to the version of the newest swagger its fixtures were written from."""
    assert versions.render(versions.NEWEST) == "1.55"
