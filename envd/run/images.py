"""Pull and build the images a plan asks for, a few at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from envd.core.build import build_request
from envd.core.desired import DesiredProject
from envd.core.plan import Action, Plan
from envd.engine.base import Engine
from envd.values.errors import EngineError, EnvironmentFailed, ServiceFailure
from envd.values.events import Emit, Event, discard


def apply_images(
    plan: Plan,
    engine: Engine,
    desired: DesiredProject,
    emit: Emit = discard,
    workers: int = 4,
) -> set[str]:
    """Pull and build what the plan asks for; return the refs pulled or built."""
    done: set[str] = set()
    failures: list[ServiceFailure] = []

    def run(action: Action) -> None:
        svc = desired.services[action.service]
        emit(Event(action.kind, action.resource, action.reason, "working", action.service))

        def progress(line: str) -> None:
            emit(Event(action.kind, action.resource, line, "working", action.service))

        if action.kind == "pull":
            engine.pull_image(action.name, progress)
        else:
            engine.build_image(build_request(desired.project, svc, action.name), progress)
        emit(Event(action.kind, action.resource, "done", "done", action.service))

    actions = plan.image_actions
    if not actions:
        return done
    with ThreadPoolExecutor(max_workers=min(workers, len(actions))) as pool:
        futures = {pool.submit(run, a): a for a in actions}
        for fut, action in futures.items():
            try:
                fut.result()
                done.add(action.name)
            except EngineError as exc:
                if exc.exit_code == 3:
                    raise
                emit(Event(action.kind, action.resource, str(exc), "error", action.service))
                verb = "pull" if action.kind == "pull" else "build"
                failures.append(
                    ServiceFailure(action.service, f"could not {verb} {action.name}: {exc}")
                )
    if failures:
        raise EnvironmentFailed(failures)
    return done
