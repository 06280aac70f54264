"""Every list answers one shape: `items`, `next_cursor`, `has_more` (the directory: `page`, `per_page`, `has_more`)."""

from __future__ import annotations

from typing import Any

from app.main import create_app
from tests.conftest import Api


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return dict(document["components"]["schemas"][ref.split("/")[-1]]) if ref else schema


def test_no_operation_answers_a_bare_array_and_every_list_has_the_shape() -> None:
    document = create_app().openapi()
    bare, shapes = [], {}
    for path, item in document["paths"].items():
        get = item.get("get")
        if get is None:
            continue
        content = get["responses"].get("200", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        schema = _schema(document, content["schema"])
        if schema.get("type") == "array":
            bare.append(path)
        elif "items" in schema.get("properties", {}):
            shapes[path] = sorted(schema["properties"])
    assert bare == []
    assert shapes.pop("/v1/directory") == ["has_more", "items", "page", "per_page"]
    # A list may say more about itself (`/v1/jobs` adds the store-event backlog), never less.
    assert {
        path: shape for path, shape in shapes.items() if not {"has_more", "items", "next_cursor"} <= set(shape)
    } == {}
    assert len(shapes) >= 25


async def test_has_more_and_next_cursor_walk_a_list(api: Api) -> None:
    for n in range(3):
        api.clock.advance(minutes=1)
        await api.register(company=f"Walk {n} GmbH")
    first = (await api.client.get("/v1/partners?limit=2&q=walk", headers=api.admin)).json()
    assert ([p["company"] for p in first["items"]], first["has_more"]) == (["Walk 2 GmbH", "Walk 1 GmbH"], True)
    second = (
        await api.client.get(f"/v1/partners?limit=2&q=walk&cursor={first['next_cursor']}", headers=api.admin)
    ).json()
    assert (second["items"][0]["company"], second["next_cursor"], second["has_more"]) == ("Walk 0 GmbH", None, False)


async def test_a_one_page_list_says_there_is_nothing_more(api: Api) -> None:
    partner, key = await api.register()
    history = (await api.client.get(f"/v1/partners/{partner['id']}/status-history", headers=api.bearer(key))).json()
    assert ([h["to_status"] for h in history["items"]], history["next_cursor"], history["has_more"]) == (
        ["active"],
        None,
        False,
    )


async def test_the_directory_says_whether_another_page_follows(api: Api) -> None:
    for n in range(3):
        await api.register(company=f"Directory {n} SARL", country="FR")
    first = (await api.client.get("/v1/directory?country=FR&per_page=2")).json()
    last = (await api.client.get("/v1/directory?country=FR&per_page=2&page=2")).json()
    assert (len(first["items"]), first["has_more"], len(last["items"]), last["has_more"]) == (2, True, 1, False)
