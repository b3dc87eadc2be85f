"""``unchecked_secrets``: a plan made without command secret values compares every
other field and says which secrets it did not check."""

from __future__ import annotations

from envd.core.plan import Action, Plan
from envd.core.status import unchecked_secrets


def _plan(*actions: Action) -> Plan:
    return Plan("shop", actions)


def test_a_recreate_for_the_secrets_alone_becomes_ok() -> None:
    """Only the unread secrets differ: the container is up to date as far as can be told."""
    plan = unchecked_secrets(
        _plan(Action("recreate", "container shop-web-1", "changed: secrets", service="web")),
        {"web": ("token",)},
    )
    (action,) = plan.actions
    assert action.kind == "ok" and not plan.changes
    assert action.reason.startswith("up to date (secrets not checked")


def test_other_changed_fields_still_recreate_and_say_the_secrets_were_not_checked() -> None:
    """env changed too: still a recreate, naming env and saying the secrets were not checked."""
    plan = unchecked_secrets(
        _plan(
            Action("recreate", "container shop-web-1", "changed: env, secrets", service="web"),
            Action("recreate", "container shop-api-1", "configuration changed", service="api"),
        ),
        {"web": ("token",), "api": ("token",)},
    )
    assert [(a.kind, a.reason) for a in plan.actions] == [
        ("recreate", "changed: env (secrets not checked)"),
        ("recreate", "configuration changed (secrets not checked)"),
    ]


def test_services_whose_secrets_were_read_are_untouched() -> None:
    """A service without command secrets keeps its plan as it was."""
    original = _plan(Action("recreate", "container shop-db-1", "changed: secrets", service="db"))
    assert unchecked_secrets(original, {"web": ("token",)}) == original
    assert unchecked_secrets(original, {}) is original
