"""The store webhook intake's fast path (app/intake.py): a storable event is answered exactly as the
route answers it, named as the route in the log and the metrics; anything else goes on to the route,
which answers as it always has.

Which path answered is seen through spies: the route calls `webhooks.accept` (which calls
`webhooks.store`), the fast path calls `webhooks.store` itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app import intake, metrics, tracing
from app.domain import webhooks
from app.domain.webhooks import sign
from tests.conftest import Api
from tests.program import Customer, line, order_event, t

URL = "/v1/webhooks/store"


@dataclass
class Paths:
    """Which path stored (or tried to store) each webhook, and the route each answer named."""

    accept: int = 0  # the route's calls of webhooks.accept
    fast: int = 0  # calls of webhooks.store not made by accept: the fast path's
    routes: list[Any] = field(default_factory=list)
    _accepting: bool = False


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Paths:
    seen = Paths()
    accept, store, answered = webhooks.accept, webhooks.store, metrics.request_answered

    async def counting_accept(*args: Any, **kwargs: Any) -> webhooks.Receipt:
        seen.accept += 1
        seen._accepting = True
        try:
            return await accept(*args, **kwargs)
        finally:
            seen._accepting = False

    async def counting_store(*args: Any, **kwargs: Any) -> webhooks.Receipt:
        if not seen._accepting:
            seen.fast += 1
        return await store(*args, **kwargs)

    def noting_route(scope: Any, status: int, seconds: float) -> None:
        if scope["path"] == URL:
            seen.routes.append(scope.get("route"))
        answered(scope, status, seconds)

    monkeypatch.setattr(webhooks, "accept", counting_accept)
    monkeypatch.setattr(webhooks, "store", counting_store)
    monkeypatch.setattr(metrics, "request_answered", noting_route)
    return seen


def _event(**overrides: Any) -> bytes:
    event = order_event(Customer.new(), [line("desktop", 1, 100)], placed_at=t("2026-03-02T08:00:00Z"))
    event.update(overrides)
    return json.dumps(event).encode()


async def _post(api: Api, webhook_id: str, body: bytes, **extra: str) -> httpx.Response:
    return await api.client.post(URL, content=body, headers={**api.signed(webhook_id, body), **extra})


async def _count(api: Api, table: str, webhook_id: str) -> int:
    assert api.connection is not None
    query = text(f"SELECT count(*) FROM {table} WHERE webhook_id = :webhook_id")
    return int((await api.connection.execute(query, {"webhook_id": webhook_id})).scalar_one())


def _receipt(event_id: int, status: str, reason_code: str | None = None, reason: str | None = None) -> bytes:
    """The route's answer, byte for byte: the response model's fields in order, compact JSON."""
    url = f"/v1/webhook-events/{event_id}"
    fields = {"event_id": event_id, "status": status, "url": url, "reason_code": reason_code, "reason": reason}
    return json.dumps(fields, separators=(",", ":")).encode()


def _headers(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    return list(response.headers.raw)


async def _metrics(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    scraped = (await api.client.get("/metrics")).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }


def _delta(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


# --- the fast path answers as the route does -----------------------------------------------------


async def test_an_accepted_and_a_duplicate_are_answered_as_the_route_answers_them(
    api: Api, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _event()
    fast = await _post(api, "fast_1", body, **{"x-request-id": "req-fast-1"})
    assert paths.fast == 1 and paths.accept == 0, "the fast path answered"
    assert fast.status_code == 202
    event_id = fast.json()["event_id"]
    assert fast.content == _receipt(event_id, "accepted")
    assert _headers(fast) == [
        (b"content-length", str(len(fast.content)).encode()),
        (b"content-type", b"application/json"),
        (b"x-request-id", b"req-fast-1"),
    ]
    fast_duplicate = await _post(api, "fast_1", _event(), **{"x-request-id": "req-dup"})
    assert paths.fast == 2 and paths.accept == 0
    assert fast_duplicate.status_code == 200
    reason = "Event fast_1 was received before."
    assert fast_duplicate.content == _receipt(event_id, "duplicate", "same_webhook_id", reason)

    # The same requests, the fast path declining them: the route's own answers.
    async def decline(*_args: Any) -> None:
        return None

    monkeypatch.setattr(intake.IntakeFastPath, "_answer", decline)
    normal = await _post(api, "normal_1", _event(), **{"x-request-id": "req-normal-1"})
    assert paths.accept == 1 and paths.fast == 2, "the route answered"
    assert normal.status_code == 202
    assert normal.content == _receipt(normal.json()["event_id"], "accepted")
    assert [name for name, _ in _headers(normal)] == [name for name, _ in _headers(fast)]
    assert normal.headers["content-type"] == fast.headers["content-type"]
    assert normal.headers["x-request-id"] == "req-normal-1"
    normal_duplicate = await _post(api, "fast_1", _event(), **{"x-request-id": "req-dup"})
    assert paths.accept == 2
    assert (normal_duplicate.status_code, normal_duplicate.content) == (200, fast_duplicate.content)
    assert _headers(normal_duplicate) == _headers(fast_duplicate)

    assert await _count(api, "webhook_events", "fast_1") == 1
    stored = await api.client.get(f"/v1/webhook-events/{event_id}", headers=api.admin)
    assert stored.json()["body"] == body.decode() and stored.json()["status"] == "accepted"
    # Routing and the fast path name the very same route object.
    assert len(paths.routes) == 4 and all(route is paths.routes[0] for route in paths.routes)
    assert paths.routes[0].path == URL


async def test_an_unknown_event_type_is_stored_by_the_fast_path(api: Api, paths: Paths) -> None:
    response = await _post(api, "fast_unknown", json.dumps({"type": "order.shipped", "data": {}}).encode())
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    assert paths.fast == 1 and paths.accept == 0
    stored = await api.client.get(response.json()["url"], headers=api.admin)
    assert (stored.json()["event_type"], stored.json()["subject"]) == ("order.shipped", "unknown:fast_unknown")


async def test_the_metrics_count_the_fast_paths_answers_under_the_route(api: Api, paths: Paths) -> None:
    before = await _metrics(api)
    assert (await _post(api, "fast_m", _event())).status_code == 202
    assert (await _post(api, "fast_m", _event())).status_code == 200
    after = await _metrics(api)
    assert paths.fast == 2 and paths.accept == 0
    count = "partners_http_request_duration_seconds_count"
    for status in ("202", "200"):
        assert _delta(before, after, count, method="POST", route=URL, status=status) == 1
    events = "partners_store_events_total"
    assert _delta(before, after, events, outcome="accepted") == 1
    assert _delta(before, after, events, outcome="duplicate") == 1
    assert _value_in_flight(after) == 1  # the scrape; the webhooks were counted out


def _value_in_flight(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    return samples.get(("partners_http_requests_in_flight", frozenset()), 0.0)


@pytest.mark.parametrize("settings_overrides", [{"environment": "production"}])
async def test_the_request_log_names_the_route_and_the_request_id(
    api: Api, paths: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (await _post(api, "fast_logged", _event(), **{"x-request-id": "req-logged"})).status_code == 202
    assert paths.fast == 1 and paths.accept == 0
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    [logged] = [x for x in lines if x["logger"] == "app.request"]
    assert {k: logged[k] for k in ("method", "route", "path", "status", "webhook_id", "request_id")} == {
        "method": "POST",
        "route": URL,
        "path": URL,
        "status": 202,
        "webhook_id": "fast_logged",
        "request_id": "req-logged",
    }


# --- anything else goes on to the route ----------------------------------------------------------


async def test_a_bad_or_missing_signature_is_the_routes_401(api: Api, paths: Paths) -> None:
    body = _event()
    wrong = api.signed("bad_sig", body)
    wrong["webhook-signature"] = sign("whsec_b3RoZXI=", "bad_sig", wrong["webhook-timestamp"], body)
    refused = await api.client.post(URL, content=body, headers=wrong)
    assert refused.status_code == 401 and refused.json()["code"] == "webhook_signature_invalid"
    assert refused.headers["content-type"] == "application/problem+json"
    tampered = await api.client.post(URL, content=body + b" ", headers=api.signed("tampered", body))
    assert tampered.status_code == 401 and tampered.json()["code"] == "webhook_signature_invalid"
    missing = await api.client.post(URL, content=body, headers={"content-type": "application/json"})
    assert missing.status_code == 401 and missing.json()["code"] == "webhook_signature_missing"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert paths.fast == 0
    assert [route.path for route in paths.routes] == [URL] * 3  # routed: the 401 is counted for the route
    assert await _count(api, "webhook_events", "bad_sig") == 0


async def test_a_malformed_body_is_the_routes_422_and_kept_raw(api: Api, paths: Paths) -> None:
    body = b'{"type": "order.paid", "data": {"order_id": 5}}'
    response = await _post(api, "fast_malformed", body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "webhook_event_malformed"
    assert paths.accept == 1 and paths.fast == 0
    assert await _count(api, "rejected_webhook_events", "fast_malformed") == 1
    not_json = await _post(api, "fast_not_json", b"{oops")
    assert not_json.status_code == 422 and paths.accept == 2
    assert await _count(api, "rejected_webhook_events", "fast_not_json") == 1
    # A webhook-id received before is a duplicate whatever the body: answered by the route.
    assert (await _post(api, "fast_dup", _event())).status_code == 202
    duplicate = await _post(api, "fast_dup", b"{oops")
    assert duplicate.status_code == 200 and duplicate.json()["status"] == "duplicate"
    assert paths.accept == 3 and paths.fast == 1


@pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 2048}])
async def test_a_body_over_the_limit_is_the_limits_413(api: Api, paths: Paths) -> None:
    event = json.loads(_event())
    event["padding"] = "x" * 2048  # an unknown field: fine, but too large
    response = await _post(api, "fast_large", json.dumps(event).encode())
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert paths.fast == 0
    assert await _count(api, "webhook_events", "fast_large") == 0


async def test_a_query_string_or_a_header_out_of_bounds_is_the_routes_422(api: Api, paths: Paths) -> None:
    body = _event()
    query = await api.client.post(URL, params={"x": "1"}, content=body, headers=api.signed("fast_query", body))
    assert query.status_code == 422
    assert [e["field"] for e in query.json()["errors"]] == ["query.x"]
    long_id = "w" * 256
    too_long = await api.client.post(URL, content=body, headers=api.signed(long_id, body))
    assert too_long.status_code == 422
    assert [e["field"] for e in too_long.json()["errors"]] == ["header.webhook-id"]
    assert paths.fast == 0
    assert await _count(api, "webhook_events", "fast_query") == 0


async def test_a_body_without_content_length_goes_to_the_route(api: Api, paths: Paths) -> None:
    body = _event()

    async def chunked() -> AsyncIterator[bytes]:
        yield body[:100]
        yield body[100:]

    response = await api.client.post(URL, content=chunked(), headers=api.signed("fast_chunked", body))
    assert response.status_code == 202, response.text
    assert paths.accept == 1 and paths.fast == 0
    assert await _count(api, "webhook_events", "fast_chunked") == 1


async def test_with_tracing_on_the_route_answers(api: Api, paths: Paths) -> None:
    provider = TracerProvider()
    tracing.start(provider)
    try:
        response = await _post(api, "fast_traced", _event())
    finally:
        tracing.stop()
        provider.shutdown()
    assert response.status_code == 202
    assert paths.accept == 1 and paths.fast == 0


def _database_fault() -> OperationalError:
    return OperationalError("INSERT INTO webhook_events ...", {}, ConnectionResetError("connection reset by peer"))


async def test_a_database_fault_in_the_fast_path_is_rolled_back_and_the_route_answers(
    api: Api, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = webhooks.store
    faults = 1

    async def failing_once(*args: Any, **kwargs: Any) -> webhooks.Receipt:
        nonlocal faults
        result = await store(*args, **kwargs)  # the INSERT ran: the rollback must undo it
        if faults:
            faults -= 1
            raise _database_fault()
        return result

    monkeypatch.setattr(webhooks, "store", failing_once)
    response = await _post(api, "fast_fault", _event())
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    assert paths.fast == 1 and paths.accept == 1 and faults == 0  # tried fast, then answered by the route
    assert await _count(api, "webhook_events", "fast_fault") == 1


async def test_a_database_that_stays_down_is_the_routes_503(
    api: Api, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = 0

    async def failing(*_args: Any, **_kwargs: Any) -> webhooks.Receipt:
        nonlocal attempts
        attempts += 1
        raise _database_fault()

    monkeypatch.setattr(webhooks, "store", failing)
    response = await _post(api, "fast_down", _event())
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert attempts == 2 and paths.accept == 1  # the fast path's try, then the route's
    assert await _count(api, "webhook_events", "fast_down") == 0
