"""Rendering events for people (TTY and plain) and for machines (JSON lines).

The only module besides ``cli`` that writes to the terminal.
"""

from __future__ import annotations

import sys
from _thread import allocate_lock

TYPE_CHECKING = False
if TYPE_CHECKING:  # the lean entry prints through here: nothing loaded for types
    from typing import IO, Any

    from envd.values.events import Event

_SYMBOL = {"working": "…", "done": "✔", "error": "✘", "waiting": "·", "info": " "}
_LABEL = {
    "create-service": "Creating",
    "update-service": "Updating",
    "remove-service": "Removing",
    "create-secret": "Creating",
    "remove-secret": "Removing",
    "create-config": "Creating",
    "remove-config": "Removing",
    "waiting": "Waiting",
    "sync": "Syncing",
    "restart": "Restarting",
    "pull": "Pulling",
    "build": "Building",
    "create": "Creating",
    "recreate": "Recreating",
    "start": "Starting",
    "remove": "Removing",
    "create-network": "Creating",
    "recreate-network": "Recreating",
    "create-volume": "Creating",
    "remove-network": "Removing",
    "create-dir": "Creating",
    "ready": "Ready",
    "completed": "Completed",
    "failed": "Failed",
    "timeout": "Timed out",
    # supervisor
    "heal": "Healing",
    "healed": "Healthy again",
    "flapping": "Flapping",
    "restart-dependent": "Restarting",
    "skipped": "Skipped",
    "supervise": "Supervising",
}
_DONE_LABEL = {
    "create-service": "Created",
    "update-service": "Updated",
    "remove-service": "Removed",
    "create-secret": "Created",
    "remove-secret": "Removed",
    "create-config": "Created",
    "remove-config": "Removed",
    "sync": "Synced",
    "restart": "Restarted",
    "pull": "Pulled",
    "build": "Built",
    "create": "Started",
    "recreate": "Recreated",
    "start": "Started",
    "remove": "Removed",
    "create-network": "Created",
    "recreate-network": "Recreated",
    "create-volume": "Created",
    "remove-network": "Removed",
    "heal": "Restarted",
    "restart-dependent": "Restarted",
    "create-dir": "Created (missing bind source)",
}
# supervisor: done events whose message carries what happened and how long it took
_DONE_WITH_MESSAGE = frozenset({"heal", "healed", "restart-dependent"})


def _describe(ev: Event) -> str:
    return describe(ev.kind, ev.phase, ev.message)


def describe(kind: str, phase: str, message: str) -> str:
    """The words after ``resource:`` in a plain progress line."""
    if phase == "done":
        verb = _DONE_LABEL.get(kind) or _LABEL.get(kind, kind.capitalize())
        if kind in _DONE_WITH_MESSAGE and message:
            return f"{verb} ({message})"
        return verb
    verb = _LABEL.get(kind, kind.capitalize())
    if phase == "error":
        return f"{verb}: {message}"
    if message and kind not in ("pull", "build"):
        return f"{verb} ({message})"
    return verb


def plain_line(phase: str, resource: str, text: str) -> str:
    """One plain progress line (without its newline)."""
    return f"{_SYMBOL[phase]} {resource}: {text}"


class PlainProgress:
    """One line per meaningful event; for pipes, CI logs and dumb terminals."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.lock = allocate_lock()

    def __call__(self, ev: Event) -> None:
        streaming = ev.phase == "working" and ev.kind in ("pull", "build") and ev.message
        if streaming and not ev.message.startswith(("image not", "build context", "pull policy")):
            return  # streaming build/pull output is too chatty for plain logs
        with self.lock:
            print(plain_line(ev.phase, ev.resource, _describe(ev)), file=self.stream, flush=True)

    def close(self) -> None:
        return None


class JsonProgress:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.lock = allocate_lock()

    def __call__(self, ev: Event) -> None:
        import json

        with self.lock:
            print(json.dumps({"event": ev.to_json()}), file=self.stream, flush=True)

    def close(self) -> None:
        return None


class TtyProgress:
    """A live per-resource view like Compose's, drawn with rich."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.rows: dict[str, tuple[str, str]] = {}
        self.lock = allocate_lock()
        self.live = Live(
            self._render(), console=self.console, refresh_per_second=10, transient=False
        )
        self.live.start()

    def _render(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        colours = {
            "working": "yellow",
            "done": "green",
            "error": "red",
            "waiting": "blue",
            "info": "white",
        }
        for resource, (phase, text) in self.rows.items():
            table.add_row(
                f"[{colours[phase]}]{_SYMBOL[phase]}[/]", resource, f"[{colours[phase]}]{text}[/]"
            )
        return table

    def __call__(self, ev: Event) -> None:
        with self.lock:
            text = _describe(ev)
            if ev.kind in ("pull", "build") and ev.phase == "working" and ev.message:
                text = f"{_LABEL[ev.kind]}: {ev.message[-60:]}"
            self.rows[ev.resource] = (ev.phase, text)
            self.live.update(self._render())

    def close(self) -> None:
        self.live.stop()


class QuietProgress:
    def __call__(self, ev: Event) -> None:
        return None

    def close(self) -> None:
        return None


class LazyTtyProgress:
    """Starts the live view only when there is work to watch.

    A no-op ``up`` emits only "ready" lines; importing and starting rich for
    those would cost more than the whole run.
    """

    def __init__(self) -> None:
        self.buffered: list[Event] = []
        self.live: Any = None
        self.lock = allocate_lock()

    def __call__(self, ev: Event) -> None:
        with self.lock:
            if self.live is None and ev.phase != "working":
                self.buffered.append(ev)
                return
            if self.live is None:
                try:
                    self.live = TtyProgress()
                except Exception:  # a broken terminal must not break up
                    self.live = PlainProgress()
                for old in self.buffered:
                    self.live(old)
                self.buffered.clear()
        self.live(ev)

    def close(self) -> None:
        if self.live is not None:
            self.live.close()
            return
        plain = PlainProgress()
        for ev in self.buffered:
            plain(ev)


def make_progress(json_mode: bool, quiet: bool = False) -> Any:
    if json_mode:
        return JsonProgress()
    if quiet:
        return QuietProgress()
    if sys.stderr.isatty():
        return LazyTtyProgress()
    return PlainProgress()
