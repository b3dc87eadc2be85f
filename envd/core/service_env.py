"""A service's environment: its env files, then its ``env``, pass-through names filled in.

One rule for the containers ``desire`` makes and the manifests ``envd export``
writes, so both pass the same variables through.
"""

from __future__ import annotations

from collections.abc import Mapping


def service_env(
    env_files: Mapping[str, str],
    env: Mapping[str, str | None],
    variables: Mapping[str, str],
) -> tuple[dict[str, str], list[str]]:
    """The variables a service runs with, and the pass-through names left out as unset.

    ``env_files`` are the service's env files' variables; ``env`` its own, where
    None passes the variable through from ``variables`` (the environment the
    spec was loaded with). ``env`` wins over the files, as in Compose.
    """
    out = dict(env_files)
    unset: list[str] = []
    for key, value in env.items():
        if value is not None:
            out[key] = value
        elif key in variables:
            out[key] = variables[key]
        else:
            unset.append(key)
    return out, unset
