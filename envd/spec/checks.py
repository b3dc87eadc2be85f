"""Checks across fields that one model cannot make alone: references to
services, volumes, secrets and networks that exist, files that exist, port
clashes, dependency cycles.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envd.spec.checks_net import net_checks, network_target
from envd.spec.configs import check_configs
from envd.spec.diagnose import MAX_PROBLEMS, more_problems
from envd.spec.hints import did_you_mean
from envd.spec.host_checks import host_problems
from envd.spec.interpolate import parse_dotenv
from envd.spec.locate import Locator, dotted, locate_with_env
from envd.spec.models import Spec, VolumeMount
from envd.spec.paths import display_path
from envd.spec.read import read_text
from envd.values.errors import SpecError, SpecProblem


def _is(path: Path, kind: str) -> bool:
    """Whether ``path`` exists (as a regular file or a directory for those
    kinds). A name the system refuses to look up (too long, a NUL byte) does
    not exist: ``Path.exists`` would raise instead."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return False
    if kind == "file":
        return stat.S_ISREG(mode)
    if kind == "dir":
        return stat.S_ISDIR(mode)
    return True


def _unusable(path: Path) -> str:
    """Why the system refuses to look ``path`` up (too long, a NUL byte), or ""."""
    try:
        path.lstat()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return "a parent of it is not a directory"
        return exc.strerror or str(exc)
    except ValueError as exc:  # a NUL byte
        return str(exc)
    return ""


def cross_check(
    spec: Spec,
    base: Path,
    locator: Locator,
    display: str,
    environment: str | None,
    env_files: dict[str, dict[str, str]],
    swarm: bool = False,
    project: str = "",
) -> list[SpecProblem]:
    """Checks across fields. ``swarm``: the routing mesh lets replicas share a port.
    ``project``: the engine-side name, which generated container names carry."""
    problems: list[SpecProblem] = []
    skipped = 0

    def add(msg: str, *path: str | int) -> None:
        nonlocal skipped
        if len(problems) >= MAX_PROBLEMS:
            skipped += 1
            return
        line, col = locate_with_env(locator, tuple(path), environment)
        problems.append(SpecProblem(msg, display, line, col, dotted(path)))

    services = spec.services
    for name, svc in services.items():
        for dep in svc.depends_on:
            if dep not in services:
                add(
                    f"service {name!r} depends on unknown service {dep!r}{did_you_mean(dep, services)}",
                    "services",
                    name,
                    "depends_on",
                    dep,
                )
            elif dep == name:
                add(f"service {name!r} depends on itself", "services", name, "depends_on")
        for i, mount in enumerate(svc.volumes):
            if mount.type == "volume" and mount.source and mount.source not in spec.volumes:
                add(
                    f"service {name!r} mounts undefined volume {mount.source!r}"
                    f"{did_you_mean(mount.source, spec.volumes)}; declare it under [volumes.{mount.source}]",
                    "services",
                    name,
                    "volumes",
                    i,
                )
            if mount.type == "bind":
                src = Path(os.path.expanduser(mount.source))
                if not src.is_absolute():
                    src = base / src
                # A missing directory is created at `up` (Compose's rule), unless
                # the mount says create_host_path = false. A name the system
                # refuses to look up could not be created either.
                refused = _unusable(src)
                if refused:
                    add(
                        f"service {name!r} binds {mount.source!r}, which cannot be used: {refused}",
                        "services",
                        name,
                        "volumes",
                        i,
                    )
                elif not mount.creates_host_path and not _is(src, "any"):
                    add(
                        f"service {name!r} binds {mount.source!r}, which does not exist"
                        " (create_host_path = false, so envd does not create it)",
                        "services",
                        name,
                        "volumes",
                        i,
                    )
        targets: dict[str, str] = {}
        for i, sec in enumerate(svc.secrets):
            if sec.path in targets:
                add(
                    f"service {name!r}: secrets {targets[sec.path]!r} and {sec.source!r} both"
                    f" target {sec.path}",
                    "services",
                    name,
                    "secrets",
                    i,
                )
            targets.setdefault(sec.path, sec.source)
            # The engine writes secret files through the container's
            # filesystem: under a mount they land in that mount (a host
            # directory, a volume that outlives the container). Swarm mounts
            # them itself.
            over = None if swarm else _mount_over(sec.path, svc.volumes, svc.tmpfs)
            if over is not None:
                add(
                    f"service {name!r}: secret {sec.source!r} targets {sec.path}, which lies"
                    f" under the {over}; a secret's value would be written into it",
                    "services",
                    name,
                    "secrets",
                    i,
                )
            if sec.source not in spec.secrets:
                add(
                    f"service {name!r} uses undefined secret {sec.source!r}{did_you_mean(sec.source, spec.secrets)}",
                    "services",
                    name,
                    "secrets",
                    i,
                )
        for net in svc.networks:
            if net != "default" and net not in spec.networks:
                add(
                    f"service {name!r} joins undefined network {net!r}{did_you_mean(net, spec.networks)}",
                    "services",
                    name,
                    "networks",
                    net,
                )
        merged: dict[str, str] = {}
        for i, env_file in enumerate(svc.env_file):
            path = base / env_file
            try:
                merged.update(parse_dotenv(read_text(path, display_path(path))))
            except SpecError as exc:  # not UTF-8, or too big: located in that file
                problems.extend(exc.problems)
            except FileNotFoundError:
                add(
                    f"service {name!r}: env_file {env_file!r} does not exist",
                    "services",
                    name,
                    "env_file",
                    i,
                )
            except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
                reason = getattr(exc, "strerror", None) or str(exc)
                add(
                    f"service {name!r}: cannot read env_file {env_file!r}: {reason}",
                    "services",
                    name,
                    "env_file",
                    i,
                )
        env_files[name] = merged
        if svc.build is not None:
            ctx = base / svc.build.context
            if not _is(ctx, "dir"):
                add(
                    f"service {name!r}: build context {svc.build.context!r} is not a directory",
                    "services",
                    name,
                    "build",
                    "context",
                )
            elif not _is(ctx / svc.build.dockerfile, "file"):
                add(
                    f"service {name!r}: Dockerfile {svc.build.dockerfile!r} not found in the build context",
                    "services",
                    name,
                    "build",
                    "dockerfile",
                )
        for message, where in host_problems(name, svc, services):
            add(message, *where)
        for i, rule in enumerate(svc.watch):
            if not _is(base / rule.path, "any"):
                add(
                    f"service {name!r}: watch path {rule.path!r} does not exist",
                    "services",
                    name,
                    "watch",
                    i,
                )
            if rule.action == "rebuild" and svc.build is None:
                add(
                    f"service {name!r}: a 'rebuild' watch rule needs a 'build' section",
                    "services",
                    name,
                    "watch",
                    i,
                )
        fixed = [p for p in svc.ports if p.published]
        if svc.replicas > 1 and fixed and not swarm:
            add(
                f"service {name!r} has {svc.replicas} replicas but publishes fixed host port"
                f" {fixed[0].published}; only one container can bind it",
                "services",
                name,
                "ports",
            )
    problems.extend(_port_clashes(spec, add))
    net_checks(spec, project, add)
    for name, sdef in spec.secrets.items():
        if sdef.file is not None and not _is(base / sdef.file, "file"):
            add(f"secret {name!r}: file {sdef.file!r} does not exist", "secrets", name, "file")
    # configs (Compose's `configs`: read-only files)
    check_configs(spec, add, _mount_over, lambda rel: _is(base / rel, "file"), swarm)
    # A service depending on itself is reported above, not as a cycle too.
    # A service:NAME network_mode is a dependency too (Compose's rule).
    graph = {
        n: [d for d in [*s.depends_on, network_target(s.network_mode) or n] if d != n]
        for n, s in services.items()
    }
    cycle = find_cycle(graph)
    if cycle:
        add("dependency cycle: " + " -> ".join(cycle), "services", cycle[0], "depends_on")
    if skipped:
        problems.append(more_problems(skipped, display))
    return problems


def _under(path: str, root: str) -> bool:
    """Whether normalised ``path`` is ``root`` or lies below it."""
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def _mount_over(target: str, volumes: list[VolumeMount], tmpfs: list[str]) -> str | None:
    """The service's mount (described for a message) holding ``target``, if any."""
    for m in volumes:
        if _under(target, m.target):
            kind = {"bind": "bind mount", "tmpfs": "tmpfs"}.get(m.type, "volume")
            if m.type == "volume" and not m.source:
                kind = "anonymous volume"
            source = f" of {m.source!r}" if m.source else ""
            return f"{kind}{source} at {m.target}"
    for entry in tmpfs:
        path = entry.partition(":")[0]
        if path and _under(target, path):
            return f"tmpfs at {path}"
    return None


_WILDCARD_IPS = ("", "0.0.0.0", "::")


def _port_clashes(spec: Spec, add: Any) -> list[SpecProblem]:
    """Two services publishing one host port (a wildcard address clashes with any)."""
    # (port, protocol) -> address -> {service: order of first publication}.
    # Looking up by address keeps this linear in the number of ports.
    owners: dict[tuple[int, str], dict[str, dict[str, int]]] = {}
    order = 0
    for name, svc in spec.services.items():
        reported = False
        for port in svc.ports:
            if not port.published:
                continue
            by_ip = owners.setdefault((port.published, port.protocol), {})
            names = by_ip.setdefault(port.host_ip, {})
            if name in names:
                continue
            order += 1
            names[name] = order
            if reported:
                continue
            wildcard = port.host_ip in _WILDCARD_IPS
            ips = list(by_ip) if wildcard else [port.host_ip, *_WILDCARD_IPS]
            first: tuple[int, str] | None = None
            for ip in ips:
                for other, at in by_ip.get(ip, {}).items():
                    both_in_profiles = set(svc.profiles) and set(spec.services[other].profiles)
                    if other != name and not both_in_profiles:
                        if first is None or at < first[0]:
                            first = (at, other)
                        break
            if first is not None:
                add(
                    f"services {first[1]!r} and {name!r} both publish host port {port.published}",
                    "services",
                    name,
                    "ports",
                )
                reported = True
    return []


def find_cycle(graph: Mapping[str, list[str]]) -> list[str]:
    """A dependency cycle as a path (first node repeated at the end), or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []
