"""``envd import``: a Compose service's names and networking (``container_name``,
``expose``, ``network_mode``) and a network's ``ipam``, in envd's form.

Compose accepts some combinations the engine ignores (``ports`` with
``network_mode: host``) or refuses (``ports``, ``expose`` or ``hostname`` with a
``service:``/``container:`` mode): the import leaves those out with a note
naming why, so the imported spec validates and behaves as Compose ran it.
"""

from __future__ import annotations

import re
from typing import Any

from envd.interop.compose_import_common import (
    Notes,
    as_bool,
    as_map,
    as_seq,
    as_text,
    str_map,
    text_list,
)

_NETWORK_MODE = re.compile(r"^(host|none|bridge|(service|container):[a-zA-Z0-9][a-zA-Z0-9_.-]*)$")


class NetConverter(Notes):
    """The names and networking fields of one Compose service, and top-level ipam."""

    def names_and_network(self, p: str, body: dict[str, Any], out: dict[str, Any]) -> None:
        """Add container_name, expose and network_mode to ``out`` (a service table)."""
        if body.get("container_name") is not None:
            out["container_name"] = as_text(f"{p}.container_name", body["container_name"])
        expose = [
            as_text(f"{p}.expose[{i}]", e)
            for i, e in enumerate(as_seq(f"{p}.expose", body.get("expose")))
        ]
        if expose:
            out["expose"] = expose
        if body.get("network_mode") is None:
            return
        mode = as_text(f"{p}.network_mode", body["network_mode"])
        if not _NETWORK_MODE.match(mode):
            self.unsupported(
                f"{p}.network_mode",
                f"{mode!r}: envd supports host, none, bridge, service:NAME and container:NAME",
            )
            return
        out["network_mode"] = mode
        if mode in ("host", "none"):
            self._drop(p, out, ("ports",), f"the engine discards them with network_mode {mode!r}")
        else:
            self._drop(
                p,
                out,
                ("ports", "expose", "hostname"),
                f"the engine refuses them with network_mode {mode!r} (they belong to the"
                " container whose network is shared)",
            )

    def no_create_host_path(self, p: str, out: dict[str, Any], ext: dict[str, Any]) -> None:
        """Read back ``x-envd``'s ``no_create_host_path``: the binds the export wrote
        without ``bind.create_host_path = false`` for Compose 1.x's sake."""
        targets = set(text_list(f"x-envd.{p}.no_create_host_path", ext.get("no_create_host_path")))
        if not targets:
            return
        volumes = []
        for item in out.get("volumes", []):
            if isinstance(item, str):  # shortened by the import: "./src:/target[:ro]"
                parts = item.split(":")
                if len(parts) in (2, 3) and parts[1] in targets:
                    item = {"type": "bind", "source": parts[0], "target": parts[1]}
                    if len(parts) == 3 and "ro" in parts[2].split(","):
                        item["read_only"] = True
            if isinstance(item, dict) and item.get("type") == "bind" and item["target"] in targets:
                item = {**item, "create_host_path": False}
            volumes.append(item)
        out["volumes"] = volumes

    def _drop(self, p: str, out: dict[str, Any], fields: tuple[str, ...], why: str) -> None:
        for field in fields:
            if out.pop(field, None):
                self.note(f"{p}.{field}", f"left out: {why}")

    def ipam(self, path: str, raw: Any) -> dict[str, Any]:
        body = as_map(path, raw)
        out: dict[str, Any] = {}
        for k, v in body.items():
            if k == "driver":
                out["driver"] = as_text(f"{path}.driver", v)
            elif k == "config":
                pools = []
                for i, item in enumerate(as_seq(f"{path}.config", v)):
                    where = f"{path}.config[{i}]"
                    pool: dict[str, Any] = {}
                    for kk, vv in as_map(where, item).items():
                        if kk in ("subnet", "ip_range", "gateway"):
                            pool[kk] = as_text(f"{where}.{kk}", vv)
                        elif kk == "aux_addresses":
                            aux = str_map(f"{where}.aux_addresses", vv)
                            pool[kk] = {a: b for a, b in aux.items() if b is not None}
                        else:
                            self.unsupported(f"{where}.{kk}")
                    pools.append(pool)
                out["config"] = pools
            elif k == "options":
                self.unsupported(f"{path}.options", "envd passes no ipam driver options")
            else:
                self.unsupported(f"{path}.{k}")
        return out

    def enable_ipv6(self, path: str, raw: Any) -> bool:
        return as_bool(path, raw)
