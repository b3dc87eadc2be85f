"""``envd import``: a Compose service's container-level host settings (issue
12): resources (top-level and ``deploy.resources``), ``ulimits``,
``sysctls``, ``extra_hosts``, DNS, ``devices``, ``security_opt``, ``pid`` /
``ipc``, ``logging``, ``gpus``, ``tty``, ``stdin_open`` and friends.

envd's spec takes Compose's names and syntaxes for these, so values go
through as written (the spec's validator checks them); what envd cannot
express becomes a note naming it.
"""

from __future__ import annotations

from typing import Any

from envd.interop.compose_import_common import (
    ComposeValueError,
    Notes,
    as_bool,
    as_int,
    as_list,
    as_map,
    as_scalar,
    as_seq,
    as_text,
    str_map,
    text_list,
)
from envd.spec.host_parts import parse_bytes

# The fields this module converts (the service converter skips them).
HOST_FIELDS = frozenset(
    {
        "cpus",
        "mem_limit",
        "mem_reservation",
        "memswap_limit",
        "pids_limit",
        "shm_size",
        "ulimits",
        "sysctls",
        "extra_hosts",
        "dns",
        "dns_search",
        "dns_opt",
        "devices",
        "domainname",
        "platform",
        "runtime",
        "tty",
        "stdin_open",
        "security_opt",
        "pid",
        "ipc",
        "logging",
        "gpus",
    }
)

_TEXT = ("domainname", "platform", "runtime", "pid", "ipc")
_SIZES = ("mem_limit", "mem_reservation", "memswap_limit", "shm_size")
# deploy.resources.<kind>.<key> -> the service field with the same meaning.
_RESOURCES = {
    ("limits", "cpus"): "cpus",
    ("limits", "memory"): "mem_limit",
    ("limits", "pids"): "pids_limit",
    ("reservations", "memory"): "mem_reservation",
}


def _number(path: str, value: Any) -> float | str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = as_text(path, value)
    try:
        return float(text)
    except ValueError:
        raise ComposeValueError(path, f"expected a number of CPUs, got {text!r}") from None


def _size(path: str, value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return as_text(path, value)


def _requests(gpus: Any) -> list[Any]:
    """``gpus`` in its list form (``all`` and a count ask for GPUs)."""
    if gpus is None:
        return []
    if isinstance(gpus, list):
        return gpus
    return [{"count": gpus, "capabilities": ["gpu"]}]


class HostFieldConverter(Notes):
    """The host settings of one service, each in envd's (= Compose's) form."""

    def host_fields(self, p: str, body: dict[str, Any], deploy: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if body.get("cpus") is not None:
            out["cpus"] = _number(f"{p}.cpus", body["cpus"])
        for key in _SIZES:
            if body.get(key) is not None:
                out[key] = _size(f"{p}.{key}", body[key])
        if body.get("pids_limit") is not None:
            out["pids_limit"] = as_int(f"{p}.pids_limit", body["pids_limit"], -1)
        if body.get("ulimits") is not None:
            out["ulimits"] = self._ulimits(f"{p}.ulimits", body["ulimits"])
        if body.get("sysctls") is not None:
            sysctls = str_map(f"{p}.sysctls", body["sysctls"])
            for k, v in sysctls.items():
                if v is None:
                    raise ComposeValueError(f"{p}.sysctls.{k}", "a sysctl needs a value")
            out["sysctls"] = sysctls
        if body.get("extra_hosts") is not None:
            out["extra_hosts"] = self._extra_hosts(f"{p}.extra_hosts", body["extra_hosts"])
        for key in ("dns", "dns_search", "dns_opt", "security_opt"):
            if body.get(key) is not None:
                out[key] = text_list(f"{p}.{key}", as_list(body[key]))
        if body.get("devices") is not None:
            out["devices"] = self._devices(f"{p}.devices", body["devices"])
        for key in _TEXT:
            if body.get(key) is not None:
                out[key] = as_text(f"{p}.{key}", body[key])
        for key in ("tty", "stdin_open"):
            if body.get(key) is not None:
                out[key] = as_bool(f"{p}.{key}", body[key])
        if body.get("logging") is not None:
            logging = self._logging(f"{p}.logging", body["logging"])
            if logging:
                out["logging"] = logging
        if body.get("gpus") is not None:
            out["gpus"] = self._gpus(f"{p}.gpus", body["gpus"])
        self._deploy_resources(p, deploy.get("resources"), out)
        return out

    def ext_start_interval(self, p: str, out: dict[str, Any], ext: dict[str, Any]) -> None:
        """The healthcheck start_interval ``envd export`` keeps in x-envd (Compose 1.29 has none)."""
        value = ext.get("healthcheck_start_interval")
        if value is None:
            return
        where = f"x-envd.{p}.healthcheck_start_interval"
        hc = out.get("healthcheck")
        if not isinstance(hc, dict) or hc.get("disable"):
            self.note(where, "the service has no healthcheck; left out")
        else:
            hc.setdefault("start_interval", as_text(where, value))

    def _ulimits(self, path: str, raw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, limit in as_map(path, raw).items():
            where = f"{path}.{name}"
            if isinstance(limit, dict):
                extra = [k for k in limit if k not in ("soft", "hard")]
                for k in extra:
                    self.unsupported(f"{where}.{k}")
                out[str(name)] = {
                    k: as_int(f"{where}.{k}", limit.get(k), -1, 2**63 - 1) for k in ("soft", "hard")
                }
            else:
                out[str(name)] = as_int(where, limit, -1, 2**63 - 1)
        return out

    def _extra_hosts(self, path: str, raw: Any) -> list[str] | dict[str, Any]:
        if isinstance(raw, dict):
            return {
                str(host): text_list(f"{path}.{host}", ips)
                if isinstance(ips, list)
                else as_text(f"{path}.{host}", ips)
                for host, ips in raw.items()
            }
        return text_list(path, raw)

    def _devices(self, path: str, raw: Any) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(as_seq(path, raw)):
            where = f"{path}[{i}]"
            if isinstance(item, dict):
                device = {
                    k: as_text(f"{where}.{k}", item[k])
                    for k in ("source", "target", "permissions")
                    if item.get(k) is not None
                }
                for k in item:
                    if k not in ("source", "target", "permissions"):
                        self.unsupported(f"{where}.{k}")
                out.append(device)
            else:
                out.append(as_text(where, item))
        return out

    def _logging(self, path: str, raw: Any) -> dict[str, Any]:
        body = as_map(path, raw)
        out: dict[str, Any] = {}
        if body.get("driver") is not None:
            out["driver"] = as_text(f"{path}.driver", body["driver"])
        options = str_map(f"{path}.options", body.get("options"))
        if options:
            out["options"] = {k: v or "" for k, v in options.items()}
        for k in body:
            if k not in ("driver", "options"):
                self.unsupported(f"{path}.{k}")
        return out

    def _gpus(self, path: str, raw: Any) -> Any:
        if isinstance(raw, (str, int)) and not isinstance(raw, bool):
            return as_scalar(path, raw) if isinstance(raw, str) else raw
        return [self._device_request(f"{path}[{i}]", r) for i, r in enumerate(as_seq(path, raw))]

    def _device_request(self, path: str, raw: Any) -> dict[str, Any]:
        body = as_map(path, raw)
        out: dict[str, Any] = {}
        for k, v in body.items():
            where = f"{path}.{k}"
            if v is None:
                continue
            if k == "driver":
                out[k] = as_text(where, v)
            elif k == "count":
                out[k] = "all" if v == "all" else as_int(where, v, -1)
            elif k in ("device_ids", "capabilities"):
                out[k] = text_list(where, v)
            elif k == "options":
                out[k] = {kk: vv or "" for kk, vv in str_map(where, v).items()}
            else:
                self.unsupported(where)
        return out

    def _deploy_resources(self, p: str, raw: Any, out: dict[str, Any]) -> None:
        """``deploy.resources`` into the service fields, as Compose applies it to a container."""
        base = f"{p}.deploy.resources"
        for kind, section in as_map(base, raw).items():
            where = f"{base}.{kind}"
            if kind not in ("limits", "reservations"):
                self.unsupported(where)
                continue
            for key, value in as_map(where, section).items():
                if value is None:
                    continue
                field = _RESOURCES.get((kind, key))
                if field is not None:
                    converted: Any
                    if field == "cpus":
                        converted = _number(f"{where}.{key}", value)
                    elif field == "pids_limit":
                        converted = as_int(f"{where}.{key}", value, -1)
                    else:
                        converted = _size(f"{where}.{key}", value)
                    self._one_value(p, field, f"{kind}.{key}", out, converted)
                elif (kind, key) == ("reservations", "devices"):
                    requests = [
                        self._device_request(f"{where}.devices[{i}]", r)
                        for i, r in enumerate(as_seq(f"{where}.devices", value))
                    ]
                    out["gpus"] = [*_requests(out.get("gpus")), *requests]
                elif (kind, key) == ("reservations", "cpus"):
                    self.note(
                        f"{where}.cpus",
                        "a container has no CPU reservation (Swarm and Kubernetes do); left out",
                    )
                else:
                    self.unsupported(f"{where}.{key}")

    def _one_value(
        self, p: str, field: str, resource: str, out: dict[str, Any], value: Any
    ) -> None:
        """Compose's rule: a field and its deploy.resources twin may not differ."""
        if field not in out:
            out[field] = value
        elif not _same(field, out[field], value):
            raise ComposeValueError(
                f"{p}.deploy.resources.{resource}",
                f"differs from {field} ({out[field]!r}); Compose refuses distinct values",
            )


def _same(field: str, a: Any, b: Any) -> bool:
    if str(a).lower() == str(b).lower():
        return True
    try:
        if field in _SIZES:
            return parse_bytes(a) == parse_bytes(b)
        return float(a) == float(b)
    except ValueError:
        return False
