"""Writes the JSON Schema of every topic message and API body next to this file."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.messages import API_MODELS, TOPIC_MESSAGES, Message

HERE = Path(__file__).parent


def schema_files() -> dict[Path, dict]:
    models: dict[str, type[Message]] = dict(TOPIC_MESSAGES)
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
