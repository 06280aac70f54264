"""Faults and hostile input: database errors answer 503, bugs 500 on a connection that stays usable,
bounded bodies, headers, JSON and datetimes, and bulk calls that cannot deadlock each other."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain import status as status_domain
from tests.conftest import Api
from tests.program import Customer, Program, line


@contextmanager
def failing_statements(connection: AsyncConnection, error: Exception) -> Iterator[None]:
    """Every statement on this connection fails with `error`, raised where the driver raises it:
    SQLAlchemy translates and wraps it exactly as an error from the server."""
    engine = connection.sync_engine

    def fail(*_args: Any) -> None:
        raise error

    event.listen(engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", fail)


def asyncpg_error(error: Exception) -> Exception:
    """`error` (one of asyncpg's) as SQLAlchemy's asyncpg adapter hands it on."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, AsyncAdapt_asyncpg_dbapi

    dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, error)
    except Exception as translated:
        return translated
    raise AssertionError("not translated")


SERVER_GONE = {
    "shutting down": asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
    "starting up": asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    "terminated": asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    "in progress": asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
    "too many": asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    "closed": asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
}


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize("kind", sorted(SERVER_GONE))
async def test_postgres_restart_errors_answer_503_with_retry_after(api: Api, backend: str, kind: str) -> None:
    assert api.connection is not None
    with failing_statements(api.connection, asyncpg_error(SERVER_GONE[kind])):
        response = await api.client.get("/v1/partners", headers=api.admin)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["code"] == "database_unavailable"
    assert (await api.client.get("/v1/partners", headers=api.admin)).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_database_locked_answers_503(api: Api, backend: str) -> None:
    assert api.connection is not None
    with failing_statements(api.connection, api.connection.dialect.loaded_dbapi.OperationalError("database is locked")):
        response = await api.client.get("/v1/partners", headers=api.admin)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["code"] == "database_unavailable"


@pytest.mark.parametrize(
    "error",
    [
        SQLAlchemyTimeoutError("QueuePool limit of size 10 overflow 10 reached, connection timed out"),
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
    ids=["pool timeout", "connection refused", "connection reset"],
)
async def test_pool_timeout_and_lost_connections_answer_503(api: Api, error: Exception) -> None:
    assert api.connection is not None
    with failing_statements(api.connection, error):
        response = await api.client.post("/v1/partners", json=api.registration(contact_email="lost@pool.example"))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_unavailable" and response.headers["retry-after"] == "5"


async def test_an_unexpected_error_is_a_500_logged_with_its_traceback(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    partner, key = await api.register()

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(status_domain, "status", broken)
    app_logger = logging.getLogger("app")  # it does not propagate to the root logger caplog watches
    app_logger.addHandler(caplog.handler)
    try:
        response = await api.client.get(
            f"/v1/partners/{partner['id']}/status", headers={**api.bearer(key), "X-Request-ID": "req-bug"}
        )
    finally:
        app_logger.removeHandler(caplog.handler)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error" and response.json()["request_id"] == "req-bug"
    [record] = [r for r in caplog.records if r.exc_info is not None]
    assert record.exc_info is not None and str(record.exc_info[1]) == "a bug"


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access due to concurrent update"),
    ],
    ids=["deadlock", "serialization"],
)
@pytest.mark.parametrize("backend", ["postgres"])
async def test_deadlock_and_serialization_failure_answer_503_retry(api: Api, backend: str, error: Exception) -> None:
    assert api.connection is not None
    with failing_statements(api.connection, asyncpg_error(error)):
        response = await api.client.post("/v1/partners", json=api.registration(contact_email="lost@race.example"))
    assert response.status_code == 503
    assert response.json()["code"] == "retry" and response.headers["retry-after"] == "1"
    assert (await api.client.get("/v1/partners?q=lost@race", headers=api.admin)).json()["items"] == []


@pytest.mark.parametrize("backend", ["postgres"])
async def test_an_unexpected_database_error_is_a_500_with_the_request_id(api: Api, backend: str) -> None:
    assert api.connection is not None
    with failing_statements(api.connection, asyncpg_error(asyncpg.exceptions.DivisionByZeroError("division by zero"))):
        response = await api.client.get("/v1/partners", headers={**api.admin, "X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error" and response.json()["request_id"] == "req-500"


async def _raw_exchange(port: int, requests: list[bytes]) -> list[tuple[int, dict[str, str], bytes]]:
    """Send requests one after the other on ONE connection; the server must answer each."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for request in requests:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            headers: dict[str, str] = {}
            while (header := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            answers.append((int(status_line.split()[1]), headers, body))
    finally:
        writer.close()
    return answers


async def test_a_500_keeps_the_keep_alive_connection(live_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    partner, key = await live_api.register()

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(status_domain, "status", broken)
    port = live_api.client.base_url.port
    assert port is not None
    get = f"GET /v1/partners/{{path}} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nX-Request-ID: r1\r\n\r\n"
    answers = await _raw_exchange(
        port, [get.format(path=f"{partner['id']}/status").encode(), get.format(path=partner["id"]).encode()]
    )
    (first_status, first_headers, first_body), (second_status, _, second_body) = answers
    assert first_status == 500
    assert first_headers["content-type"] == "application/problem+json"
    assert "close" not in first_headers.get("connection", "")
    assert json.loads(first_body)["request_id"] == "r1" and json.loads(first_body)["code"] == "internal_error"
    assert second_status == 200 and json.loads(second_body)["id"] == partner["id"]


async def test_status_as_of_the_end_of_time_is_422_naming_the_field(api: Api) -> None:
    partner, key = await api.register()
    for moment in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "9000-01-01T00:00:00Z"):
        response = await api.client.get(
            f"/v1/partners/{partner['id']}/status", params={"as_of": moment}, headers=api.bearer(key)
        )
        assert response.status_code == 422, moment
        assert [e["field"] for e in response.json()["errors"]] == ["query.as_of"]
    last = await api.client.get(
        f"/v1/partners/{partner['id']}/status", params={"as_of": "8999-12-31T23:59:59Z"}, headers=api.bearer(key)
    )
    assert last.status_code == 200, last.text


async def test_store_event_times_out_of_range_are_malformed(api: Api) -> None:
    program = Program(api)
    program.at("2026-02-01T10:01:00Z")
    event: dict[str, Any] = {
        "type": "licence.lapsed",
        "occurred_at": "2026-02-01T10:00:00Z",
        "data": {"licence_id": "lic_x", "lapsed_at": "9999-12-31T23:59:59+14:00"},
    }
    response = await program.send(event)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["licence.lapsed.data.lapsed_at"]


async def test_deeply_nested_signed_webhook_is_422_and_its_raw_body_kept(api: Api) -> None:
    body = b"[" * 1000 + b"]" * 1000
    response = await api.client.post("/v1/webhooks/store", content=body, headers=api.signed("deep", body))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "webhook_event_malformed"
    assert api.connection is not None
    kept = (
        await api.connection.execute(
            text("SELECT webhook_id, body FROM rejected_webhook_events WHERE webhook_id = 'deep'")
        )
    ).one()
    assert kept.body == body.decode()


async def test_deeply_nested_json_on_any_route_is_422(api: Api) -> None:
    body = b'{"company": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = await api.client.post("/v1/partners", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["code"] == "json_too_deep"
    assert response.json()["errors"][0]["field"] == "body"
    # Brackets inside strings are text, not nesting.
    fine = api.registration(company="Brackets " + "[" * 40 + " GmbH")
    assert (await api.client.post("/v1/partners", json=fine)).status_code == 201


async def test_a_body_over_the_limit_is_413_before_it_is_read(api: Api) -> None:
    big = b'{"company": "' + b"x" * (1024 * 1024) + b'"}'
    response = await api.client.post("/v1/partners", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "body_too_large"
    unsigned = await api.client.post("/v1/webhooks/store", content=big, headers={"content-type": "application/json"})
    assert unsigned.status_code == 413

    async def chunked() -> Any:  # no Content-Length: counted while it streams
        for _ in range(20):
            yield b"x" * 65536

    streamed = await api.client.post("/v1/partners", content=chunked(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["code"] == "body_too_large"
    # Whatever the declared media type: FastAPI turns other errors met while reading a body into 400.
    streamed_text = await api.client.post("/v1/partners", content=chunked(), headers={"content-type": "text/plain"})
    assert streamed_text.status_code == 413 and streamed_text.json()["code"] == "body_too_large"
    assert streamed_text.headers["content-type"] == "application/problem+json"
    streamed_webhook = await api.client.post(
        "/v1/webhooks/store", content=chunked(), headers={"content-type": "application/json"}
    )
    assert streamed_webhook.status_code == 413


async def test_customer_imports_take_a_larger_body(api: Api) -> None:
    two_mib = b"nope\n" + b"x,\n" * 700_000  # read past 1 MiB: refused for its header, not its size
    response = await api.client.post(
        "/v1/customer-imports/csv", content=two_mib, headers={**api.admin, "content-type": "text/csv"}
    )
    assert response.status_code == 422 and response.json()["code"] == "csv_header_invalid"
    nine_mib = b"x" * (9 * 1024 * 1024)
    too_big = await api.client.post(
        "/v1/customer-imports/csv", content=nine_mib, headers={**api.admin, "content-type": "text/csv"}
    )
    assert too_big.status_code == 413 and too_big.json()["code"] == "body_too_large"


async def test_the_bulk_statement_routes_take_as_many_statements_as_the_document_allows(api: Api) -> None:
    """10,000 payments with 200-character references (over 3 MiB) are read, not refused for their size."""
    payments = [
        {"statement_id": str(uuid.uuid4()), "payment_reference": "R" * 200, "paid_on": "2026-05-02"}
        for _ in range(10_000)
    ]
    response = await api.client.post(
        "/v1/statements/bulk-mark-paid",
        json={"payments": payments},
        headers={**api.admin, "Idempotency-Key": "bulk-size-check"},
    )
    assert response.status_code not in (413, 500), response.text[:300]
    assert 400 <= response.status_code < 500  # the statements do not exist


async def test_oversized_headers_are_431(api: Api) -> None:
    response = await api.client.get("/health/live", headers={"X-Padding": "x" * (64 * 1024)})
    assert response.status_code == 431
    assert response.json()["code"] == "headers_too_large"


async def test_overlapping_bulk_approvals_never_deadlock(live_api: Api, backend: str) -> None:
    """[A, B] and [B, A] at once, many times: each answers 200 (locks are taken in id order)."""
    program = Program(live_api)
    statement_ids = []
    for _ in range(2):
        p = await program.partner("2026-01-01T09:00:00Z")
        c = Customer.new()
        await program.register(p, c, at="2026-01-02T09:00:00Z")
        await program.order(c, [line("desktop", 1, 10000)], placed_at="2026-01-03T00:00:00Z")
    program.at("2026-04-02T00:00:00Z")
    closed = await live_api.client.post("/v1/quarters/2026-Q1/close", headers=live_api.admin)
    assert closed.status_code == 200, closed.text
    statement_ids = [s["id"] for s in closed.json()["statements"]]
    assert len(statement_ids) == 2
    forward, backward = statement_ids, list(reversed(statement_ids))
    for _ in range(15):
        answers = await asyncio.gather(
            *(
                live_api.client.post("/v1/statements/bulk-approve", json={"statement_ids": ids}, headers=live_api.admin)
                for ids in (forward, backward, forward, backward)
            )
        )
        assert [a.status_code for a in answers] == [200, 200, 200, 200], [a.text for a in answers]


# --- a NUL or a lone surrogate never reaches the database ----------------------------------------


async def test_a_signed_webhook_whose_type_holds_a_nul_or_a_lone_surrogate_is_422_and_kept_raw(api: Api) -> None:
    assert api.connection is not None
    for n, escaped in enumerate([rb"order.paid\u0000", rb"\ud83d", rb"lapse\uDC00d", rb"x\u001b"]):
        body = b'{"type": "' + escaped + b'", "data": {"order_id": "o-17"}}'
        webhook_id = f"bad-type-{n}"
        response = await api.client.post("/v1/webhooks/store", content=body, headers=api.signed(webhook_id, body))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "webhook_event_malformed"
        assert [e["field"] for e in response.json()["errors"]] == ["type"]
        kept = (
            await api.connection.execute(
                text("SELECT body FROM rejected_webhook_events WHERE webhook_id = :id"), {"id": webhook_id}
            )
        ).one()
        assert kept.body.encode() == body
    # A body holding a NUL byte itself is no JSON: kept base64-encoded, byte for byte.
    body = b'{"type": "order.paid\x00", "data": {}}'
    response = await api.client.post("/v1/webhooks/store", content=body, headers=api.signed("nul-byte", body))
    assert response.status_code == 422, response.text
    assert [e.get("type") for e in response.json()["errors"]][-1] == "body_base64"
    kept = (
        await api.connection.execute(text("SELECT body FROM rejected_webhook_events WHERE webhook_id = 'nul-byte'"))
    ).one()
    assert base64.b64decode(kept.body) == body
    # A type this service does not know, in clean text, is still stored for an admin to see.
    clean = b'{"type": "order.upgraded", "data": {}}'
    stored = await api.client.post("/v1/webhooks/store", content=clean, headers=api.signed("new-type", clean))
    assert stored.status_code == 202, stored.text


async def test_text_with_a_nul_is_422_wherever_it_is_sent(api: Api) -> None:
    partner, key = await api.register()
    subscription = {"url": "https://hooks.example.com/in", "event_types": ["partner.registered"]}
    nul = json.dumps({**subscription, "description": "CRM\u0000sync"})
    created = await api.client.post(
        "/v1/webhook-subscriptions", content=nul, headers={**api.admin, "content-type": "application/json"}
    )
    assert created.status_code == 422, created.text
    assert [e["field"] for e in created.json()["errors"]] == ["body.description"]
    own = await api.client.post(
        f"/v1/partners/{partner['id']}/webhook-subscriptions",
        content=json.dumps(
            {"url": "https://erp.example.com/q", "event_types": ["lead.offered"], "description": "\x00"}
        ),
        headers={**api.bearer(key), "content-type": "application/json"},
    )
    assert own.status_code == 422, own.text
    made = await api.client.post("/v1/webhook-subscriptions", json=subscription, headers=api.admin)
    assert made.status_code == 201, made.text
    changed = await api.client.patch(
        f"/v1/webhook-subscriptions/{made.json()['id']}",
        content=json.dumps({"description": "a\u0000"}),
        headers={**api.admin, "content-type": "application/json"},
    )
    assert changed.status_code == 422, changed.text
    for name in ("store_customer_id", "domain", "vat_id"):
        searched = await api.client.get("/v1/customers", params={name: "cus\x0042"}, headers=api.admin)
        assert searched.status_code == 422, searched.text
        assert [e["field"] for e in searched.json()["errors"]] == [f"query.{name}"]


async def test_a_malformed_internationalised_host_is_422(api: Api) -> None:
    partner, key = await api.register()
    for url in ("https://xn--a-/", "https://xn--/hook", "https://ok.xn--zz-/path"):
        created = await api.client.post(
            "/v1/webhook-subscriptions", json={"url": url, "event_types": ["partner.registered"]}, headers=api.admin
        )
        assert created.status_code == 422, created.text
        assert created.json()["code"] == "webhook_url_invalid"
        own = await api.client.post(
            f"/v1/partners/{partner['id']}/webhook-subscriptions",
            json={"url": url, "event_types": ["lead.offered"]},
            headers=api.bearer(key),
        )
        assert own.status_code == 422 and own.json()["code"] == "webhook_url_invalid", own.text


async def test_null_for_a_directory_list_is_422_and_an_empty_list_empties_it(api: Api) -> None:
    partner, key = await api.register()
    url = f"/v1/partners/{partner['id']}/directory-profile"
    filled = await api.client.patch(
        url, json={"services": ["BI dashboards"], "regions_served": ["Bavaria"]}, headers=api.bearer(key)
    )
    assert filled.status_code == 200, filled.text
    for name in ("services", "regions_served", "languages", "listed"):
        response = await api.client.patch(url, json={name: None}, headers=api.bearer(key))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "field_required"
        assert response.json()["field"] == name
    emptied = await api.client.patch(url, json={"regions_served": [], "languages": []}, headers=api.bearer(key))
    assert emptied.status_code == 200, emptied.text
    assert emptied.json()["regions_served"] == [] and emptied.json()["languages"] == []


NUL_CHECKED_ELSEWHERE = {
    ("header", None): "HTTP header values cannot carry a NUL: the server refuses the request first",
    ("body", "email"): "an e-mail address is validated whole (EmailStr), which a NUL fails",
    ("body", "uri"): "a URL is parsed and normalised (HttpUrl), which drops control characters",
    ("body", "text/csv"): "each CSV row is read into the JSON import's typed fields",
    ("body", "receive_store_event"): "the store contract's own reading (store_events), tested above",
}


def _strings_refusing_no_nul(schema: dict[str, Any], components: dict[str, Any], where: str) -> Iterator[str]:
    """Where a request's strings, as the OpenAPI document declares them, would take a NUL."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            yield from _strings_refusing_no_nul(option, components, where)
    if schema.get("type") == "string":
        if "enum" in schema or "const" in schema or schema.get("format") in ("uuid", "date-time", "date"):
            return
        if schema.get("format") in ("email", "uri"):
            if ("body", schema["format"]) not in NUL_CHECKED_ELSEWHERE:
                yield where
            return
        pattern = schema.get("pattern")
        if pattern is None or re.search(pattern, "text\x00text"):
            yield where
    if "items" in schema:
        yield from _strings_refusing_no_nul(schema["items"], components, f"{where}[]")
    for name, sub in schema.get("properties", {}).items():
        yield from _strings_refusing_no_nul(sub, components, f"{where}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _strings_refusing_no_nul(schema["additionalProperties"], components, f"{where}.*")


def test_every_string_a_request_sends_refuses_a_nul_by_its_declared_type() -> None:
    """Postgres stores no NUL, and a lone surrogate is no UTF-8: each string a request carries is
    declared with a pattern that refuses control characters (or is an enum, a UUID, a moment, or read
    whole by a stricter parser, listed above), so a NUL is a 422 naming the field, never a 500. Lone
    surrogates are refused by the JSON models for every string."""
    document = json.loads(Path("openapi/openapi.json").read_text())
    components = document["components"]["schemas"]
    open_to_nul = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            name = operation["operationId"]
            for parameter in operation.get("parameters", []):
                if (parameter["in"], None) in NUL_CHECKED_ELSEWHERE:
                    continue
                where = f"{method.upper()} {path} {parameter['in']}.{parameter['name']}"
                open_to_nul += _strings_refusing_no_nul(parameter["schema"], components, where)
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                if {("body", name), ("body", media_type)} & NUL_CHECKED_ELSEWHERE.keys():
                    continue
                open_to_nul += _strings_refusing_no_nul(content["schema"], components, f"{method.upper()} {path} body")
    assert open_to_nul == []


async def test_an_integer_path_parameter_past_its_range_is_refused_never_a_500(api: Api) -> None:
    """Every integer in a path declares the range a database key can hold (a number past 2**63 reached
    Postgres once, and its error was a 500): past it, each route without a body answers 422."""
    document = api.app.openapi()
    partner, _ = await api.register()
    fills = {"partner_id": partner["id"]}
    asked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            params = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            integers = [p["name"] for p in params if p["schema"].get("type") == "integer"]
            if not integers or "requestBody" in operation:
                continue
            values = {p["name"]: fills.get(p["name"], str(uuid.uuid4())) for p in params}
            values |= dict.fromkeys(integers, str(2**64))
            response = await api.client.request(method.upper(), path.format(**values), headers=api.admin)
            assert response.status_code == 422, (method, path, response.status_code, response.text)
            asked += 1
    assert asked >= 5
