"""Interpolation of a Compose file as Compose does it: per file, on values only, before anything else.

Every decision of the importer (splitting ``SRC:TARGET:MODE``, reading a
number, a boolean or a keyword) is taken on the resolved value, as Compose
takes it. What is written to ``envd.toml`` keeps the text as written where
envd would resolve it the same way (envd reads the same ``.env`` and the
same environment, with the same syntax): a string that reaches the output
unchanged is a ``Raw`` and the TOML writer writes its ``raw`` text, so
``${DB_PASSWORD}`` stays a reference and ``$${POSTGRES_DB}`` stays an
escape. Any other string is a resolved value, and the writer escapes its
``$`` as ``$$``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envd.interop.compose_import_common import ComposeValueError, Raw
from envd.interop.compose_yaml import Override, Reset
from envd.spec.interpolate import InterpolationError, interpolate


def interpolate_doc(
    doc: Any, variables: Mapping[str, str], keep: bool, path: tuple[str, ...] = ()
) -> Any:
    """``doc`` with every string value resolved; ``keep``: resolved strings remember their text."""
    if isinstance(doc, str):
        if "$" not in doc:
            return doc
        try:
            value = interpolate(doc, variables)
        except InterpolationError as exc:
            where = "".join(p if p.startswith("[") else f".{p}" for p in path).lstrip(".")
            raise ComposeValueError(where or "(top)", str(exc)) from None
        return Raw(value, doc) if keep else value
    if isinstance(doc, dict):
        return {k: interpolate_doc(v, variables, keep, (*path, str(k))) for k, v in doc.items()}
    if isinstance(doc, list):
        return [interpolate_doc(v, variables, keep, (*path, f"[{i}]")) for i, v in enumerate(doc)]
    if isinstance(doc, Override):
        return Override(interpolate_doc(doc.value, variables, keep, path))
    if isinstance(doc, Reset):
        return doc
    return doc
