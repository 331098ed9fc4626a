"""Writes the JSON Schema of every topic message, table entry and API body next to this file."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.messages import Message
from schemas.tables import TABLES
from schemas.topics import TOPICS
from schemas.views import API_MODELS

HERE = Path(__file__).parent


def schema_files() -> dict[Path, dict]:
    models: dict[str, type[Message]] = {topic.name: topic.message for topic in TOPICS}
    models.update({f"table.{table.name}": table.value for table in TABLES})
    models.update({f"api.{model.__name__}": model for model in API_MODELS})
    return {HERE / f"{name}.schema.json": model.model_json_schema() for name, model in models.items()}


def write_schemas() -> list[Path]:
    written = []
    for path, schema in schema_files().items():
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written in write_schemas():
        print(written)
