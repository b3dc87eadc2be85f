"""The JSON Schema of ``envd.toml``, generated from the models."""

from __future__ import annotations

import json
from typing import Any

from envd.spec.models import Spec

SCHEMA_ID = "https://envd.dev/schemas/envd.schema.json"


def json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "envd.toml"
    schema["description"] = "The spec of an envd project: services, volumes, networks, secrets."
    return schema


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
