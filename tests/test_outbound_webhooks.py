"""Outbound webhooks: subscriptions, signed deliveries to a real receiver, retries, the delivery log,
secret rotation, partner isolation, target safety and disabling after 5 days of failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from app.domain import events, outbound, subscriptions
from app.worker import Worker, drain
from tests.conftest import SECRETS_KEY, Api
from tests.program import Customer, Program
from tests.receiver import Receiver, serve
from tests.test_metrics import _scrape, _value

DELIVERIES = "partners_deliveries_total"


@pytest.fixture
async def receiver(api: Api) -> AsyncIterator[Receiver]:
    async with serve(api.clock) as running:
        yield running


async def _subscribe(api: Api, receiver: Receiver, types: list[str], **extra: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/v1/webhook-subscriptions", json={"url": receiver.url, "event_types": types, **extra}, headers=api.admin
    )
    assert response.status_code == 201, response.text
    body = dict(response.json())
    receiver.secrets.append(body["secret"])
    return body


async def _log(api: Api, subscription_id: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = await api.client.get(
        f"/v1/webhook-subscriptions/{subscription_id}/deliveries", headers=headers or api.admin
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_a_subscription_shows_its_secret_once_and_stores_it_encrypted(api: Api, receiver: Receiver) -> None:
    created = await _subscribe(api, receiver, ["partner.registered", "partner.approved"], description="CRM")
    assert created["secret"].startswith("whsec_")
    assert created["owner"] == "admin" and created["enabled"] is True and created["partner_id"] is None
    assert created["event_types"] == ["partner.registered", "partner.approved"]
    sid = created["id"]
    read = await api.client.get(f"/v1/webhook-subscriptions/{sid}", headers=api.admin)
    assert read.status_code == 200 and "secret" not in read.json()
    listed = await api.client.get("/v1/webhook-subscriptions", headers=api.admin)
    assert [s["id"] for s in listed.json()["items"]] == [sid] and listed.json()["has_more"] is False
    assert api.connection is not None
    stored = (await api.connection.execute(text("SELECT secret FROM webhook_subscriptions"))).scalar_one()
    assert created["secret"] not in stored
    assert Fernet(SECRETS_KEY.encode()).decrypt(stored.encode()).decode() == created["secret"]
    patched = await api.client.patch(
        f"/v1/webhook-subscriptions/{sid}", json={"event_types": ["lead.offered"], "enabled": False}, headers=api.admin
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["event_types"] == ["lead.offered"] and patched.json()["enabled"] is False
    assert "secret" not in patched.json()
    unchanged = await api.client.patch(
        f"/v1/webhook-subscriptions/{sid}", json={"url": None, "event_types": None}, headers=api.admin
    )
    assert unchanged.status_code == 200 and unchanged.json()["url"] == receiver.url
    assert unchanged.json()["event_types"] == ["lead.offered"]
    deleted = await api.client.delete(f"/v1/webhook-subscriptions/{sid}", headers=api.admin)
    assert deleted.status_code == 204
    gone = await api.client.get(f"/v1/webhook-subscriptions/{sid}", headers=api.admin)
    assert gone.status_code == 404 and gone.json()["code"] == "webhook_subscription_not_found"


async def test_unknown_event_types_are_422_for_admins_too(api: Api) -> None:
    response = await api.client.post(
        "/v1/webhook-subscriptions",
        json={"url": "http://127.0.0.1:9/x", "event_types": ["partner.registered", "partner.exploded"]},
        headers=api.admin,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_event_type"


async def test_delivered_on_the_third_attempt_after_two_500s_the_log_shows_three(api: Api, receiver: Receiver) -> None:
    subscription = await _subscribe(api, receiver, ["partner.registered"])
    receiver.answers = [500, 500]
    before = await _scrape(api.client)
    partner, _ = await api.register()
    await api.drain()
    assert len(receiver.received) == 1
    # The metrics: one attempt to retry, and the delivery waiting in the backlog.
    waiting = await _scrape(api.client)
    assert _value(waiting, "partners_outbound_backlog") == 1
    assert _value(waiting, DELIVERIES, outcome="retrying") - _value(before, DELIVERIES, outcome="retrying") == 1
    api.clock.advance(seconds=5)
    await api.drain()
    assert len(receiver.received) == 2
    api.clock.advance(minutes=5)
    await api.drain()
    assert len(receiver.received) == 3
    api.clock.advance(hours=24)
    await api.drain()
    assert len(receiver.received) == 3  # delivered: never sent again
    settled = await _scrape(api.client)
    assert _value(settled, "partners_outbound_backlog") == 0
    assert _value(settled, DELIVERIES, outcome="retrying") - _value(before, DELIVERIES, outcome="retrying") == 2
    assert _value(settled, DELIVERIES, outcome="delivered") - _value(before, DELIVERIES, outcome="delivered") == 1
    assert all(r.verified_with == [subscription["secret"]] for r in receiver.received)
    assert len({r.webhook_id for r in receiver.received}) == 1
    first = receiver.received[0]
    assert set(first.json) == {"type", "timestamp", "data"}
    assert first.json["type"] == "partner.registered"
    assert first.json["data"]["partner_id"] == partner["id"]
    assert first.json["data"]["company"] == partner["company"]
    (delivery,) = await _log(api, subscription["id"])
    assert delivery["status"] == "delivered" and delivery["attempt_count"] == 3
    assert delivery["webhook_id"] == first.webhook_id == str(delivery["event_id"])
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert [a["error"] for a in delivery["attempts"]] == ["answered 500", "answered 500", None]
    assert [a["response_body"] for a in delivery["attempts"]] == [json.dumps({"seen": first.webhook_id})] * 3
    assert all(a["latency_ms"] >= 0 for a in delivery["attempts"])
    assert delivery["next_attempt_at"] is None


async def test_retries_follow_the_schedule_then_the_delivery_fails(api: Api, receiver: Receiver) -> None:
    subscription = await _subscribe(api, receiver, ["partner.registered"])
    receiver.answers = [503] * 20
    await api.register()
    await api.drain()
    for wait in subscriptions.RETRY_AFTER:
        (delivery,) = await _log(api, subscription["id"])
        assert delivery["status"] == "pending"
        due = api.clock.now() + wait
        assert delivery["next_attempt_at"] == due.isoformat().replace("+00:00", "Z")
        api.clock.advance(seconds=wait.total_seconds() - 1)
        sent = len(receiver.received)
        await api.drain()
        assert len(receiver.received) == sent  # not due yet
        api.clock.advance(seconds=1)
        await api.drain()
        assert len(receiver.received) == sent + 1
    (delivery,) = await _log(api, subscription["id"])
    assert delivery["status"] == "failed" and delivery["attempt_count"] == 8
    assert _value(await _scrape(api.client), DELIVERIES, outcome="failed") >= 1
    assert delivery["next_attempt_at"] is None
    api.clock.advance(days=2)
    await api.drain()
    assert len(receiver.received) == 8
    retried = await api.client.post(
        f"/v1/webhook-subscriptions/{subscription['id']}/deliveries/{delivery['id']}/retry", headers=api.admin
    )
    assert retried.status_code == 202, retried.text
    receiver.answers = []
    await api.drain()
    (delivery,) = await _log(api, subscription["id"])
    assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 9
    assert len({r.webhook_id for r in receiver.received}) == 1


async def test_a_worker_killed_mid_delivery_leaves_it_to_another_with_the_same_webhook_id(
    api: Api, receiver: Receiver
) -> None:
    subscription = await _subscribe(api, receiver, ["partner.registered"])
    await api.register()
    first = Worker(api.app.state.session_factory, api.clock, api.app.state.settings, name="first")
    receiver.hold = asyncio.Event()
    held = receiver.hold
    doomed = asyncio.create_task(drain(first))
    await receiver.arrived.wait()  # the call is in flight: the claim is committed, no transaction open
    doomed.cancel()  # the worker dies mid-call: nothing of it is recorded
    with pytest.raises(asyncio.CancelledError):
        await doomed
    held.set()
    (claimed,) = await _log(api, subscription["id"])
    assert claimed["status"] == "sending" and claimed["attempts"] == []
    second = Worker(api.app.state.session_factory, api.clock, api.app.state.settings, name="second")
    await drain(second)
    assert len(receiver.received) == 1  # its claim holds until it expires
    api.clock.advance(seconds=subscriptions.CLAIM_FOR.total_seconds() + 1)
    await drain(second)
    await second.close()
    assert len(receiver.received) == 2
    assert receiver.received[0].webhook_id == receiver.received[1].webhook_id
    assert all(r.verified_with for r in receiver.received)
    (delivery,) = await _log(api, subscription["id"])
    assert delivery["status"] == "delivered" and [a["status_code"] for a in delivery["attempts"]] == [200]


async def test_partner_a_subscription_never_receives_partner_b_events(api: Api, receiver: Receiver) -> None:
    program = Program(api)
    a, a_key = await api.register()
    b, b_key = await api.register()
    types = ["registration.created", "partner.suspended", "partner.level_changed", "terms.took_effect"]
    refused = await api.client.post(
        f"/v1/partners/{a['id']}/webhook-subscriptions",
        json={"url": receiver.url, "event_types": [*types, "store_event.parked"]},
        headers=api.bearer(a_key),
    )
    assert refused.status_code == 422 and refused.json()["code"] == "event_type_not_for_partners"
    made = await api.client.post(
        f"/v1/partners/{a['id']}/webhook-subscriptions",
        json={"url": receiver.url, "event_types": types},
        headers=api.bearer(a_key),
    )
    assert made.status_code == 201, made.text
    subscription = made.json()
    assert subscription["owner"] == "partner" and subscription["partner_id"] == a["id"]
    receiver.secrets.append(subscription["secret"])
    for pid, key in ((b["id"], b_key), (a["id"], a_key), (b["id"], b_key)):
        registered = await program.register((pid, key), Customer.new())
        assert registered.status_code == 201, registered.text
    for pid in (b["id"], a["id"]):
        suspended = await api.client.post(
            f"/v1/partners/{pid}/suspend", json={"reason": "unpaid invoices"}, headers=api.admin
        )
        assert suspended.status_code == 200, suspended.text
    await api.drain()  # the first run of the terms job also says which terms are in force: program-wide
    expected = ["partner.suspended", "registration.created", "terms.took_effect"]
    assert sorted(r.json["type"] for r in receiver.received) == expected
    assert {r.json["data"]["partner_id"] for r in receiver.received if "partner_id" in r.json["data"]} == {a["id"]}
    assert all(r.verified_with for r in receiver.received)
    own = f"/v1/partners/{a['id']}/webhook-subscriptions"
    assert (await api.client.get(own, headers=api.bearer(b_key))).status_code == 404
    sid = subscription["id"]
    others = await api.client.get(f"/v1/partners/{b['id']}/webhook-subscriptions/{sid}", headers=api.bearer(b_key))
    assert others.status_code == 404
    listed = await api.client.get(own, headers=api.bearer(a_key))
    assert [s["id"] for s in listed.json()["items"]] == [sid]
    log = await api.client.get(f"{own}/{sid}/deliveries", headers=api.bearer(a_key))
    assert sorted(d["event_type"] for d in log.json()["items"]) == expected
    widen = {"event_types": ["order.flagged"]}
    refused = await api.client.patch(f"{own}/{sid}", json=widen, headers=api.bearer(a_key))
    assert refused.status_code == 403 and refused.json()["code"] == "partner_suspended"  # writes nothing
    await api.client.post(f"/v1/partners/{a['id']}/reinstate", json={"reason": "paid"}, headers=api.admin)
    widened = await api.client.patch(f"{own}/{sid}", json=widen, headers=api.bearer(a_key))
    assert widened.status_code == 422 and widened.json()["code"] == "event_type_not_for_partners"


async def test_a_rolled_back_change_delivers_nothing(api: Api, receiver: Receiver) -> None:
    await _subscribe(api, receiver, ["partner.registered"])
    factory = api.app.state.session_factory
    async with factory() as session, session.begin():
        ghost = events.PartnerRegistered(
            partner_id="6f1c2a9e-3b7d-4c1e-9a55-1d2e3f4a5b6c", company="Ghost Ltd", country="FR", status="pending"
        )
        events.record(
            session, "partner.registered", ghost, occurred_at=api.clock.now(), partner_id=None, subject="partner:ghost"
        )
        await session.flush()
        await session.rollback()
    partner, _ = await api.register()
    await api.drain()
    assert [r.json["data"]["company"] for r in receiver.received] == [partner["company"]]


async def test_ping_and_replay_of_a_delivered_delivery(api: Api, receiver: Receiver) -> None:
    subscription = await _subscribe(api, receiver, ["partner.registered"])
    sid = subscription["id"]
    ping = await api.client.post(f"/v1/webhook-subscriptions/{sid}/test", headers=api.admin)
    assert ping.status_code == 202, ping.text
    assert ping.json()["event_type"] == "ping" and ping.json()["status"] == "pending"
    await api.drain()
    (received,) = receiver.received
    assert received.json["type"] == "ping" and received.json["data"] == {"subscription_id": sid}
    assert received.webhook_id == ping.json()["webhook_id"]
    replay = await api.client.post(
        f"/v1/webhook-subscriptions/{sid}/deliveries/{ping.json()['id']}/retry", headers=api.admin
    )
    assert replay.status_code == 202
    await api.drain()
    assert [r.webhook_id for r in receiver.received] == [received.webhook_id] * 2
    (delivery,) = await _log(api, sid)
    assert delivery["status"] == "delivered" and [a["status_code"] for a in delivery["attempts"]] == [200, 200]


async def test_a_rotated_secret_signs_beside_the_old_one_for_24_hours(api: Api, receiver: Receiver) -> None:
    subscription = await _subscribe(api, receiver, ["partner.registered"])
    old = subscription["secret"]
    rotated = await api.client.post(f"/v1/webhook-subscriptions/{subscription['id']}/rotate-secret", headers=api.admin)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    receiver.secrets = [new, old]
    await api.register()
    await api.drain()
    (during,) = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert during.verified_with == [new, old]
    api.clock.advance(hours=24)
    await api.register()
    await api.drain()
    after = receiver.received[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert after.verified_with == [new]


async def test_a_subscription_failing_for_5_days_is_disabled_with_an_event(api: Api, receiver: Receiver) -> None:
    subscription = await _subscribe(api, receiver, ["partner.registered"])
    receiver.answers = [500] * 100
    await api.register()
    await api.drain()
    api.clock.advance(days=4, hours=23)
    await api.register()
    await api.drain()
    read = await api.client.get(f"/v1/webhook-subscriptions/{subscription['id']}", headers=api.admin)
    assert read.json()["enabled"] is True
    api.clock.advance(hours=1)
    await api.register()
    await api.drain()
    read = await api.client.get(f"/v1/webhook-subscriptions/{subscription['id']}", headers=api.admin)
    assert read.json()["enabled"] is False
    assert read.json()["disabled_reason"] == "every delivery failed for 5 days; last: answered 500"
    disabled = await api.client.get("/v1/events", params={"type": "webhook_subscription.disabled"}, headers=api.admin)
    (event,) = disabled.json()["items"]
    assert event["payload"]["subscription_id"] == subscription["id"]
    assert event["payload"]["reason"] == "every delivery failed for 5 days; last: answered 500"
    sent = len(receiver.received)
    api.clock.advance(days=1)
    await api.drain()
    assert len(receiver.received) == sent  # nothing goes to a disabled subscription


# --- safety ---------------------------------------------------------------------------------------

PRODUCTION = {"environment": "production"}


@pytest.mark.parametrize("settings_overrides", [PRODUCTION], ids=["production"])
async def test_production_refuses_local_and_private_targets_not_by_the_https_rule_alone(api: Api) -> None:
    assert api.app.state.settings.allow_private_targets is False
    cases = {
        "https://localhost/hooks": "webhook_target_not_global",
        "https://127.0.0.1/hooks": "webhook_target_not_global",
        "https://10.1.2.3/hooks": "webhook_target_not_global",
        "https://192.168.0.10:8443/hooks": "webhook_target_not_global",
        "https://[::1]/hooks": "webhook_target_not_global",
        "https://[::ffff:127.0.0.1]/hooks": "webhook_target_not_global",
        "http://crm.example.com/hooks": "webhook_target_not_https",
    }
    for url, code in cases.items():
        response = await api.client.post(
            "/v1/webhook-subscriptions", json={"url": url, "event_types": ["partner.registered"]}, headers=api.admin
        )
        assert response.status_code == 422, url
        assert response.json()["code"] == code, url


@pytest.mark.parametrize("settings_overrides", [PRODUCTION], ids=["production"])
async def test_production_checks_the_address_connected_to_at_each_attempt(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves to a private address when the call is made (DNS rebinding) is refused
    before any connection; the attempt says why."""
    answers: dict[str, list[str]] = {"hooks.example.com": ["93.184.215.14"]}

    async def playing_dns(host: str, port: int) -> list[str]:
        return answers[host]

    monkeypatch.setattr(outbound, "resolve", playing_dns)
    made = await api.client.post(
        "/v1/webhook-subscriptions",
        json={"url": "https://hooks.example.com/in", "event_types": ["partner.registered"]},
        headers=api.admin,
    )
    assert made.status_code == 201, made.text
    answers["hooks.example.com"] = ["93.184.215.14", "10.0.0.7"]
    await api.register()
    await api.drain()
    (delivery,) = await _log(api, made.json()["id"])
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"] == ("refused: hooks.example.com resolves to 10.0.0.7, not a globally routable address.")
    answers["hooks.example.com"] = ["93.184.215.14"]
    pinned = await outbound.target("https://hooks.example.com:8443/in", allow_private=False)
    assert pinned == outbound.Target("https://93.184.215.14:8443/in", "hooks.example.com:8443")


@pytest.mark.parametrize("settings_overrides", [PRODUCTION], ids=["production"])
async def test_production_refuses_ipv4_carried_in_ipv6_multicast_and_site_local_at_creation_and_delivery(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NAT64, 6to4, IPv4-compatible and -mapped addresses reach the IPv4 address they carry: a
    private one is refused as a URL and as a DNS answer, and so are multicast and site-local."""
    carried = [
        "64:ff9b::a9fe:a9fe",  # NAT64 to the cloud metadata address
        "2002:a00:2::1",  # 6to4 of 10.0.0.2
        "::127.0.0.1",  # IPv4-compatible loopback
        "::ffff:192.168.1.1",
        "fec0::2",
        "ff0e::1",
    ]
    for address in [*carried, "224.0.0.1"]:
        url = f"https://[{address}]/hooks" if ":" in address else f"https://{address}/hooks"
        response = await api.client.post(
            "/v1/webhook-subscriptions", json={"url": url, "event_types": ["partner.registered"]}, headers=api.admin
        )
        assert response.status_code == 422, url
        assert response.json()["code"] == "webhook_target_not_global", url

    answers: dict[str, list[str]] = {"hooks.example.net": ["2606:4700:4700::1111"]}

    async def playing_dns(host: str, port: int) -> list[str]:
        return answers[host]

    monkeypatch.setattr(outbound, "resolve", playing_dns)
    made = await api.client.post(
        "/v1/webhook-subscriptions",
        json={"url": "https://hooks.example.net/in", "event_types": ["partner.registered"]},
        headers=api.admin,
    )
    assert made.status_code == 201, made.text
    for address in carried:
        answers["hooks.example.net"] = [address]
        with pytest.raises(outbound.TargetRefused) as refused:
            await outbound.target("https://hooks.example.net/in", allow_private=False)
        assert refused.value.code == "webhook_target_not_global", address
    answers["hooks.example.net"] = ["64:ff9b::a9fe:a9fe"]
    await api.register()
    await api.drain()
    (delivery,) = await _log(api, made.json()["id"])
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"] == (
        "refused: hooks.example.net resolves to 64:ff9b::a9fe:a9fe, not a globally routable address."
    )
    answers["hooks.example.net"] = ["64:ff9b::808:808"]  # NAT64 to a public address
    pinned = await outbound.target("https://hooks.example.net/in", allow_private=False)
    assert pinned == outbound.Target("https://[64:ff9b::808:808]/in", "hooks.example.net")


def test_retry_schedule_is_the_documented_one() -> None:
    assert [int(d.total_seconds()) for d in subscriptions.RETRY_AFTER] == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert timedelta(days=5) == subscriptions.DISABLE_AFTER


async def test_the_servers_own_worker_delivers_without_drain(live_worker_api: Api) -> None:
    """`partners serve` runs a worker in each process: a committed change reaches the receiver by
    itself, over real sockets, from a database that commits."""
    api = live_worker_api
    async with serve(api.clock) as receiver:
        await _subscribe(api, receiver, ["partner.registered"])
        partner, _ = await api.register()
        await asyncio.wait_for(receiver.arrived.wait(), timeout=30)
        (received,) = receiver.received
        assert received.json["data"]["partner_id"] == partner["id"] and received.verified_with


def test_the_fan_out_waits_at_a_gap_in_the_log_for_a_minute_of_wall_time() -> None:
    """An id missing behind newer events may be a transaction still under way: the cursor waits there
    (events after it are fanned out meanwhile), and passes it once it is clearly a rollback."""
    holes = subscriptions.Holes(grace=60.0)
    assert holes.may_pass(41, wall=1000.0) is False
    assert holes.may_pass(41, wall=1059.9) is False
    assert holes.may_pass(41, wall=1060.0) is True
    assert holes.may_pass(57, wall=1060.0) is False  # another gap waits its own minute


async def test_only_admins_use_the_admin_routes(api: Api, receiver: Receiver) -> None:
    subscription = await _subscribe(api, receiver, ["partner.registered"])
    _, key = await api.register()
    for method, path in (
        ("GET", "/v1/webhook-subscriptions"),
        ("GET", f"/v1/webhook-subscriptions/{subscription['id']}"),
        ("POST", f"/v1/webhook-subscriptions/{subscription['id']}/test"),
        ("GET", f"/v1/webhook-subscriptions/{subscription['id']}/deliveries"),
    ):
        response = await api.client.request(method, path, headers=api.bearer(key))
        assert response.status_code == 403, path
        assert response.json()["code"] == "admin_key_required", path
