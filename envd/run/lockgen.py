"""Resolve every environment's images to digests and build the lock (``envd lock``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace

from envd.engine.base import Engine
from envd.inputs.lock import (
    BASE,
    Lock,
    LockedEnvironment,
    LockedService,
    repo_digest,
    service_digest,
    spec_digest,
)
from envd.inputs.prepare import Target, prepare
from envd.run.converge import plan_project, refuse_problems
from envd.run.images import apply_images
from envd.spec.load import load
from envd.values.errors import EnvironmentFailed, ServiceFailure
from envd.values.events import Emit, Event, discard
from envd.values.types import ObservedImage


def environments_of(target: Target) -> list[str | None]:
    loaded = load(target.project_dir, target.file, None, profiles=target.profiles)
    return [None, *sorted(loaded.spec.environments)]


def _registry_pin(
    engine: Engine, ref: str, local: str, image: ObservedImage, emit: Emit
) -> tuple[str, ObservedImage]:
    """Pin a tag to the digest its registry serves now, not to a stale local copy.

    A tag pulled long ago may have moved since: the lock records what the
    registry holds (pulled by digest when it is not the local image). Offline,
    the local image's own repo digest is kept, and an event says so.
    """
    ask = getattr(engine, "registry_digest", None)  # real engines only
    if ask is None:
        return local, image
    remote = ask(ref)
    repo = local.split("@", 1)[0]
    if remote is None:
        emit(
            Event(
                "lock",
                f"image {ref}",
                "registry not reachable: pinned the digest of the local image",
                "info",
            )
        )
        return local, image
    pinned = f"{repo}@{remote}"
    if pinned == local:
        return local, image
    return pinned, engine.inspect_image(pinned) or engine.pull_image(pinned)


def _unlocked(_: str) -> AbstractContextManager[None]:
    return nullcontext()


def make_lock(
    engine: Engine,
    target: Target,
    emit: Emit = discard,
    hold: Callable[[str], AbstractContextManager[None]] = _unlocked,
) -> Lock:
    """Pull or build what is missing, then pin every service of every environment.

    ``hold(project)`` is held around each environment's pulls and builds
    (the converge lock, so an `up` of that environment does not race them).
    """
    envs: dict[str, LockedEnvironment] = {}
    for env in environments_of(target):
        # Every service is pinned, whatever profiles this run enables: a
        # teammate (or CI) running `--profile debug --frozen` needs them too.
        spec = load(target.project_dir, target.file, env, profiles=target.profiles).spec
        every = frozenset(p for svc in spec.services.values() for p in svc.profiles)
        t = replace(target, environment=env, profiles=target.profiles | every)
        # The lock is written from the spec, never from an older lock.
        # Secret values change no image: locking needs none of them.
        loaded, desired = prepare(t, use_lock=False, read_secret_values=False)
        with hold(desired.project):
            plan, _ = plan_project(engine, desired)
            refuse_problems(plan)
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
                if "@" in resolved and "@" not in svc.image_ref:
                    resolved, image = _registry_pin(engine, svc.image_ref, resolved, image, emit)
            services[name] = LockedService(
                image=loaded.spec.services[name].image or svc.image_ref,
                resolved=resolved,
                image_id=image.id,
                config=service_digest(loaded, name),
                context=context,
            )
        envs[env or BASE] = LockedEnvironment(spec=spec_digest(loaded), services=services)
    return Lock(envs)
