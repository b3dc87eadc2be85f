"""What ``FakeSwarm`` models beyond the contract suite: one node's host ports, IPVS, failures.

The contract suite (``tests/contract/test_swarm_contract.py``) checks the fake
against a real swarm; these cases cover the fake's own controls and the
limits it models that a one-node test swarm cannot show cheaply.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from envd.engine.swarm.fake import FakeSwarm
from envd.values import labels
from envd.values.errors import EngineError, EngineUnavailable
from envd.values.swarm_types import TASK_HASH_LABEL, PublishedPort, SecretRef, SwarmServiceSpec
from envd.values.types import ContainerCreate, NetworkAttachment


def _spec(
    name: str, *ports: PublishedPort, replicas: int = 1, mode: str = "dnsrr"
) -> SwarmServiceSpec:
    container = ContainerCreate(name="", image="img", labels={TASK_HASH_LABEL: "h"})
    return SwarmServiceSpec(
        name=name,
        labels={labels.PROJECT: "p"},
        container=container,
        replicas=replicas,
        ports=ports,
        endpoint_mode=mode,
    )


def test_a_host_port_held_by_a_running_task_leaves_the_next_task_pending() -> None:
    """Two replicas publishing the same host port on one node: one runs, one waits for a node."""
    eng = FakeSwarm()
    sid = eng.create_service(_spec("p_web", PublishedPort(80, 8080, mode="host"), replicas=2), {})
    states = sorted((t.state, t.error) for t in eng.list_tasks([sid]))
    assert states[0][0] == "pending" and "host-mode port already in use" in states[0][1]
    assert states[1] == ("running", "")
    assert eng.answers(8080)


def test_an_ingress_port_answers_only_with_ipvs() -> None:
    """The routing mesh needs IPVS: the same VIP service answers on its port only when the kernel has it."""
    for ipvs in (False, True):
        eng = FakeSwarm(ipvs=ipvs)
        assert eng.ipvs_missing() is not ipvs
        eng.create_service(_spec("p_web", PublishedPort(80), mode="vip"), {})
        (svc,) = eng.list_services({labels.PROJECT: "p"})
        (port,) = svc.ports
        assert port.published is not None and port.published >= 30000
        assert eng.answers(port.published) is ipvs


def test_an_unknown_secret_or_network_is_refused_like_the_engine() -> None:
    """A service naming a secret id or network that does not exist is refused, and nothing is made."""
    eng = FakeSwarm()
    with pytest.raises(EngineError, match="secret not found"):
        eng.create_service(
            replace(_spec("p_a"), secrets=(SecretRef("s", "s"),)),
            {"s": "nope"},
        )
    with pytest.raises(EngineError, match="network n not found"):
        eng.create_service(replace(_spec("p_b"), networks=(NetworkAttachment("n"),)), {})
    assert eng.list_services({}) == [] and eng.journal == []


def test_failures_and_an_unreachable_engine() -> None:
    """fail_next raises once and changes nothing; an unavailable fake raises EngineUnavailable everywhere."""
    eng = FakeSwarm()
    eng.fail_next("create_secret", EngineError("boom", 500))
    with pytest.raises(EngineError, match="boom"):
        eng.create_secret("s", {}, b"v")
    assert eng.create_secret("s", {}, b"v") and eng.journal == [("create-secret", "s")]
    with pytest.raises(AssertionError):
        eng.fail_next("no_such_call", EngineError("x"))
    eng.available = False
    with pytest.raises(EngineUnavailable):
        eng.list_secrets({})
    with pytest.raises(EngineUnavailable):
        eng.ping()
