"""``envd run``: a one-off container with a service's configuration."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace

from envd.core.desired import DesiredProject
from envd.engine.base import Engine
from envd.run.bind_dirs import create_bind_dirs
from envd.run.converge import plan_project, refuse_problems
from envd.run.engine_limits import refuse_ignored_limits
from envd.run.images import apply_images
from envd.run.resources import RESOURCE_KINDS, apply_resource
from envd.values import labels


def run_one_off(
    engine: Engine,
    desired: DesiredProject,
    service: str,
    command: list[str] | None,
    rm: bool,
    *,
    docker_cli: str | None = None,
    hold: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> int:
    """Run a one-off container of ``service``; its exit code.

    With ``docker_cli`` (the path of the docker command) the terminal is
    attached through it; without, the container's output is streamed.
    ``hold()`` (the converge lock) is held while images, networks and the
    container are made, and released before the container runs: a one-off
    may wait for a person at its terminal.
    """
    with hold():
        cid = _create(engine, desired, service, command)
    try:
        if docker_cli:
            args = [docker_cli, "start", "-a", "-i"]
            proc = subprocess.run([*args, cid], check=False, env=os.environ)
            return engine.container_state(cid).exit_code or proc.returncode
        engine.start_container(cid)
        for line in engine.stream_logs(cid, follow=True):
            print(line, flush=True)
        state = engine.container_state(cid)
        return state.exit_code or 0
    finally:
        if rm:
            with contextlib.suppress(Exception):
                engine.remove_container(cid, volumes=True)


def _create(
    engine: Engine, desired: DesiredProject, service: str, command: list[str] | None
) -> str:
    """Pull or build the service's image, make the spec's networks and volumes, create the container."""
    refuse_ignored_limits(engine, desired)
    plan, _ = plan_project(engine, desired)
    refuse_problems(plan)
    needed = [a for a in plan.image_actions if a.service == service]
    if needed:
        apply_images(replace(plan, actions=tuple(needed)), engine, desired)
    # The same path as `up`: a network created here first is created as the
    # spec says (driver, internal), and `up` finds nothing to repair.
    for a in plan.actions:
        if a.kind in RESOURCE_KINDS:
            apply_resource(engine, desired, a)
    create_bind_dirs(desired, service=service)  # as `up` would, for this service's binds
    svc = desired.services[service]
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    spec = replace(
        svc.template,
        name=f"{desired.project}-{service}-run-{secrets.token_hex(4)}",
        labels={
            **svc.template.labels,
            labels.PROJECT: desired.project,
            labels.SERVICE: service,
            labels.ONE_OFF: "1",
        },
        command=tuple(command) if command else svc.template.command,
        ports=(),  # like Compose: a one-off does not grab the service's host ports
        restart="no",
        tty=tty,
        stdin_open=True,
    )
    return engine.create_container(spec)
