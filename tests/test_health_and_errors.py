"""Probes, request ids and the problem+json shape of answers the routers never see."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import migrate
from app.db.session import create_engine
from tests import databases
from tests.conftest import Api


async def test_liveness(api: Api) -> None:
    response = await api.client.get("/health/live")
    assert response.status_code == 200 and response.json()["status"] == "ok"


async def test_readiness_reports_the_schema_revision(api: Api) -> None:
    response = await api.client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["database"] == "ok"
    assert body["schema_revision"] == body["expected_revision"] == migrate.head_revision()


async def test_readiness_fails_on_an_unmigrated_database(api: Api, backend: str, tmp_path: Path) -> None:
    """The probe uses the app's own engine: point it at an empty database of the same kind."""
    app = api.client._transport.app  # type: ignore[attr-defined]
    if backend == "postgres":
        url = await databases.create_postgres_copy("template0", f"partners_empty_{databases.WORKER}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    engine, empty = app.state.engine, create_engine(url)
    app.state.engine = empty
    try:
        response = await api.client.get("/health/ready")
    finally:
        app.state.engine = engine
        await empty.dispose()
        if backend == "postgres":
            await databases.drop_postgres(f"partners_empty_{databases.WORKER}")
    assert response.status_code == 503
    assert response.json()["database"] == "not_migrated"


async def test_readiness_reports_an_unreachable_database(api: Api) -> None:
    app = api.client._transport.app  # type: ignore[attr-defined]
    engine, dead = app.state.engine, create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app.state.engine = dead
    try:
        response = await api.client.get("/health/ready")
    finally:
        app.state.engine = engine
        await dead.dispose()
    assert response.status_code == 503 and response.json()["database"] == "unreachable"


async def test_a_failed_commit_is_never_answered_with_success(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing_commit(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, Exception("connection lost"))

    monkeypatch.setattr(AsyncSession, "commit", failing_commit)
    response = await api.client.post("/v1/partners", json=api.registration(contact_email="lost@commit.example"))
    monkeypatch.undo()
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    listed = await api.client.get("/v1/partners?q=lost@commit", headers=api.admin)
    assert listed.json()["items"] == []


async def test_unknown_route_and_method_are_problems(api: Api) -> None:
    missing = await api.client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "route_not_found"
    wrong = await api.client.put("/v1/partners")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


async def test_request_id_is_echoed_or_made(api: Api) -> None:
    given = await api.client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await api.client.get("/health/live", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces" and len(made.headers["x-request-id"]) == 32
    problem = await api.client.get("/v1/partners", headers={"X-Request-ID": "xyz"})
    assert problem.json()["request_id"] == "xyz"


async def test_failed_request_writes_nothing(api: Api) -> None:
    """A refused request rolls back everything it did."""
    partner, _ = await api.register()
    assert api.connection is not None
    before = (await api.connection.execute(text("SELECT count(*) FROM audit_events"))).scalar_one()
    response = await api.client.post(f"/v1/partners/{partner['id']}/reinstate", json={"reason": "x"}, headers=api.admin)
    assert response.status_code == 409 and response.json()["code"] == "invalid_status_transition"
    after = (await api.connection.execute(text("SELECT count(*) FROM audit_events"))).scalar_one()
    assert after == before


async def test_a_failing_statement_never_shows_its_parameters(database_url: str) -> None:
    """SQL errors are logged and reported without the values bound to them (a key's hash, an e-mail)."""
    engine = create_engine(database_url)
    secret = "hash-of-a-key-0f9e8d7c6b5a"
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as failed:
                await conn.execute(text("INSERT INTO no_such_table (value) VALUES (:value)"), {"value": secret})
    finally:
        await engine.dispose()
    assert secret not in str(failed.value)
    assert "hidden due to hide_parameters" in str(failed.value)


async def test_a_json_route_given_another_media_type_is_415(api: Api) -> None:
    body = '{"company": "Plain Text Ltd"}'
    refused = await api.client.post("/v1/partners", content=body, headers={"Content-Type": "text/plain"})
    assert refused.status_code == 415
    problem = refused.json()
    assert problem["code"] == "unsupported_media_type"
    assert problem["detail"] == "This route reads application/json; the body was sent as text/plain."
    assert refused.headers["accept"] == "application/json"
    # The JSON media types and a CSV route's own are read as before.
    json_body = await api.client.post(
        "/v1/partners", content="{}", headers={"Content-Type": "application/problem+json"}
    )
    assert json_body.status_code == 422 and json_body.json()["code"] == "validation_failed"


async def test_validation_messages_are_sentences_that_name_the_form_never_a_pattern(api: Api) -> None:
    refused = await api.client.get("/v1/directory?country=XX")
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["message"] == "XX is not an ISO 3166-1 alpha-2 country code."
    bad = await api.client.post(
        "/v1/partners",
        json={**api.registration(), "country": "ZZ", "languages": ["xx"], "company": "   ", "extra": 1},
    )
    assert bad.status_code == 422
    for e in bad.json()["errors"]:
        message = e["message"]
        assert message[:1].isupper() and message.endswith("."), e
        assert "^" not in message and "[" not in message, e


def test_every_pattern_a_request_is_checked_against_has_its_words() -> None:
    """No refusal ever quotes a regular expression: each pattern of the OpenAPI document is described."""
    from app.main import create_app
    from app.routers.fields import describe_pattern

    patterns: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.add(node["pattern"])
            for key, value in node.items():
                if key != "not":  # a `not` pattern refuses by a validator of its own, with its own words
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(create_app().openapi())
    assert patterns
    assert sorted(p[:60] for p in patterns if describe_pattern(p) is None) == []
