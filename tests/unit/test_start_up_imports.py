"""What the commands most runs use load at start-up: nothing a cached run does not need.

Every ``envd up``, ``down`` and ``status`` pays for its imports before it can
ask the engine anything (issue 15: a one-service change within 1.3x the
engine's own work). These tests import the modules those commands load, in a
fresh interpreter, and name the heavy ones that must stay out: the spec's
pydantic models (only a spec the desired cache cannot serve needs them), the
Docker SDK, ``http.client``/``email`` (the engine speaks through envd's own
HTTP client), ``ssl``, ``asyncio``, the daemon's server stack, ``difflib`` (the
"did you mean" hints) and the spec's locator and interpolation (error paths and
full loads). A structural check, not a timing: it fails naming the module and
who imported it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

# The modules `envd up` (with or without --once), `envd down` and `envd status`
# import before their first engine call when the desired cache serves them.
PATH_MODULES = (
    "envd.cli.app",
    "envd.cli.project",
    "envd.cli._common",
    "envd.cli._status",
    "envd.cli.progress",
    "envd.inputs.prepare",
    "envd.inputs.desired_cache",
    "envd.inputs.desired_patch",
    "envd.inputs.approvals",
    "envd.inputs.keys",
    "envd.core.status",
    "envd.run.converge",
    "envd.run.project_lock",
    "envd.run.teardown",
    "envd.engine.docker.client",
    "envd.daemon.process",
    "envd.spec.read",
    "envd.spec.paths",
)

HEAVY = (
    "pydantic",
    "pydantic_core",
    "docker",
    "requests",
    "urllib3",
    "http.client",
    "email",
    "ssl",
    "asyncio",
    "uvicorn",
    "starlette",
    "difflib",
    "tomllib",
    "subprocess",
    "secrets",
    "envd.spec.models",
    "envd.spec.load",
    "envd.spec.locate",
    "envd.spec.interpolate",
    "envd.spec.hints",
    "envd.interop",
    "envd.swarm",
    "envd.daemon.server",
    "envd.daemon.client",
)

# Run in a fresh interpreter: which modules are loaded, and who first imported each.
_PROBE = """
import builtins, json, sys
first = {}
real_import = builtins.__import__

def tracing(name, globals=None, locals=None, fromlist=(), level=0):
    before = set(sys.modules)
    try:
        return real_import(name, globals, locals, fromlist, level)
    finally:
        who = (globals or {}).get("__name__", "?")
        for new in set(sys.modules) - before:
            first.setdefault(new, who)

builtins.__import__ = tracing
import importlib
for module in sys.argv[1:]:
    importlib.import_module(module)
for module in sys.modules:  # what importlib loaded directly, and the interpreter's own
    first.setdefault(module, "(the probe or the interpreter)")
print(json.dumps(first))
"""


def _probe(script: str, modules: tuple[str, ...]) -> str:
    """What ``script`` prints, run in a fresh interpreter with ``modules`` as its arguments."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVD_")}
    return subprocess.run(
        [sys.executable, "-c", script, *modules],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    ).stdout


def _loaded(modules: tuple[str, ...]) -> dict[str, str]:
    first: dict[str, str] = json.loads(_probe(_PROBE, modules))
    return first


@pytest.fixture(scope="module")
def loaded() -> dict[str, str]:
    return _loaded(PATH_MODULES)


@pytest.mark.parametrize("heavy", HEAVY)
def test_the_up_down_and_status_path_loads_no_heavy_module(
    loaded: dict[str, str], heavy: str
) -> None:
    """Importing what up, down and status load leaves this module (and its submodules) out."""
    hits = {m: who for m, who in loaded.items() if m == heavy or m.startswith(heavy + ".")}
    assert not hits, f"{heavy} is imported on the start-up path: {hits}"


def test_the_probe_sees_what_it_imports(loaded: dict[str, str]) -> None:
    """The probe records the modules it imported and who asked (so an absence means something)."""
    assert set(PATH_MODULES) <= set(loaded)
    assert loaded["envd.values.types"].startswith("envd.")
    assert "pydantic" in _loaded(("envd.spec.models",))


# The lean entry's no-op `up --once` (envd.cli._lean_read) and what it loads
# on a hit: it runs before anything else, so its budget is a few milliseconds
# (issue 15: ≤ 0.25x Compose v2's no-op, whose floor is the interpreter itself).
LEAN_MODULES = (
    "envd.__main__",
    "envd.cli._lean_read",
    "envd.cli._lean_status",
    "envd.cli._status_text",
    "envd.cli.progress",
    "envd.inputs.desired_key",
    "envd.inputs.approvals",
    "envd.inputs.keys",
    "envd.inputs.safefile",
    "envd.run.lock_file",
    "envd.values.keys",
)

# Each costs the lean path from 0.3 to 7 ms (measured with -X importtime).
LEAN_HEAVY = (
    "dataclasses",
    "inspect",
    "typing",
    "collections",
    "contextlib",
    "json",
    "re",
    "enum",
    "pathlib",
    "fnmatch",
    "urllib",
    "ipaddress",
    "socket",
    "selectors",
    "struct",
    "hashlib",
    "_hashlib",
    "hmac",
    "threading",
    "envd.values.record",
    "envd.values.errors",
    "envd.values.events",
    "envd.inputs.target",
    "envd.spec",
    "envd.daemon",
    "envd.run.project_lock",
)


# Imports nothing itself before it looks (the probe above loads json, and so re).
_LEAN_PROBE = """
import sys
before = set(sys.modules)
for module in sys.argv[1:]:
    __import__(module)
print("\\n".join(sorted(set(sys.modules) - before)))
"""


@pytest.fixture(scope="module")
def lean_loaded() -> set[str]:
    return set(_probe(_LEAN_PROBE, LEAN_MODULES).split())


@pytest.mark.parametrize("heavy", LEAN_HEAVY)
def test_the_lean_entry_loads_none_of_what_it_has_no_time_for(
    lean_loaded: set[str], heavy: str
) -> None:
    """The lean up/status modules (and those a hit loads) leave this module out."""
    hits = sorted(m for m in lean_loaded if m == heavy or m.startswith(heavy + "."))
    assert not hits, f"{heavy} is imported on the lean entry's path: {hits}"


def test_the_lean_probe_sees_what_it_imports(lean_loaded: set[str]) -> None:
    """The lean probe lists what the lean modules loaded (so an absence means something)."""
    assert set(LEAN_MODULES) <= lean_loaded
    assert "_json" in lean_loaded
