"""The OpenAPI document describes every parameter, and its links never send a value that is not there.

A link's parameter is a runtime expression evaluated on an answer: when the field it reads may be
null or absent, a client (or the stateful fuzzer) following it sends `None` as an id. Declared links
read only fields the answer always holds; links a client infers by name (schemathesis' dependency
analysis) find no partner id in an admin or store key, which belongs to no partner.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis

from app.domain.rules.terms import LEVEL_ORDER
from app.main import create_app

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app().openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def may_be_null(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = resolve(document, schema)
    if schema.get("type") == "null" or schema.get("nullable") is True:
        return True
    if isinstance(schema.get("type"), list) and "null" in schema["type"]:
        return True
    return any(may_be_null(document, branch) for branch in schema.get("anyOf", []) + schema.get("oneOf", []))


def field_at(document: dict[str, Any], schema: dict[str, Any], pointer: str) -> tuple[dict[str, Any] | None, str]:
    """The schema of the value `pointer` reads in an answer of `schema`, or None and why it may be missing."""
    for part in [p for p in pointer.split("/") if p]:
        schema = resolve(document, schema)
        if may_be_null(document, schema):
            return None, f"{part}'s parent may be null"
        merged = [schema, *(resolve(document, s) for s in schema.get("allOf", []))]
        properties = {k: v for s in merged for k, v in s.get("properties", {}).items()}
        required = {r for s in merged for r in s.get("required", [])}
        if part not in properties:
            return None, f"{part} is not a property"
        if part not in required:
            return None, f"{part} is not required"
        schema = properties[part]
    if may_be_null(document, schema):
        return None, "it may be null"
    return schema, ""


def test_every_parameter_is_described(document: dict[str, Any]) -> None:
    undescribed = [
        f"{method.upper()} {path} {parameter['in']} {parameter['name']}"
        for path, method, operation in operations(document)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description", "").strip()
    ]
    assert undescribed == []


def test_no_declared_link_can_send_a_missing_value(document: dict[str, Any]) -> None:
    by_id = {operation["operationId"]: (path, operation) for path, _, operation in operations(document)}
    problems = []
    links = 0
    for path, method, operation in operations(document):
        for status, answer in operation.get("responses", {}).items():
            for name, link in answer.get("links", {}).items():
                links += 1
                where = f"{method.upper()} {path} {status} {name}"
                target_path, target = by_id[link["operationId"]]
                target_parameters = {p["name"] for p in target.get("parameters", [])}
                own_path_parameters = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
                for parameter, expression in link["parameters"].items():
                    if parameter not in target_parameters:
                        problems.append(f"{where}: {target_path} has no parameter {parameter}")
                    if expression.startswith("$request.path."):
                        if expression.removeprefix("$request.path.") not in own_path_parameters:
                            problems.append(f"{where}: {expression} is not a path parameter")
                    elif expression.startswith("$response.body#"):
                        content = answer.get("content", {}).get("application/json", {})
                        found, why = field_at(document, content.get("schema", {}), expression.split("#", 1)[1])
                        if found is None:
                            problems.append(f"{where}: {expression}: {why}")
                    else:
                        problems.append(f"{where}: {expression} is not an expression this test knows")
    assert links, "the document declares links"
    assert problems == []


def test_no_inferred_link_reads_a_partner_id_from_an_admin_or_store_key(document: dict[str, Any]) -> None:
    """Admin and store keys belong to no partner: their schema has no `partner_id` for a client to
    follow (it would send null as `None`)."""
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(document)))
    from_service_keys = [
        f"{links.producer_operation_ref} {name}: {definition.to_openapi()['parameters']}"
        for links in schema.analysis.dependency_graph.iter_links()
        if links.producer_operation_ref.startswith("#/paths/~1v1~1api-keys")
        for name, definition in links.links.items()
        if "partner_id" in json.dumps(definition.to_openapi().get("parameters", {}))
    ]
    assert from_service_keys == []


def test_levels_are_stated_in_their_order(document: dict[str, Any]) -> None:
    levels = document["components"]["schemas"]["Terms"]["properties"]["levels"]
    assert [item["properties"]["level"]["const"] for item in levels["prefixItems"]] == [str(x) for x in LEVEL_ORDER]
    assert levels["prefixItems"][0]["properties"]["min_points"]["const"] == 0
    assert "strictly higher" in levels["description"]
