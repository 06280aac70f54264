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


NULL_BY_NATURE: dict[tuple[str, str], str] = {
    # (producer path, field) -> why the answer may hold null there: a value that is not yet, or not
    # ever, set for some of what the route lists. A client inferring a link by the field's name finds
    # no value in such an answer (schemathesis skips a null it reads alone); the schema says so.
    ("/v1/events", "partner_id"): "an event of no partner (a parked store event, terms taking effect)",
    ("/v1/partners/{partner_id}/events", "partner_id"): "`terms.took_effect` concerns every partner",
    ("/v1/licences", "partner_id"): "a licence sold without a partner earned no one points",
    ("/v1/order-flags", "partner_id"): "a flag that concerns no partner",
    ("/v1/order-flags/{flag_id}/resolve", "partner_id"): "a flag that concerns no partner",
    ("/v1/webhook-subscriptions", "partner_id"): "an admin's subscription to every partner's events",
    ("/v1/webhook-subscriptions/{subscription_id}", "partner_id"): "an admin's subscription to every partner",
    ("/v1/webhook-subscriptions/{subscription_id}/rotate-secret", "partner_id"): "as the subscription",
    ("/v1/registration-refusals", "customer_id"): "a refusal of a company not yet a customer",
    ("/v1/leads", "registration_id"): "an offer not accepted yet made no registration",
    ("/v1/leads/{lead_id}", "registration_id"): "an offer not accepted yet made no registration",
    ("/v1/leads/{lead_id}/assign", "registration_id"): "an offer not accepted yet made no registration",
    ("/v1/partners/{partner_id}/lead-offers", "registration_id"): "an offer not accepted yet",
    ("/v1/partners/{partner_id}/lead-offers/{offer_id}/accept", "registration_id"): "an offer refused on accept",
    ("/v1/partners/{partner_id}/lead-offers/{offer_id}/decline", "registration_id"): "a declined offer",
    **{
        (path, "partner_id"): "a vendor's user belongs to no partner"
        for path in (
            "/v1/account",
            "/v1/invitations/accept",
            "/v1/partners/{partner_id}/users",
            "/v1/sessions",
            "/v1/sessions/current",
            "/v1/users",
            "/v1/users/{user_id}",
            "/v1/users/{user_id}/deactivate",
        )
    },
    ("/v1/mail", "user_id"): "a message to an address that is no user's (none yet)",
    ("/v1/mail/{message_id}/retry", "user_id"): "a message to an address that is no user's (none yet)",
    **{
        (path, "reason"): "an invoice, unlike a credit note, has no reason"
        for path in (
            "/v1/partners/{partner_id}/invoices",
            "/v1/partners/{partner_id}/invoices/{invoice_id}",
            "/v1/invoices",
            "/v1/invoices/{invoice_id}",
        )
    },
    **{
        (path, "payment_reference"): "a statement not paid yet has no payment reference"
        for path in (
            "/v1/statements",
            "/v1/statements/{statement_id}/approve",
            "/v1/statements/bulk-approve",
            "/v1/quarters/{quarter}/close",
            "/v1/partners/{partner_id}/statements",
            "/v1/partners/{partner_id}/statements/{statement_id}",
        )
    },
}
"""Answers whose fields are always set say so (a partner's keys and subscriptions name the partner;
an admin's or the store's keys have no `partner_id` in their schema); these are null by nature."""


def _target(document: dict[str, Any], reference: str) -> dict[str, Any]:
    path, method = reference.removeprefix("#/paths/").rsplit("/", 1)
    return document["paths"][path.replace("~1", "/").replace("~0", "~")][method]


def _body_field(document: dict[str, Any], operation: dict[str, Any], keys: list[str]) -> dict[str, Any] | None:
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    for key in keys:
        schema = resolve(document, schema)
        properties = {
            k: v
            for s in [schema, *schema.get("anyOf", [])]
            for k, v in resolve(document, s).get("properties", {}).items()
        }
        if key not in properties:
            return None
        schema = properties[key]
    return schema


def _expressions(value: Any, keys: list[str]) -> list[tuple[list[str], str]]:
    if isinstance(value, str):
        return [(keys, value)]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _expressions(v, [*keys, k])]
    return []


def test_no_inferred_link_sends_a_null_the_schema_does_not_announce(document: dict[str, Any]) -> None:
    """A link a client infers by field names (schemathesis' dependency analysis) reads a field the answer
    always holds, or feeds a request body field that takes null, or reads a field null by nature
    (`NULL_BY_NATURE`, each with its reason). Admin and store keys have no `partner_id` to follow."""
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(document)))
    problems, used = [], set()
    for response_links in schema.analysis.dependency_graph.iter_links():
        producer = _target(document, response_links.producer_operation_ref)
        path = response_links.producer_operation_ref.removeprefix("#/paths/").rsplit("/", 1)[0].replace("~1", "/")
        answer = producer["responses"][str(response_links.status_code)]
        answer_schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        for name, definition in response_links.links.items():
            link = definition.to_openapi()
            target = _target(document, link["operationRef"])
            reads = [(["parameters", *k], e) for k, e in _expressions(link.get("parameters", {}), [])]
            reads += [(["body", *k], e) for k, e in _expressions(link.get("requestBody", {}), [])]
            for keys, expression in reads:
                if not expression.startswith("$response.body#"):
                    continue
                pointer = expression.split("#", 1)[1]
                found, why = _field_at(document, answer_schema, pointer)
                if found is not None:
                    continue
                field = _body_field(document, target, keys[1:]) if keys[0] == "body" else None
                if field is not None and may_be_null(document, field):
                    continue
                key = (path, pointer.rsplit("/", 1)[-1])
                if key in NULL_BY_NATURE:
                    used.add(key)
                    continue
                problems.append(f"{path} {response_links.status_code} {name}: {expression}: {why}")
    assert problems == []
    assert set(NULL_BY_NATURE) - used == set(), "listed fields no inferred link reads any more"
    assert not [k for k in used if k[0].startswith("/v1/api-keys")]


def _field_at(document: dict[str, Any], schema: dict[str, Any], pointer: str) -> tuple[dict[str, Any] | None, str]:
    """As `field_at`, where `*` stands for any item of an array."""
    for index, part in enumerate(parts := [p for p in pointer.split("/") if p]):
        if part != "*":
            continue
        schema = resolve(document, schema)
        found, why = field_at(document, schema, "/" + "/".join(parts[:index]))
        if found is None:
            return None, why
        return _field_at(document, resolve(document, found).get("items", {}), "/" + "/".join(parts[index + 1 :]))
    return field_at(document, schema, pointer)


def test_levels_are_stated_in_their_order(document: dict[str, Any]) -> None:
    levels = document["components"]["schemas"]["Terms"]["properties"]["levels"]
    assert [item["properties"]["level"]["const"] for item in levels["prefixItems"]] == [str(x) for x in LEVEL_ORDER]
    assert levels["prefixItems"][0]["properties"]["min_points"]["const"] == 0
    assert "strictly higher" in levels["description"]
