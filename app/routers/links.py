"""OpenAPI links: how the answer of one operation feeds the next (an id created, then read, changed,
deleted), so clients and the stateful fuzzer can chain them."""

from __future__ import annotations

from typing import Any


def link(operation_id: str, description: str | None = None, **parameters: str) -> dict[str, Any]:
    """A link to `operation_id`; each parameter is a runtime expression, e.g.
    `partner_id="$response.body#/id"`."""
    value: dict[str, Any] = {"operationId": operation_id, "parameters": parameters}
    if description:
        value["description"] = description
    return value


def links(status: int, **named: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The `responses` entry of `status` carrying these links, for a route decorator."""
    return {status: {"links": named}}
