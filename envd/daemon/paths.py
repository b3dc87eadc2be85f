"""Where a project's daemon keeps its runtime state (contract §1: ``.envd/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envd.inputs.safefile import own_dir


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @classmethod
    def for_project(cls, project_dir: Path, environment: str | None) -> StatePaths:
        base = project_dir / ".envd"
        # Environments of one project run side by side, each with its own daemon.
        return cls(base / f"env-{environment}" if environment else base)

    @property
    def socket(self) -> Path:
        return self.root / "daemon.sock"

    @property
    def pid(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def output(self) -> Path:
        return self.root / "daemon.out"

    @property
    def sync_manifest(self) -> Path:
        """What the daemon copied into which container (never file contents)."""
        return self.root / "sync-manifest.json"

    @property
    def lock(self) -> Path:
        return self.root / "daemon.lock"

    @property
    def heal(self) -> Path:
        """Heal counts and flap marks of the supervisor (``heal_store``)."""
        return self.root / "heal.json"

    def ensure(self) -> None:
        """Create the state directory, refusing one that is a link, not ours or loose."""
        if self.root.name.startswith("env-"):
            own_dir(self.root.parent)
        own_dir(self.root)
