"""``FakeObjects``: the stored objects of ``FakeSwarm``: secrets and configs.

Both are immutable, listed by label, and cannot go while a service's tasks
mount them. A secret's value is not kept at all; a config's content (Compose's
``configs``, not secret) is, so a test can read what a task finds at a
config's target (``task_file``).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Protocol

from envd.values.errors import Conflict, EngineError
from envd.values.swarm_types import ObservedConfig, ObservedSecret, SwarmServiceSpec


class _Service(Protocol):
    spec: SwarmServiceSpec
    secret_ids: dict[str, str]
    config_ids: dict[str, str]


def used_configs(spec: SwarmServiceSpec, config_ids: Mapping[str, str] | None) -> dict[str, str]:
    """The configs (name → id) a service's tasks mount."""
    return {ref.config: (config_ids or {})[ref.config] for ref in spec.configs}


def _has(obj_labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(obj_labels.get(k) == v for k, v in wanted.items())


class FakeObjects:
    """The secret and config calls of ``SwarmEngine``, on ``FakeSwarm``'s state."""

    _lock: AbstractContextManager[bool]
    _services: Mapping[str, _Service]
    _secrets: dict[str, ObservedSecret]  # values are not kept at all
    _configs: dict[str, ObservedConfig]
    config_values: dict[str, bytes]  # by config id: what a task's file holds
    journal: list[tuple[str, str]]

    def _enter(self, method: str) -> None:
        raise NotImplementedError

    def _service(self, ref: str) -> _Service:
        raise NotImplementedError

    def _check_config_refs(
        self, spec: SwarmServiceSpec, config_ids: Mapping[str, str] | None
    ) -> None:
        for ref in spec.configs:
            cid = (config_ids or {}).get(ref.config, "")
            if cid not in self._configs:
                raise EngineError(
                    f"rpc error: code = InvalidArgument desc = config not found: {cid}", 400
                )

    # --- secrets ---------------------------------------------------------
    def list_secrets(self, labels: Mapping[str, str]) -> list[ObservedSecret]:
        with self._lock:
            self._enter("list_secrets")
            return [s for s in self._secrets.values() if _has(s.labels, labels)]

    def create_secret(self, name: str, labels: Mapping[str, str], value: bytes) -> str:
        with self._lock:
            self._enter("create_secret")
            if any(s.name == name for s in self._secrets.values()):
                raise Conflict(
                    f"creating secret {name}: rpc error: code = AlreadyExists desc = secret"
                    f" {name} already exists",
                    409,
                )
            sid = self._new_id("secret")
            self._secrets[sid] = ObservedSecret(sid, name, dict(labels))
            self.journal.append(("create-secret", name))
            return sid

    def remove_secret(self, secret_id: str) -> None:
        with self._lock:
            self._enter("remove_secret")
            secret = self._secrets.get(secret_id) or next(
                (s for s in self._secrets.values() if s.name == secret_id), None
            )
            if secret is None:
                return
            users = [
                s.spec.name for s in self._services.values() if secret.id in s.secret_ids.values()
            ]
            if users:
                raise Conflict(
                    f"removing secret {secret_id}: rpc error: code = InvalidArgument desc ="
                    f" secret '{secret.name}' is in use by the following service: {users[0]}",
                    400,
                )
            del self._secrets[secret.id]
            self.journal.append(("remove-secret", secret.name))

    # --- configs (Compose's `configs`) ---------------------------------------
    def list_configs(self, labels: Mapping[str, str]) -> list[ObservedConfig]:
        with self._lock:
            self._enter("list_configs")
            return [c for c in self._configs.values() if _has(c.labels, labels)]

    def create_config(self, name: str, labels: Mapping[str, str], value: bytes) -> str:
        with self._lock:
            self._enter("create_config")
            if any(c.name == name for c in self._configs.values()):
                raise Conflict(
                    f"creating config {name}: rpc error: code = AlreadyExists desc = config"
                    f" {name} already exists",
                    409,
                )
            cid = self._new_id("config")
            self._configs[cid] = ObservedConfig(cid, name, dict(labels))
            self.config_values[cid] = value
            self.journal.append(("create-config", name))
            return cid

    def _new_id(self, kind: str) -> str:
        raise NotImplementedError

    def remove_config(self, config_id: str) -> None:
        with self._lock:
            self._enter("remove_config")
            config = self._configs.get(config_id) or next(
                (c for c in self._configs.values() if c.name == config_id), None
            )
            if config is None:
                return
            users = [
                s.spec.name for s in self._services.values() if config.id in s.config_ids.values()
            ]
            if users:
                raise Conflict(
                    f"removing config {config_id}: rpc error: code = InvalidArgument desc ="
                    f" config '{config.name}' is in use by the following service: {users[0]}",
                    400,
                )
            del self._configs[config.id]
            self.config_values.pop(config.id, None)
            self.journal.append(("remove-config", config.name))

    def task_file(self, service: str, target: str) -> tuple[bytes, str, str, int] | None:
        """What a service's tasks find at ``target``: (content, uid, gid, mode) of a config."""
        with self._lock:
            svc = self._service(service)
            for ref in svc.spec.configs:
                if ref.target == target:
                    value = self.config_values[svc.config_ids[ref.config]]
                    return value, ref.uid, ref.gid, ref.mode
            return None
