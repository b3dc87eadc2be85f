"""The real-world Compose corpus (tests/fixtures/compose-corpus) and its field-by-field check.

Each entry is a directory holding one public project's Compose file unchanged
(plus the ``.env`` / env files that project ships beside it), its ``SOURCE``
(repository, path, commit) and the project's ``LICENSE``. The check runs the
file through ``import → validate → export --format compose`` and compares
Compose v2's ``config --format json`` of the original with Compose v2's view of
envd's export, leaf by leaf. ``normalize`` removes only representation (defaults
Compose leaves out on one side and writes on the other); every other difference
fails the test unless ``KNOWN_GAPS`` lists it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from envd.spec.interpolate import interpolate_tree, parse_dotenv
from tests.compose_corpus import materialize

CORPUS_V2_DIR = Path(__file__).resolve().parent / "fixtures" / "compose-corpus"
COMPOSE_V2 = Path(os.environ.get("ENVD_COMPOSE_V2", "/opt/envd-bench/compose-v2/docker-compose"))
ENTRY_FILES = {"SOURCE", "LICENSE"}


def corpus_entries() -> list[Path]:
    """Every corpus directory, sorted by name."""
    return sorted(p for p in CORPUS_V2_DIR.iterdir() if p.is_dir())


def compose_file(entry: Path) -> Path:
    """The one Compose file of a corpus entry (the only top-level ``*.yml``/``*.yaml``)."""
    found = [p for p in entry.iterdir() if p.is_file() and p.suffix in (".yml", ".yaml")]
    assert len(found) == 1, f"{entry.name}: expected one Compose file, found {found}"
    return found[0]


# --------------------------------------------------------------------------- known gaps
#
# THE one place where a difference between Compose v2's view of the original
# and of envd's export is expected. Keys: corpus entry -> field pattern
# (``*`` matches any run of characters in the dotted leaf path, e.g. ``services.*.container_name``) ->
# reason. The pattern "!validate" means the file does not get through
# import → validate yet; its reason ends with "fails with: <part of the
# error>", and a different error fails the test. A listed gap that no longer
# occurs fails the test too, so this list only shrinks by being emptied.

KNOWN_GAPS: dict[str, dict[str, str]] = {
    "opentelemetry-demo": {
        "services.*.build.cache_from*": "unsupported: build.cache_from (a build cache hint, "
        "noted on import; no issue asks for it yet)",
    },
}


# --------------------------------------------------------------------------- preparing


def prepare(entry: Path, directory: Path) -> Path:
    """Copy a corpus entry into ``directory`` and create what it refers to; the Compose file's path."""
    shutil.copytree(entry, directory, ignore=shutil.ignore_patterns(*ENTRY_FILES))
    path = directory / compose_file(entry).name
    doc = yaml.safe_load(path.read_text())
    dotenv = directory / ".env"
    variables = parse_dotenv(dotenv.read_text()) if dotenv.exists() else {}
    # Both spellings: the literal one and the one after .env interpolation
    # (`context: ./src/${SERVICE}` names a directory only once resolved).
    materialize(directory, doc)
    materialize(directory, interpolate_tree(doc, variables))
    return path


def compose_v2_config(directory: Path, file_name: str) -> dict[str, Any]:
    """Compose v2's resolved view of ``file_name`` in ``directory`` (a clean environment)."""
    proc = subprocess.run(
        [
            str(COMPOSE_V2),
            "-p",
            "corpus",
            "--profile",
            "*",
            "-f",
            file_name,
            "config",
            "--format",
            "json",
        ],
        cwd=directory,
        # Only the project's own .env speaks: the host's variables must not leak in.
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{directory / file_name}: compose v2 config: {proc.stderr}"
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------------------- comparing

# Values Compose v2 fills in on one side and leaves out on the other. Each is
# the engine's or Compose's own default, so writing it or not is representation.
_HEALTHCHECK_DEFAULTS = {
    "interval": "30s",
    "timeout": "30s",
    "retries": 3,
    "start_period": "0s",
}


def normalize(config: dict[str, Any]) -> dict[str, Any]:
    """Compose v2's resolved view without what is representation only."""
    out = {k: v for k, v in config.items() if not k.startswith("x-") and k != "name"}
    services = {}
    for name, svc in (out.get("services") or {}).items():
        svc = {k: v for k, v in svc.items() if not k.startswith("x-")}
        if svc.get("init") is False:  # no init is Compose's default
            del svc["init"]
        if svc.get("restart") == "no":  # and so is no restart policy
            del svc["restart"]
        _fold_resources(svc)
        if isinstance(svc.get("security_opt"), list):
            # One option to the engine, three spellings.
            svc["security_opt"] = [
                "no-new-privileges" if o in _NO_NEW_PRIVILEGES else o for o in svc["security_opt"]
            ]
        for mount in svc.get("volumes") or []:
            bind = mount.get("bind") if isinstance(mount, dict) else None
            if isinstance(bind, dict) and bind.get("create_host_path") is True:
                del bind["create_host_path"]  # Compose's default, short syntax or long
                if not bind:
                    del mount["bind"]
        hc = svc.get("healthcheck")
        if isinstance(hc, dict):
            svc["healthcheck"] = {
                k: v for k, v in hc.items() if _HEALTHCHECK_DEFAULTS.get(k, object()) != v
            }
        services[name] = svc
    out["services"] = services
    for section, default in (("networks", "bridge"), ("volumes", "local")):
        cleaned = {}
        for key, body in (out.get(section) or {}).items():
            body = dict(body or {})
            if body.get("driver") == default:
                del body["driver"]
            cleaned[key] = body
        if cleaned:
            out[section] = cleaned
    return out


# deploy.resources and the service-level fields are one setting to Compose
# (a value given in both must agree): compared in the service-level form.
_RESOURCE_TWINS = (
    (("limits", "cpus"), "cpus"),
    (("limits", "memory"), "mem_limit"),
    (("limits", "pids"), "pids_limit"),
    (("reservations", "memory"), "mem_reservation"),
)


_NO_NEW_PRIVILEGES = frozenset({"no-new-privileges:true", "no-new-privileges=true"})


def _fold_resources(svc: dict[str, Any]) -> None:
    deploy = svc.get("deploy")
    resources = deploy.get("resources") if isinstance(deploy, dict) else None
    if not isinstance(resources, dict):
        return
    for (group, key), field in _RESOURCE_TWINS:
        part = resources.get(group)
        if isinstance(part, dict) and key in part:
            value = part.pop(key)
            svc.setdefault(field, value)
            if not part:
                del resources[group]
    if not resources:
        del deploy["resources"]
    for key in [k for k, v in deploy.items() if v == {}]:
        del deploy[key]  # Compose writes an empty placement beside resources
    if not deploy:
        del svc["deploy"]


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """``{dotted.path[i]: scalar}`` for every leaf; an empty list or map is a leaf of its own."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(leaves(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(leaves(v, f"{path}[{i}]"))
        return out
    return {path: value}


ABSENT = "<absent>"


def differences(original: dict[str, Any], exported: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Every leaf whose value differs: (path, original's, export's)."""
    a, b = leaves(normalize(original)), leaves(normalize(exported))
    return [
        (k, a.get(k, ABSENT), b.get(k, ABSENT))
        for k in sorted(set(a) | set(b))
        if a.get(k, ABSENT) != b.get(k, ABSENT)
    ]


def validate_failure(entry: str) -> str | None:
    """The part of the error an entry listed as failing validation must fail with, if listed."""
    reason = KNOWN_GAPS.get(entry, {}).get("!validate")
    return None if reason is None else reason.split("fails with: ", 1)[1]


def known_gap(entry: str, path: str) -> str | None:
    """The reason a difference at ``path`` is expected for ``entry``, if it is listed."""
    for pattern, reason in KNOWN_GAPS.get(entry, {}).items():
        if pattern_matches(pattern, path):
            return reason
    return None


def pattern_matches(pattern: str, path: str) -> bool:
    """Whether ``path`` matches ``pattern``, where only ``*`` is a wildcard (any run of characters)."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, path) is not None
