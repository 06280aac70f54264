"""The store's signed webhooks: signatures, stored and rejected events, parking and replay."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook

from app.domain import orders, webhooks
from app.domain.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Api, watch_applied_together
from tests.program import Customer, Program, iso, line, order_event, refund_event, t


@pytest.fixture
def program(api: Api, delivery: str) -> Program:
    """Store events the test delivers are applied one by one, or together (`delivery`: both ways)."""
    return Program(api)


async def _count(api: Api, table: str) -> int:
    assert api.connection is not None
    return int((await api.connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


def _headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, str(timestamp), body),
        "content-type": "application/json",
    }


async def test_bad_missing_or_stale_signatures_are_401_and_write_nothing(program: Program) -> None:
    program.at("2026-02-01T10:01:00Z")
    body = json.dumps(
        order_event(Customer.new(), [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z"))
    ).encode()
    now = int(program.api.clock.now().timestamp())
    cases = {
        "wrong secret": _headers("whsec_b3RoZXI=", "m1", now, body),
        "stale": _headers(WEBHOOK_SECRET, "m2", now - 301, body),
        "future": _headers(WEBHOOK_SECRET, "m3", now + 301, body),
        "missing": {"content-type": "application/json"},
        "not a number": {
            **_headers(WEBHOOK_SECRET, "m4", now, body),
            "webhook-timestamp": "soon",
        },
    }
    tampered = _headers(WEBHOOK_SECRET, "m5", now, body)
    for name, headers in cases.items():
        response = await program.client.post("/v1/webhooks/store", content=body, headers=headers)
        assert response.status_code == 401, name
        assert response.headers["content-type"] == "application/problem+json"
    response = await program.client.post("/v1/webhooks/store", content=body + b" ", headers=tampered)
    assert response.status_code == 401
    assert await _count(program.api, "webhook_events") == 0
    assert await _count(program.api, "rejected_webhook_events") == 0
    assert await _count(program.api, "orders") == 0


async def test_several_signatures_allow_secret_rotation(program: Program) -> None:
    program.at("2026-02-01T10:01:00Z")
    body = json.dumps(
        order_event(Customer.new(), [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z"))
    ).encode()
    now = int(program.api.clock.now().timestamp())
    good = _headers(WEBHOOK_SECRET, "rot", now, body)["webhook-signature"]
    old = sign("whsec_cmV0aXJlZA==", "rot", str(now), body)
    headers = {**_headers("whsec_eHl6", "rot", now, body), "webhook-signature": f"{old} {good}"}
    response = await program.client.post("/v1/webhooks/store", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"


async def test_malformed_signed_body_is_422_kept_raw_and_applies_nothing(program: Program) -> None:
    program.at("2026-02-01T10:01:00Z")
    event = order_event(Customer.new(), [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z"))
    del event["data"]["currency"]
    event["data"]["lines"][0]["quantity"] = 0
    response = await program.send(event)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "webhook_event_malformed"
    assert {e["field"] for e in problem["errors"]} >= {"order.paid.data.currency", "order.paid.data.lines.0.quantity"}
    assert await _count(program.api, "rejected_webhook_events") == 1
    assert await _count(program.api, "orders") == 0 and await _count(program.api, "webhook_events") == 0
    not_json = await program.client.post(
        "/v1/webhooks/store",
        content=b"{oops",
        headers=_headers(WEBHOOK_SECRET, "bad", int(program.api.clock.now().timestamp()), b"{oops"),
    )
    assert not_json.status_code == 422 and await _count(program.api, "rejected_webhook_events") == 2


async def test_numbers_for_timestamps_and_strings_for_numbers_are_malformed(program: Program) -> None:
    """The payload is read strictly: a Unix time is not an RFC 3339 timestamp, "2" is not a quantity."""
    program.at("2026-02-01T10:01:00Z")
    event = order_event(Customer.new(), [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z"))
    event["data"]["placed_at"] = int(t("2026-02-01T10:00:00Z").timestamp())
    event["data"]["lines"][0]["quantity"] = "2"
    response = await program.send(event)
    assert response.status_code == 422, response.text
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"order.paid.data.placed_at", "order.paid.data.lines.0.quantity"} <= fields
    assert await _count(program.api, "rejected_webhook_events") == 1
    assert await _count(program.api, "orders") == 0


async def test_unknown_fields_are_ignored(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    event = order_event(c, [line("desktop", 1, 48000)], placed_at=t("2026-01-20T09:00:00Z"))
    event["data"]["loyalty_tier"] = "gold"
    event["data"]["lines"][0]["coupon_code"] = "WINTER"
    event["data"]["customer"]["phone"] = "+33 1 23 45 67 89"
    program.at("2026-01-20T09:01:00Z")
    response = await program.send(event)
    assert await program.total_points(p) == 1
    assert response.status_code == 200 and response.json()["status"] == "applied"


async def test_every_accepted_event_is_stored_with_its_status(program: Program) -> None:
    c = Customer.new()
    result = await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-01-20T09:00:00Z")
    events = (await program.client.get("/v1/webhook-events", headers=program.api.admin)).json()["items"]
    assert len(events) == 1
    assert events[0]["status"] == "applied" and events[0]["reason_code"] == "no_match"
    assert json.loads(events[0]["body"]) == result["event"]
    one = await program.client.get(f"/v1/webhook-events/{events[0]['id']}", headers=program.api.admin)
    assert one.json()["webhook_id"] == events[0]["webhook_id"]


async def _parked_for_an_unknown_sku(program: Program) -> tuple[Any, dict[str, Any]]:
    """A partner's order of 2 x `cloud-premium`, a SKU the terms do not have yet: its partner and
    receipt."""
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    parked = await program.order(c, [line("cloud-premium", 2, 100000)], placed_at="2026-01-20T09:00:00Z", expect=202)
    await program.settle()
    return p, parked["receipt"]


async def test_unknown_sku_is_parked_then_replayed_after_adding_it(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, receipt = await _parked_for_an_unknown_sku(program)
    assert receipt["status"] == "parked" and receipt["reason_code"] == "unknown_sku"
    assert "cloud-premium" in receipt["reason"]
    listed = (await program.client.get("/v1/webhook-events?status=parked", headers=program.api.admin)).json()["items"]
    assert [e["id"] for e in listed] == [receipt["event_id"]]
    still = await program.client.post(f"/v1/webhook-events/{receipt['event_id']}/replay", headers=program.api.admin)
    assert still.status_code == 202
    added = await program.client.post(
        "/v1/program/skus", json={"sku": "cloud-premium", "points": 6}, headers=program.api.admin
    )
    assert added.status_code == 201 and added.json()["amended_versions"] == [1]
    applied_together = watch_applied_together(monkeypatch)
    replayed = await program.client.post(f"/v1/webhook-events/{receipt['event_id']}/replay", headers=program.api.admin)
    assert replayed.status_code == 200 and replayed.json()["status"] == "applied"
    assert applied_together == [1]  # the replay took the path every store event takes
    assert await program.total_points(p) == 12
    again = await program.client.post(f"/v1/webhook-events/{receipt['event_id']}/replay", headers=program.api.admin)
    assert again.status_code == 409 and again.json()["code"] == "event_not_parked"


async def test_a_replay_whose_rules_raise_parks_the_event_with_the_error(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, receipt = await _parked_for_an_unknown_sku(program)
    event_id = receipt["event_id"]
    added = await program.client.post(
        "/v1/program/skus", json={"sku": "cloud-premium", "points": 6}, headers=program.api.admin
    )
    assert added.status_code == 201

    async def failing(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(orders, "apply_order", failing)
    replayed = await program.client.post(f"/v1/webhook-events/{event_id}/replay", headers=program.api.admin)
    assert replayed.status_code == 202
    body = replayed.json()
    assert (body["status"], body["reason_code"], body["reason"]) == ("parked", "apply_failed", "RuntimeError: boom")
    assert await program.total_points(p) == 0
    monkeypatch.undo()
    again = await program.client.post(f"/v1/webhook-events/{event_id}/replay", headers=program.api.admin)
    assert again.status_code == 200 and again.json()["status"] == "applied"
    assert await program.total_points(p) == 12


async def test_refund_before_its_order_is_parked_and_applies_when_the_order_arrives(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    event = order_event(c, [line("desktop", 2, 96000, line_id="d")], placed_at=t("2026-01-20T09:00:00Z"))
    order_id = event["data"]["order_id"]
    parked = await program.refund(order_id, [("d", 96000)], at="2026-01-25T09:00:00Z", expect=202)
    await program.settle()  # parked before its order arrives (delivered together, the order settles it at once)
    assert parked.json()["reason_code"] == "order_not_received"
    program.at("2026-01-25T09:05:00Z")
    ordered = await program.send(event)
    assert await program.total_points(p) == 0 and await program.total_money(p) == 0
    assert ordered.status_code == 200
    assert len(await program.points(p)) == 2  # credited, then reversed
    events = (await program.client.get("/v1/webhook-events", headers=program.api.admin)).json()["items"]
    assert {e["status"] for e in events} == {"applied"}


async def test_future_orders_unknown_partners_and_unknown_types_are_parked(program: Program) -> None:
    program.at("2026-01-20T09:00:00Z")
    future = await program.send(
        order_event(Customer.new(), [line("desktop", 1, 1)], placed_at=t("2026-01-20T09:06:00Z"))
    )
    stranger = await program.send(
        order_event(
            Customer.new(),
            [line("desktop", 1, 1)],
            placed_at=t("2026-01-20T08:00:00Z"),
            buyer="00000000-0000-4000-8000-000000000000",
        )
    )
    novel = await program.send({"type": "customer.merged", "data": {"a": 1}})
    unknown_licence = await program.lapse("lic-nobody", at="2026-01-20T08:00:00Z", expect=202)
    await program.settle()
    assert future.status_code == 202 and future.json()["reason_code"] == "placed_in_future"
    assert stranger.status_code == 202 and stranger.json()["reason_code"] == "unknown_partner"
    assert novel.status_code == 202 and novel.json()["reason_code"] == "unknown_event_type"
    assert unknown_licence.json()["reason_code"] == "unknown_licence"
    # Once the clock has passed placed_at, the replay applies it.
    program.at("2026-01-20T09:10:00Z")
    replay = await program.client.post(
        f"/v1/webhook-events/{future.json()['event_id']}/replay", headers=program.api.admin
    )
    assert replay.status_code == 200, replay.text


async def test_duplicate_refund_and_conflicting_refund(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    order = await program.order(c, [line("desktop", 4, 4000, line_id="d")], placed_at="2026-01-20T09:00:00Z")
    order_id = order["event"]["data"]["order_id"]
    event = refund_event(order_id, [("d", 1000)], at=t("2026-01-21T09:00:00Z"), refund_id="ref-dup")
    program.at("2026-01-21T09:01:00Z")
    first, again = await program.send(event), await program.send(event)
    changed = refund_event(order_id, [("d", 2000)], at=t("2026-01-21T09:00:00Z"), refund_id="ref-dup")
    conflict = await program.send(changed)
    await program.settle()
    assert first.json()["status"] == "applied" and again.json()["status"] == "duplicate"
    assert conflict.status_code == 202 and conflict.json()["reason_code"] == "refund_content_conflict"
    assert await program.total_points(p) == 3


async def test_webhook_schema_is_published_with_examples(program: Program) -> None:
    document = (await program.client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/webhooks/store"]["post"]
    content = operation["requestBody"]["content"]["application/json"]
    assert set(content["examples"]) == {"order.paid", "order.refunded", "licence.lapsed"}
    assert "StoreEvent" in document["components"]["schemas"]
    assert {"200", "202", "401", "422"} <= set(operation["responses"])
    assert iso(t("2026-01-01T00:00:00Z")) == "2026-01-01T00:00:00Z"


async def test_refund_before_order_and_order_then_refund_end_in_the_same_state(program: Program) -> None:
    results = []
    for refund_first in (False, True):
        p = await program.partner("2026-01-05T09:00:00Z")
        c = Customer.new()
        await program.register(p, c, at="2026-01-10T09:00:00Z")
        order = order_event(c, [line("server-business", 3, 300000, line_id="sb")], placed_at=t("2026-01-20T09:00:00Z"))
        refund = refund_event(order["data"]["order_id"], [("sb", 100000)], at=t("2026-01-21T09:00:00Z"))
        program.at("2026-01-21T09:01:00Z")
        if refund_first:
            parked = await program.send(refund)
            await program.settle()  # parked before its order arrives
            assert parked.json()["reason_code"] == "order_not_received"
            await program.send(order, expect=200)
        else:
            await program.send(order, expect=200)
            refunded = await program.send(refund)
            await program.settle()
            assert refunded.json()["status"] == "applied"
        points = sorted((e["rule"], e["points"], e["effective_at"]) for e in await program.points(p))
        money = sorted((e["rule"], e["amount"], e["effective_at"]) for e in await program.money(p))
        results.append((points, money))
    assert results[0] == results[1]
    assert results[0][0] == [("R09", 12, "2026-01-20T09:00:00Z"), ("R14", -4, "2026-01-21T09:00:00Z")]


async def test_an_event_signed_by_the_reference_library_is_accepted(program: Program) -> None:
    """The store signs with `standardwebhooks`: `whsec_` + base64, decoded by the library."""
    from standardwebhooks import Webhook

    program.at("2026-02-01T10:01:00Z")
    body = json.dumps(order_event(Customer.new(), [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z")))
    moment = program.api.clock.now()
    headers = {
        "webhook-id": "lib-1",
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(WEBHOOK_SECRET).sign("lib-1", moment, body),
        "content-type": "application/json",
    }
    response = await program.client.post("/v1/webhooks/store", content=body.encode(), headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"


async def test_what_the_library_refuses_to_read_is_401_never_500(program: Program) -> None:
    program.at("2026-02-01T10:01:00Z")
    now = int(program.api.clock.now().timestamp())
    body = b'{"type": "order.paid"}'
    good = _headers(WEBHOOK_SECRET, "m1", now, body)
    cases = {
        "no comma": ({**good, "webhook-signature": "v1"}, body),
        "three parts": ({**good, "webhook-signature": "v1,a,b"}, body),
        "not base64": ({**good, "webhook-signature": "v1,%%%="}, body),
        "not UTF-8": (good, b"\xff\xfe" + body),
    }
    for name, (headers, content) in cases.items():
        response = await program.client.post("/v1/webhooks/store", content=content, headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert response.json()["code"] == "webhook_signature_invalid", name
    assert await _count(program.api, "webhook_events") == 0
    assert await _count(program.api, "rejected_webhook_events") == 0


def test_a_whsec_secret_that_is_not_base64_is_refused_naming_the_setting() -> None:
    from pydantic import SecretStr

    from app.settings import Settings

    with pytest.raises(ValueError, match="PARTNERS_WEBHOOK_SECRETS holds a secret that is not valid base64"):
        Settings(webhook_secrets=[SecretStr("whsec_test_0123456789abcdefghijklmnop")])


def test_a_secret_that_is_not_whsec_is_refused_with_the_fix_and_never_echoed() -> None:
    """A plain string is read as its UTF-8 bytes by some senders and as base64 by the reference
    library: only `whsec_<base64>` is accepted, and the refusal says how to write the same bytes so."""
    from pydantic import SecretStr, ValidationError

    from app.settings import Settings, refusal

    plain = "a-plain-store-secret-4417"
    with pytest.raises(ValidationError) as refused:
        Settings(webhook_secrets=[SecretStr(plain)])
    message = refusal(refused.value)
    assert message.startswith("PARTNERS_WEBHOOK_SECRETS: holds a secret that is not of the form whsec_<base64>")
    assert "base64.b64encode" in message and "getpass" in message
    assert plain not in message and plain[:-1] not in message and plain[1:] not in message
    # The fix gives the secret the reference library signs with, byte for byte.
    fixed = "whsec_" + base64.b64encode(plain.encode()).decode()
    body = b'{"type": "licence.lapsed"}'
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    assert webhooks.sign(fixed, "msg_1", str(int(moment.timestamp())), body) == Webhook(fixed).sign(
        "msg_1", moment, body.decode()
    )
    assert Settings(webhook_secrets=[SecretStr(fixed)]).webhook_secrets[0].get_secret_value() == fixed
