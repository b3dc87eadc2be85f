"""Everything ``up`` reads before it touches the engine: the spec, secret
values, build-context digests and the lock, resolved into a desired state.

A bad spec fails here (exit 2) before any engine call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from envd.core.desired import DesiredProject, desire
from envd.inputs import desired_cache
from envd.inputs.buildctx import BuildInputs
from envd.inputs.keys import load_keys

# Target has its own module (the desired cache needs it too); it stays
# importable from here, where most callers meet it.
from envd.inputs.target import Target as Target
from envd.values.keys import Keys

if TYPE_CHECKING:  # the loader pulls in pydantic; a cached `up` never needs it
    from envd.inputs.secrets import CommandValue, CommandValues
    from envd.spec.load import LoadedSpec


def state_dir(project_dir: Path) -> Path:
    return project_dir / ".envd"


def prepare(
    target: Target,
    environ: Mapping[str, str] | None = None,
    image_overrides: Mapping[str, str] | None = None,
    frozen: bool = False,
    use_lock: bool = True,
    read_secret_values: bool = True,
    keys: Keys | None = None,
    acting: bool = False,
    commands: CommandValues | None = None,
) -> tuple[LoadedSpec, DesiredProject]:
    """Everything that needs no engine; raises SpecError (exit 2) on bad input.

    ``acting``: the caller is about to create containers (``up``, ``run``, the
    daemon). Then what the spec reaches outside its project must be approved
    (``ConsentRequired``, exit 2, before anything runs) and approved ``command``
    secret sources run. Otherwise no host command runs: those secrets have no
    value, and their services' digests are unknown (``command_secrets`` names
    them; ``envd.core.status.unchecked_secrets`` keeps a plan honest about it).
    ``keys`` defaults to this user's (``envd.inputs.keys.load_keys``).
    ``commands`` (a daemon's): command sources are never run; their values are
    those the last ``envd up`` sent, and a source without one is left out as in
    a read-only command (``command_secrets_unread`` names them).
    """
    from envd.inputs.secrets import read_secrets
    from envd.spec.load import load

    environ = os.environ if environ is None else environ
    loaded = load(
        target.project_dir, target.file, target.environment, environ, target.profiles, target.swarm
    )
    if acting:
        from envd.inputs.consent import require

        require(loaded, environ)
    active = loaded.active_services()
    secret_names = {s.source for svc in active.values() for s in svc.secrets}
    # `down` needs names, not values: an unset secret variable must not stop a teardown.
    values = (
        read_secrets(
            secret_names,
            loaded.spec.secrets,
            loaded.project_dir,
            environ,
            run_commands=acting and commands is None,
            provided=commands,
        )
        if read_secret_values
        else {}
    )
    digests = {
        name: inputs.digest(state_dir(loaded.project_dir))
        for name, inputs in build_inputs(loaded).items()
    }
    if use_lock:
        from envd.inputs import lock as lockfile

        lock = lockfile.read(loaded.project_dir)
        if frozen:
            problems = lockfile.check(lock, loaded, digests)
            if problems:
                from envd.values.errors import LockMismatch

                raise LockMismatch(
                    f"{lockfile.LOCK_FILE} does not match the spec (--frozen):\n"
                    + "\n".join(problems)
                    + "\nRun `envd lock` and commit the result, or drop --frozen."
                )
        if image_overrides is None:
            image_overrides = lockfile.overrides(lock, loaded)
    keys = load_keys() if keys is None else keys
    from envd.inputs.configs import read_configs

    # Like secrets: `down` needs no content, and an unset variable must not stop it.
    configs = read_configs(loaded) if read_secret_values else {}
    return loaded, desire(
        loaded, values, digests, image_overrides, keys=keys, config_values=configs
    )


def build_inputs(loaded: LoadedSpec) -> dict[str, BuildInputs]:
    """What each active build service's image digest is computed from."""
    out: dict[str, BuildInputs] = {}
    for name, svc in loaded.active_services().items():
        if svc.build is None:
            continue
        context = Path(loaded.build_contexts[svc.build.context])
        # Files a sync rule copies into the running container must not
        # also force a rebuild: that is the point of syncing them.
        synced: list[str] = []
        for rule in svc.watch:
            if rule.action in ("sync", "sync+restart"):
                path = (loaded.project_dir / rule.path).resolve()
                if path == context or context in path.parents:
                    synced.append(path.relative_to(context).as_posix())
        out[name] = BuildInputs(
            str(context),
            svc.build.dockerfile,
            tuple(sorted(svc.build.args.items())),
            svc.build.target,
            tuple(synced),
        )
    return out


def prepare_desired(
    target: Target, environ: Mapping[str, str] | None = None, frozen: bool = False
) -> DesiredProject:
    """``prepare(acting=True)`` for ``up``, which needs only the desired state:
    served from ``.envd/desired.cache`` when none of its inputs changed (see
    desired_cache). The cache is keyed on this user's approval of the spec too,
    so a revoked approval is never served from it."""
    return prepare_for_up(target, environ, frozen)[0]


def prepare_for_up(
    target: Target,
    environ: Mapping[str, str] | None = None,
    frozen: bool = False,
    *,
    outcome: list[str] | None = None,
) -> tuple[DesiredProject, dict[str, CommandValue]]:
    """``prepare_desired``, and what each approved ``command`` secret source
    printed (run once, here): ``envd up`` hands those to its daemon, which
    never runs a host command itself. ``outcome`` gets where the desired state
    came from appended: "hit" (the cache, every input as stored), "patched" (the
    cache with a spec edit applied) or "loaded" (the spec, the full way)."""
    from envd.inputs.approvals import state_token
    from envd.spec.paths import resolve_paths

    environ = os.environ if environ is None else environ
    keys = load_keys()
    spec_file, base = resolve_paths(target.project_dir, target.file)
    approval = state_token(spec_file, base, target.environment, environ)
    cached = desired_cache.lookup_with_commands(
        target, environ, frozen, keys, approval, outcome=outcome
    )
    if cached is not None:
        return cached
    loaded, desired = prepare(target, environ, frozen=frozen, keys=keys, acting=True)
    if outcome is not None:
        outcome.append("loaded")
    desired_cache.store(
        target, environ, frozen, loaded, desired, build_inputs(loaded), keys, approval
    )
    return desired, command_values(loaded, desired)


def command_values(loaded: LoadedSpec, desired: DesiredProject) -> dict[str, CommandValue]:
    """The values ``desired`` was built with for the spec's ``command`` sources."""
    from envd.inputs.secrets import CommandValue

    sources = desired_cache.secret_sources(loaded)
    values = desired_cache.secret_values(desired, sources)
    out: dict[str, CommandValue] = {}
    for name, value in values.items():
        command = loaded.spec.secrets[name].command
        if command is not None:
            out[name] = CommandValue(tuple(command), value)
    return out
