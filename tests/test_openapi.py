"""ingest/openapi.yaml against the code: valid OpenAPI 3.1, the app's routes, and the exported API schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from ingest import auth
from ingest.app import create_app
from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SPEC = yaml.safe_load((ROOT / "ingest" / "openapi.yaml").read_text())
COMPONENTS = SPEC["components"]["schemas"]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def normalised(schema):
    """``schema`` without prose, with JSON Schema ``$defs`` references spelt as OpenAPI component references."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key in ("title", "description"):
                continue
            if key == "$ref":
                value = value.replace("#/$defs/", "#/components/schemas/")
            out[key] = normalised(value)
        return out
    if isinstance(schema, list):
        return [normalised(item) for item in schema]
    return schema


def test_document_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1.")
    validate(SPEC, cls=OpenAPIV31SpecValidator)


def test_routes_match_the_app():
    # Building the app connects to nothing: Kafka and HTTP clients start in cleanup_ctx, on startup.
    app = create_app(Settings())
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
    }
    documented = {
        (method.upper(), path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert documented == served


@pytest.mark.parametrize("name", ["JobView", "JobPage", "JobAccepted", "ErrorBody", "SimilarImages"])
def test_component_matches_exported_schema(name):
    exported = json.loads((ROOT / "schemas" / f"api.{name}.schema.json").read_text())
    component = COMPONENTS[name]
    assert component["required"] == exported["required"]
    assert normalised(component["properties"]) == normalised(exported["properties"])
    assert component.get("additionalProperties") == exported.get("additionalProperties")
    for def_name, definition in exported.get("$defs", {}).items():
        assert normalised(COMPONENTS[def_name]) == normalised(definition), def_name


def operations():
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def resolved(node: dict) -> dict:
    """``node``, or the component its ``$ref`` names."""
    if "$ref" not in node:
        return node
    target = SPEC
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return target


def test_every_native_error_response_is_an_error_body():
    # Drop-in routes answer errors in their reference API's shape (ingest/errors.py), so only native ones.
    for method, path, operation in operations():
        if operation.get("tags") != ["native"] or path == "/readyz":
            continue
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = resolved(response)["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_every_operation_has_one_declared_tag():
    declared = {tag["name"] for tag in SPEC["tags"]}
    for method, path, operation in operations():
        assert len(operation.get("tags", [])) == 1 and operation["tags"][0] in declared, (method, path)


def test_public_operations_are_the_public_handlers():
    """``security: []`` exactly on the handlers marked ``@auth.public``; the others document 401 and 429."""
    app = create_app(Settings())
    public = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and auth.is_public(route.handler)
    }
    documented = {(method.upper(), path) for method, path, operation in operations() if operation.get("security") == []}
    assert documented == public
    for method, path, operation in operations():
        if (method.upper(), path) not in public:
            assert {"401", "429"} <= operation["responses"].keys(), (method, path)
