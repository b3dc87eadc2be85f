"""The result of an export and its YAML rendering, shared by the three exporters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

X_ENVD = "x-envd"


@dataclass
class Export:
    format: str
    documents: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    header: str = ""


def render_yaml(result: Export, path: str | None = None) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    parts = [
        yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
        for doc in result.documents
    ]
    body = "---\n".join(parts)
    return (result.header + body) if result.header else body
