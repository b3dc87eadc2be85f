"""The result of an export and its YAML rendering, shared by the three exporters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

X_ENVD = "x-envd"

_NUMBER_LIKE = re.compile(
    r"^[-+]?(\.?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|0[xXoObB][0-9a-fA-F_]+|\.(inf|Inf|INF|nan|NaN|NAN))$"
)


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
        if style is None and _NUMBER_LIKE.match(value):
            # PyYAML writes `09` or `1_0` plain (not numbers in YAML 1.1), but Compose's
            # Go YAML reads them as numbers: quoted, they stay strings.
            style = "'"
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    parts = [
        yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
        for doc in result.documents
    ]
    body = "---\n".join(parts)
    return (result.header + body) if result.header else body
