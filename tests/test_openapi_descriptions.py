"""The OpenAPI document describes every property it names, and shows an example of every request body."""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from app.main import create_app

_REF = "#/components/schemas/"


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(_REF)]
    return schema


def _is_described(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    """A property is described by its own description, or, when it is only a `$ref` (alone or in
    an `anyOf`/`allOf` with null), by the description of the schema it refers to."""
    if schema.get("description"):
        return True
    refs = [schema] if "$ref" in schema else []
    for key in ("anyOf", "allOf", "oneOf"):
        refs += [s for s in schema.get(key, []) if "$ref" in s]
    return bool(refs) and all(_resolve(document, r).get("description") for r in refs)


def _undescribed(document: dict[str, Any]) -> list[str]:
    """Every property of every schema, reached from any operation or component, without a description."""
    missing: set[str] = set()
    seen: set[int] = set()

    def walk(schema: Any, where: str) -> None:
        if isinstance(schema, list):
            for item in schema:
                walk(item, where)
            return
        if not isinstance(schema, dict) or id(schema) in seen:
            return
        seen.add(id(schema))
        if "$ref" in schema and isinstance(schema["$ref"], str) and schema["$ref"].startswith(_REF):
            name = schema["$ref"].removeprefix(_REF)
            walk(document["components"]["schemas"][name], name)
        for name, prop in (schema.get("properties") or {}).items():
            if isinstance(prop, dict) and not _is_described(document, prop):
                missing.add(f"{where}.{name}")
            walk(prop, f"{where}.{name}")
        for key, value in schema.items():
            if key not in ("properties", "$ref", "examples", "example", "default", "const", "enum"):
                walk(value, where)

    for name, schema in document["components"]["schemas"].items():
        walk(schema, name)
    for path, item in document["paths"].items():
        walk(item, path)
    for event_type, item in document.get("webhooks", {}).items():  # the bodies POSTed to subscribers
        walk(item, f"webhook {event_type}")
    return sorted(missing)


def _request_body_examples(document: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Each JSON request body without an example, and each example its schema refuses."""
    missing, invalid = [], []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            for media_type, body in operation.get("requestBody", {}).get("content", {}).items():
                if "json" not in media_type:
                    continue
                where = f"{method.upper()} {path}"
                schema = body.get("schema", {})
                examples = list(body.get("examples", {}).values())
                examples = [e["value"] for e in examples if "value" in e]
                examples += [body["example"]] if "example" in body else []
                examples += _resolve(document, schema).get("examples", [])
                if not examples:
                    missing.append(where)
                validator = jsonschema_rs.Draft202012Validator(
                    {**schema, "components": document["components"]}, validate_formats=True
                )
                for example in examples:
                    invalid += [f"{where}: {error.message}" for error in validator.iter_errors(example)]
    return missing, invalid


def test_every_property_is_described_and_every_request_body_has_an_example() -> None:
    document = create_app().openapi()
    undescribed = _undescribed(document)
    assert undescribed == [], f"{len(undescribed)} properties have no description:\n" + "\n".join(undescribed)
    missing, invalid = _request_body_examples(document)
    assert missing == [], "request bodies without an example:\n" + "\n".join(missing)
    assert invalid == [], "examples their schema refuses:\n" + "\n".join(invalid)
