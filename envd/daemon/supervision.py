"""Wiring the supervisor into a running daemon: its store, its hooks, its threads."""

from __future__ import annotations

import threading
from typing import Any

from envd.core.desired import DesiredProject
from envd.daemon.heal_store import HealStore
from envd.daemon.log import Logger
from envd.daemon.paths import StatePaths
from envd.daemon.reconciler import Reconciler
from envd.daemon.supervisor import Supervisor
from envd.engine.base import Engine
from envd.run.supervision import add_supervision


def start_supervisor(
    reconciler: Reconciler,
    engine: Engine,
    project: str,
    paths: StatePaths,
    log: Logger,
    stop: threading.Event,
) -> Supervisor:
    supervisor = Supervisor(
        engine,
        project,
        lambda: reconciler.desired,
        HealStore(paths.heal),
        reconciler.publish,
        log,
        stop,
        stopped=lambda: reconciler.actions.stopped,
    )

    def status(desired: DesiredProject, report: dict[str, Any]) -> None:
        add_supervision(engine, desired, report, supervisor.heal_report(desired))

    reconciler.status_hooks.append(status)
    reconciler.rerun_hooks.append(supervisor.reset)
    # A pass may have changed what the supervisor looks at: look again after each.
    reconciler.on_desired(lambda _: supervisor.wake())
    supervisor.start()
    return supervisor
