"""Resolve every environment's images to digests and build the lock (``envd lock``)."""

from __future__ import annotations

from dataclasses import replace

from envd.apply import apply_images
from envd.converge import Target, plan_project, prepare
from envd.engine.base import Engine
from envd.errors import EnvironmentFailed, ServiceFailure
from envd.events import Emit, discard
from envd.lock import (
    BASE,
    Lock,
    LockedEnvironment,
    LockedService,
    repo_digest,
    service_digest,
    spec_digest,
)
from envd.spec.load import load


def environments_of(target: Target) -> list[str | None]:
    loaded = load(target.project_dir, target.file, None, profiles=target.profiles)
    return [None, *sorted(loaded.spec.environments)]


def make_lock(engine: Engine, target: Target, emit: Emit = discard) -> Lock:
    """Pull or build what is missing, then pin every service of every environment."""
    envs: dict[str, LockedEnvironment] = {}
    for env in environments_of(target):
        t = replace(target, environment=env)
        # The lock is written from the spec, never from an older lock.
        loaded, desired = prepare(t, use_lock=False)
        plan, _ = plan_project(engine, desired)
        if plan.problems:
            raise EnvironmentFailed([ServiceFailure("-", p) for p in plan.problems])
        if plan.image_actions:
            apply_images(plan, engine, desired, emit)
        services: dict[str, LockedService] = {}
        for name, svc in desired.services.items():
            image = engine.inspect_image(svc.image_ref)
            if image is None:
                raise EnvironmentFailed(
                    [ServiceFailure(name, f"image {svc.image_ref!r} is missing")]
                )
            if svc.build is not None:
                resolved, context = image.id, svc.build.digest
            else:
                resolved, context = repo_digest(svc.image_ref, image.repo_digests) or image.id, ""
            services[name] = LockedService(
                image=loaded.spec.services[name].image or svc.image_ref,
                resolved=resolved,
                image_id=image.id,
                config=service_digest(loaded, name),
                context=context,
            )
        envs[env or BASE] = LockedEnvironment(spec=spec_digest(loaded), services=services)
    return Lock(envs)
