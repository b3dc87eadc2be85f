"""Compose's merge rules: how ``-f a.yml -f b.yml``, ``extends`` and ``include`` combine files.

As the Compose Specification ("Merge and override") and Compose v2 do it:
mappings merge key by key, sequences append, scalars are replaced;
``command``, ``entrypoint`` and ``healthcheck.test`` are replaced whole;
``environment``, ``labels``, ``build.args``, ``sysctls``, ``dns``… merge as
``KEY=value`` lists whose later entries win; ``depends_on`` and a service's
``networks`` merge as mappings whatever form each file used; afterwards
``ports``, ``volumes``, ``secrets``, ``configs``, ``env_file``… keep one entry
per key (a volume's target, a port's ip/published/target/protocol), the
later file's entry in the earlier one's place. ``!reset`` drops a value,
``!override`` replaces it without merging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envd.interop.compose_import_common import ComposeValueError, Raw, as_str
from envd.interop.compose_yaml import Override, Reset

Path = tuple[str, ...]


def _matches(path: Path, pattern: str) -> bool:
    parts = pattern.split(".")
    return len(parts) == len(path) and all(p in ("*", q) for p, q in zip(parts, path, strict=True))


def _joined(key: str, value: Any) -> str:
    """``KEY=value`` keeping the written form of the value (its variables) when it has one."""
    text = as_str(value)
    if isinstance(value, Raw):
        return Raw(f"{key}={text}", f"{key}={value.raw}")
    return f"{key}={text}"


def _to_sequence(value: Any) -> list[Any]:
    if isinstance(value, dict):
        out: list[Any] = []
        for key, val in value.items():
            if val is None:
                out.append(key)
            elif isinstance(val, list):
                out.extend(_joined(key, v) for v in val)
            else:
                out.append(_joined(key, val))
        return sorted(out, key=str)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return [value]
    return []


def _to_mapping(value: Any, default: dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {
            str(item): (dict(default) if default is not None else None)
            for item in value
            if isinstance(item, (str, int))
        }
    return {}


def _sequence(base: Any, over: Any, path: Path) -> Any:
    return _to_sequence(base) + _to_sequence(over)


def _replace(base: Any, over: Any, path: Path) -> Any:
    return strip(over)


def _depends_on(base: Any, over: Any, path: Path) -> Any:
    default = {"condition": "service_started", "required": True}
    return _mappings(_to_mapping(base, default), _to_mapping(over, default), path)


def _networks(base: Any, over: Any, path: Path) -> Any:
    return _mappings(_to_mapping(base, None), _to_mapping(over, None), path)


def _build(base: Any, over: Any, path: Path) -> Any:
    def as_build(value: Any) -> dict[str, Any]:
        return {"context": value} if isinstance(value, str) else _to_mapping(value, None)

    return _mappings(as_build(base), as_build(over), path)


def _extra_hosts(base: Any, over: Any, path: Path) -> Any:
    first = _to_sequence(base)
    return first + [h for h in _to_sequence(over) if h not in first]


def _logging(base: Any, over: Any, path: Path) -> Any:
    same = isinstance(base, dict) and isinstance(over, dict)
    if same and ("driver" not in base or "driver" not in over or base["driver"] == over["driver"]):
        return _mappings(dict(base), over, path)
    return strip(over)


_SPECIAL: list[tuple[str, Callable[[Any, Any, Path], Any]]] = [
    ("services.*.command", _replace),
    ("services.*.entrypoint", _replace),
    ("services.*.healthcheck.test", _replace),
    ("services.*.ulimits.*", _replace),
    ("services.*.depends_on", _depends_on),
    ("services.*.networks", _networks),
    ("services.*.build", _build),
    ("services.*.extra_hosts", _extra_hosts),
    ("services.*.build.extra_hosts", _extra_hosts),
    ("services.*.logging", _logging),
    *(
        (pattern, _sequence)
        for pattern in (
            "services.*.environment",
            "services.*.labels",
            "services.*.annotations",
            "services.*.env_file",
            "services.*.label_file",
            "services.*.dns",
            "services.*.dns_opt",
            "services.*.dns_search",
            "services.*.sysctls",
            "services.*.tmpfs",
            "services.*.build.args",
            "services.*.build.labels",
            "services.*.build.additional_contexts",
            "services.*.deploy.labels",
            "services.*.volumes.*.volume.labels",
            "networks.*.labels",
            "volumes.*.labels",
        )
    ),
]


def merge(base: Any, over: Any, path: Path = ()) -> Any:
    """``over`` merged onto ``base`` (neither is changed) by Compose's rules."""
    if isinstance(over, Override):
        return strip(over.value)
    if over is None:
        return base
    for pattern, rule in _SPECIAL:
        if _matches(path, pattern):
            return rule(base, over, path)
    if isinstance(base, dict):
        if not isinstance(over, dict):
            raise ComposeValueError(".".join(path), "cannot override a mapping with another kind")
        return _mappings(dict(base), over, path)
    if isinstance(base, list):
        if not isinstance(over, list):
            raise ComposeValueError(".".join(path), "cannot override a list with another kind")
        return base + [strip(v) for v in over if not isinstance(v, Reset)]
    return strip(over)


def _mappings(base: dict[str, Any], over: dict[str, Any], path: Path) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, Reset):
            base.pop(key, None)
        elif key in base:
            base[key] = merge(base[key], value, (*path, str(key)))
        else:
            base[key] = strip(value)
    return base


def strip(value: Any) -> Any:
    """``value`` without merge tags: ``!reset`` entries dropped, ``!override`` unwrapped."""
    if isinstance(value, Override):
        return strip(value.value)
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip(v) for v in value if not isinstance(v, Reset)]
    if isinstance(value, Reset):
        return None
    return value


# --- one entry per key ------------------------------------------------------


def _key_value(item: Any) -> str:
    return as_str(item).partition("=")[0] if isinstance(item, (str, int, float)) else repr(item)


def _volume_target(item: Any) -> str:
    if isinstance(item, dict):
        return as_str(item.get("target", ""))
    parts = as_str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _mount(default_dir: str) -> Callable[[Any], str]:
    def key(item: Any) -> str:
        if isinstance(item, dict):
            if item.get("target") is not None:
                return as_str(item["target"])
            return f"{default_dir}/{as_str(item.get('source', ''))}"
        return f"{default_dir}/{as_str(item)}"

    return key


def _port(item: Any) -> str:
    if isinstance(item, dict):
        host = as_str(item.get("host_ip") or "0.0.0.0")
        proto = as_str(item.get("protocol") or "tcp")
        published = "" if item.get("published") is None else as_str(item["published"])
        return f"{host}:{published}:{as_str(item.get('target', ''))}/{proto}"
    return as_str(item)


def _env_file(item: Any) -> str:
    return as_str(item.get("path", "")) if isinstance(item, dict) else as_str(item)


def _device(item: Any) -> str:
    if isinstance(item, dict):
        return as_str(item.get("target", ""))
    parts = as_str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


_UNIQUE: list[tuple[str, Callable[[Any], str]]] = [
    ("services.*.volumes", _volume_target),
    ("services.*.devices", _device),
    ("services.*.ports", _port),
    ("services.*.secrets", _mount("/run/secrets")),
    ("services.*.configs", _mount("")),
    ("services.*.env_file", _env_file),
    ("services.*.expose", as_str),
    *(
        (pattern, _key_value)
        for pattern in (
            "services.*.environment",
            "services.*.labels",
            "services.*.annotations",
            "services.*.build.args",
            "services.*.build.labels",
            "services.*.build.additional_contexts",
            "services.*.cap_add",
            "services.*.cap_drop",
            "services.*.dns",
            "services.*.dns_opt",
            "services.*.dns_search",
            "services.*.links",
            "services.*.profiles",
            "services.*.sysctls",
            "services.*.tmpfs",
            "services.*.deploy.labels",
            "services.*.networks.*.aliases",
            "networks.*.labels",
        )
    ),
]


def unique(value: Any, path: Path = ()) -> Any:
    """``value`` with one entry per key in the lists Compose keeps unique (the last one wins)."""
    if isinstance(value, dict):
        return {k: unique(v, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        for pattern, key in _UNIQUE:
            if _matches(path, pattern):
                out: list[Any] = []
                seen: dict[str, int] = {}
                for item in value:
                    k = key(item)
                    if k in seen:
                        out[seen[k]] = item
                    else:
                        seen[k] = len(out)
                        out.append(item)
                return out
        return value
    return value
