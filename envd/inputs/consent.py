"""What a spec reaches outside its project, and whether this user approved it.

A spec is code: a cloned repository's ``envd.toml`` can run host commands
(``command`` secret sources), mount host paths, hand a container the Docker
engine's socket, or (once the spec has them) ask for privileged mode and the
host's namespaces. ``reach`` lists each such item of a loaded spec with what
exactly it is and where it was written; ``require`` refuses (exit 2, naming
the first item) unless the user approved exactly those items with
``envd allow`` (``envd.inputs.approvals`` keeps the record) or set
``ENVD_ALLOW=1`` for this run.

Each item's digest covers its kind, whom it belongs to and what it does, not
where it was written: moving a line needs no new approval, changing an argv or
a path does.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envd.spec import engine_host
from envd.spec.paths import display_path
from envd.values.errors import SpecError, SpecProblem, UsageError

if TYPE_CHECKING:
    from envd.inputs.secrets import CommandValues
    from envd.spec.load import LoadedSpec
    from envd.spec.models import Service

ALLOW_VARIABLE = "ENVD_ALLOW"

# Capabilities that reach through the container's walls (load modules, mount,
# read any file, trace host processes, set the host's clock).
_HOST_CAPABILITIES = frozenset(
    {"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "DAC_READ_SEARCH"}
    | {"SYS_BOOT", "SYS_TIME", "MAC_ADMIN", "BPF"}
)


def _host_capability(value: object) -> bool:
    if not isinstance(value, (list, tuple)):
        return False
    return any(str(c).upper().removeprefix("CAP_") in _HOST_CAPABILITIES for c in value)


# Service fields that reach the host, as (field, is-host-reaching, what it means).
# A field the spec does not have yet reads as None and never matches, so
# supporting one the day the spec grows it needs nothing here.
_HOST_FIELDS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("privileged", lambda v: v is True, "privileged mode"),
    ("cap_add", _host_capability, "capabilities that reach the host"),
    ("network_mode", lambda v: v == "host", "the host's network namespace"),
    ("pid", lambda v: v == "host", "the host's process namespace"),
    ("ipc", lambda v: v == "host", "the host's IPC namespace"),
    ("userns_mode", lambda v: v == "host", "the host's user namespace"),
    ("uts", lambda v: v == "host", "the host's UTS namespace"),
)

# Where Docker engines listen; the one DOCKER_HOST names is added at run time.
_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
_PODMAN_ROOTFUL = "/run/podman/podman.sock"
_SCRIPT_CAP = 16 * 1024 * 1024


@dataclass(frozen=True)
class ReachItem:
    """One thing a spec does outside its project."""

    # command | bind | env-file | secret-file | config-file | build-context | docker-socket
    # | host-mode
    kind: str
    subject: str  # "secret token", "service web"
    what: tuple[str, ...]  # the argv; the host path (and target); the field and value
    origin: str = ""  # file:line where it was written, when known
    # sha256 of the program a path-like argv[0] names (a script in the repository):
    # approving `./get-token.sh` approves that script's bytes, not any later ones.
    content: str = ""

    @property
    def digest(self) -> str:
        body = {"kind": self.kind, "subject": self.subject, "what": list(self.what)}
        if self.content:
            body["content"] = self.content
        encoded = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(encoded.encode()).hexdigest()

    def describe(self) -> str:
        """One line for people: what it is, whose, and where it was written."""
        where = f"{self.origin}: " if self.origin else ""
        if self.kind == "command":
            text = f"{self.subject} runs a host command: {_argv(self.what)}"
        elif self.kind == "docker-socket":
            text = f"{self.subject} gets the Docker engine's socket ({self.what[0]})"
        elif self.kind == "bind":
            text = f"{self.subject} mounts {self.what[0]} from outside the project"
        elif self.kind == "env-file":
            text = f"{self.subject} reads env_file {self.what[0]} from outside the project"
        elif self.kind == "build-context":
            text = f"{self.subject} builds from {self.what[0]}, outside the project"
        elif self.kind in ("secret-file", "config-file"):
            text = f"{self.subject} reads {self.what[0]} from outside the project"
        else:
            text = f"{self.subject} asks for {self.what[-1]}"
        return where + text

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "what": list(self.what),
            "origin": self.origin,
            "digest": self.digest,
        }


class ConsentRequired(SpecError):
    """The spec reaches outside its project in a way this user has not approved (exit 2)."""


def _argv(argv: tuple[str, ...]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


def engine_sockets(environ: Mapping[str, str]) -> list[str]:
    """The real paths of the sockets a Docker engine listens on here.

    The one envd itself talks to is resolved as the engine adapter does
    (``DOCKER_HOST``, ``DOCKER_CONTEXT``, the Docker CLI's current context),
    so a context pointing at Podman's socket makes binding that socket count
    too. A broken CLI configuration adds nothing here: the engine call reports it.
    """
    paths = [*_SOCKETS, _PODMAN_ROOTFUL]
    host = environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        paths.append(host[len("unix://") :])
    try:
        resolved = engine_host.resolve(environ).unix_path
    except UsageError:
        resolved = ""
    if resolved:
        paths.append(resolved)
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        paths.append(os.path.join(runtime, "docker.sock"))  # rootless Docker
        paths.append(os.path.join(runtime, "podman", "podman.sock"))  # rootless Podman
    return sorted({os.path.realpath(p) for p in paths})


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def reach(loaded: LoadedSpec, environ: Mapping[str, str] | None = None) -> list[ReachItem]:
    """Everything the loaded spec does outside its project, in file order.

    Every service counts, whatever profiles are active: enabling a profile
    must not bring in something the user never saw. Paths are compared with
    symlinks resolved, so a link in the repository pointing out of it counts.
    """
    environ = os.environ if environ is None else environ
    origin = _Origins(loaded)
    root = os.path.realpath(loaded.project_dir)
    sockets = engine_sockets(environ)
    items: list[ReachItem] = []
    for name in sorted(loaded.spec.secrets):
        sec = loaded.spec.secrets[name]
        subject = f"secret {name!r}"
        if sec.command is not None:
            argv = tuple(sec.command)
            items.append(
                ReachItem(
                    "command",
                    subject,
                    argv,
                    origin("secrets", name, "command"),
                    _program_digest(argv, loaded.project_dir),
                )
            )
        elif sec.file is not None:
            real = os.path.realpath(loaded.project_dir / sec.file)
            if not _inside(real, root):
                items.append(
                    ReachItem("secret-file", subject, (real,), origin("secrets", name, "file"))
                )
    # configs (Compose's `configs`): a file outside the project, like a bind
    for name in sorted(loaded.spec.configs):
        cfile = loaded.spec.configs[name].file
        if cfile is not None:
            real = os.path.realpath(loaded.project_dir / cfile)
            if not _inside(real, root):
                items.append(
                    ReachItem(
                        "config-file", f"config {name!r}", (real,), origin("configs", name, "file")
                    )
                )
    for name in sorted(loaded.spec.volumes):
        vol = loaded.spec.volumes[name]
        device = vol.driver_opts.get("device", "")
        # The local driver's `o=bind` / `type=none` mounts any host path as a
        # named volume: a bind mount by another name.
        if device.startswith(("/", "~", ".")):
            real = os.path.realpath(loaded.project_dir / os.path.expanduser(device))
            socket = next((s for s in sockets if _inside(s, real)), None)
            if socket is not None or not _inside(real, root):
                items.append(
                    ReachItem(
                        "docker-socket" if socket else "bind",
                        f"volume {name!r}",
                        (real, "driver_opts.device", ""),
                        origin("volumes", name, "driver_opts", "device"),
                    )
                )
    for name in sorted(loaded.spec.services):
        items.extend(_service_reach(name, loaded, root, sockets, origin))
    return sorted(items, key=lambda i: (origin.order(i.origin), i.subject, i.kind, i.what))


def _service_reach(
    name: str,
    loaded: LoadedSpec,
    root: str,
    sockets: list[str],
    origin: _Origins,
) -> Iterator[ReachItem]:
    svc: Service = loaded.spec.services[name]
    subject = f"service {name!r}"
    for i, mount in enumerate(svc.volumes):
        if mount.type != "bind":
            continue
        source = loaded.bind_sources.get(mount.source) or str(loaded.project_dir / mount.source)
        real = os.path.realpath(source)
        where = origin("services", name, "volumes", i)
        mode = "ro" if mount.read_only else "rw"
        # The socket itself, or a directory holding it (/var/run, /run).
        socket = next((s for s in sockets if _inside(s, real)), None)
        if socket is not None:
            yield ReachItem("docker-socket", subject, (real, mount.target, mode), where)
        elif not _inside(real, root):
            yield ReachItem("bind", subject, (real, mount.target, mode), where)
    for i, env_file in enumerate(svc.env_file):
        real = os.path.realpath(loaded.project_dir / env_file)
        if not _inside(real, root):
            yield ReachItem("env-file", subject, (real,), origin("services", name, "env_file", i))
    if svc.build is not None:
        context = loaded.build_contexts.get(svc.build.context) or str(
            loaded.project_dir / svc.build.context
        )
        real = os.path.realpath(context)
        if not _inside(real, root):
            # The whole directory goes to the engine, and a Dockerfile may COPY any of it.
            yield ReachItem(
                "build-context", subject, (real,), origin("services", name, "build", "context")
            )
    for field, reaches, meaning in _HOST_FIELDS:
        value = getattr(svc, field, None)
        if reaches(value):
            yield ReachItem(
                "host-mode",
                subject,
                (f"{field}={value}", meaning),
                origin("services", name, field),
            )
    for field, value, meaning in host_settings_reach(svc):
        yield ReachItem(
            "host-mode", subject, (f"{field}={value}", meaning), origin("services", name, field)
        )


# Container-level host settings (issue 12) that reach the host.
def host_settings_reach(svc: Service) -> Iterator[tuple[str, str, str]]:
    """(field, value, what it means) for each host-reaching setting of ``svc``."""
    from envd.spec.host_isolation import DEFAULT_RUNTIMES, UNCONFINED_OPTIONS

    # getattr: a partial service (tests, an older cache) reads as unset.
    for d in getattr(svc, "devices", ()):
        # A device node is the host's hardware (a disk, /dev/mem, a GPU).
        yield "devices", f"{d.source}:{d.container_path}:{d.permissions}", "a host device"
    for opt in getattr(svc, "security_opt", ()):
        if opt in UNCONFINED_OPTIONS:
            # Each switches off a wall the engine puts between the container and
            # the host kernel: the syscall filter, the AppArmor profile, SELinux
            # labels (which also keep binds of host paths out of reach).
            yield "security_opt", opt, "a confinement switched off"
    runtime = getattr(svc, "runtime", "")
    if runtime not in DEFAULT_RUNTIMES:
        # A runtime is a host program the engine runs the container with
        # (nvidia hands over GPUs and driver files); only runc comes with it.
        yield "runtime", runtime, "a runtime other than the engine's runc"
    for r in getattr(svc, "gpus", ()):
        what = "all" if r.count == -1 else ",".join(r.device_ids) or str(r.count or "all")
        yield "gpus", f"{r.driver or 'any'}:{what}", "host GPUs or other devices"


def _program_digest(argv: tuple[str, ...], base: Path) -> str:
    """sha256 of argv[0]'s file when it is a path (``./tool``), else ""."""
    if not argv or "/" not in argv[0]:
        return ""
    path = Path(os.path.expanduser(argv[0]))
    path = path if path.is_absolute() else base / path
    try:
        with path.open("rb") as fh:
            return hashlib.sha256(fh.read(_SCRIPT_CAP)).hexdigest()
    except OSError:
        return "missing"


class _Origins:
    """file:line of a field in the spec (the active overlay's when it set it)."""

    def __init__(self, loaded: LoadedSpec) -> None:
        from envd.spec.locate import Locator

        self.display = display_path(loaded.file)
        self.environment = loaded.environment
        try:
            text = loaded.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        self.locator = Locator(text)

    def __call__(self, *path: str | int) -> str:
        from envd.spec.locate import locate_with_env

        try:
            line, _ = locate_with_env(self.locator, tuple(path), self.environment)
        except Exception:  # a position is a courtesy; never fail consent over it
            line = 0
        return f"{self.display}:{line}" if line else self.display

    def order(self, origin: str) -> int:
        _, _, line = origin.rpartition(":")
        return int(line) if line.isdigit() else 10**9


def unapproved(loaded: LoadedSpec, environ: Mapping[str, str] | None = None) -> list[ReachItem]:
    """The items of ``reach`` this user has not approved for this spec (none under ENVD_ALLOW=1)."""
    from envd.inputs import approvals

    environ = os.environ if environ is None else environ
    items = reach(loaded, environ)
    if not items or environ.get(ALLOW_VARIABLE) == "1":
        return []
    approved = approvals.approved_digests(approvals.key_of(loaded))
    return [i for i in items if i.digest not in approved]


def require(loaded: LoadedSpec, environ: Mapping[str, str] | None = None) -> None:
    """Raise ConsentRequired naming the first unapproved item, if any."""
    missing = unapproved(loaded, environ)
    if not missing:
        return
    first = missing[0]
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    file, _, line = first.origin.rpartition(":")
    problem = SpecProblem(
        f"{_without_origin(first)}{more}, which this user has not approved;"
        " review it with `envd allow` (CI: ENVD_ALLOW=1)",
        file or first.origin,
        int(line) if line.isdigit() else 0,
    )
    raise ConsentRequired(problem)


def _without_origin(item: ReachItem) -> str:
    return ReachItem(item.kind, item.subject, item.what, "", item.content).describe()


def command_secrets(loaded: LoadedSpec) -> dict[str, tuple[str, ...]]:
    """Per active service, the secrets it uses whose value comes from a host command."""
    commands = {n for n, s in loaded.spec.secrets.items() if s.command is not None}
    out: dict[str, tuple[str, ...]] = {}
    for name, svc in loaded.active_services().items():
        used = tuple(sorted({s.source for s in svc.secrets} & commands))
        if used:
            out[name] = used
    return out


def unread_commands(loaded: LoadedSpec, values: CommandValues) -> dict[str, tuple[str, ...]]:
    """Per service, the command secrets ``values`` (what `envd up` sent a daemon)
    has no value for: the command is new or was edited since."""
    out: dict[str, tuple[str, ...]] = {}
    for service, names in command_secrets(loaded).items():
        missing = tuple(
            n for n in names if values.get(n, loaded.spec.secrets[n].command or ()) is None
        )
        if missing:
            out[service] = missing
    return out
