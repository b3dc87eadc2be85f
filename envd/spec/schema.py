"""The JSON Schema of ``envd.toml``, generated from the models."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from envd.spec import configs, models, ports, service_parts
from envd.spec.models import Spec

SCHEMA_ID = "https://envd.dev/schemas/envd.schema.json"


def json_schema() -> dict[str, Any]:
    # Every model in one pass: short-syntax fields point at models (Port,
    # VolumeMount…) through hand-written ``$ref``s that a per-model schema of
    # Spec alone cannot resolve.
    found = [
        obj
        for module in (models, service_parts, ports, configs)
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == module.__name__
        and not obj.__name__.startswith("_")
    ]
    _, top = models_json_schema([(m, "validation") for m in found], ref_template="#/$defs/{model}")
    defs = top["$defs"]
    schema: dict[str, Any] = defs.pop(Spec.__name__)
    schema["$defs"] = dict(sorted(defs.items()))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "envd.toml"
    schema["description"] = "The spec of an envd project: services, volumes, networks, secrets."
    return schema


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
