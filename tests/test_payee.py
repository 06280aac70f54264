"""Payee details: kept by the partner or an admin, the IBAN encrypted at rest and answered masked, a
change of bank details holding payouts; the self-billing agreement's versions and acceptances; whether
a partner is payable now (the rule itself: tests/domain/test_payee_rules.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.domain.sealed import open_sealed
from tests.conftest import Api
from tests.receiver import Receiver, serve

IBAN = "DE89370400440532013000"
OTHER_IBAN = "FR1420041010050500013M02606"
OTHER_BIC = "PSSTFRPP"


def details(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "legal_name": "Partner GmbH",
        "address_line1": "Hohe Straße 1",
        "postal_code": "50667",
        "city": "Köln",
        "country": "DE",
        "iban": "de89 3704 0044 0532 0130 00",
        "bic": "COBADEFFXXX",
        "vat_id": "DE136695976",
        "vat_registered": True,
    }
    body.update(overrides)
    return body


async def _put(api: Api, partner_id: str, headers: dict[str, str], **overrides: Any) -> Any:
    return await api.client.put(f"/v1/partners/{partner_id}/payee-details", json=details(**overrides), headers=headers)


async def _events(api: Api, **query: Any) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/events", params={"limit": 200, **query}, headers=api.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def _publish(api: Api, version: str) -> None:
    published = await api.client.post(
        "/v1/self-billing-agreements", json={"version": version, "title": f"Self-billing {version}"}, headers=api.admin
    )
    assert published.status_code == 201, published.text


# --- through the API, on both databases -----------------------------------------------------------


async def test_a_partner_gives_and_reads_its_payee_details_masked(api: Api) -> None:
    partner, key = await api.register()
    pid, own = partner["id"], api.bearer(key)
    missing = await api.client.get(f"/v1/partners/{pid}/payee-details", headers=own)
    assert missing.status_code == 404 and missing.json()["code"] == "payee_details_not_found"

    created = await _put(api, pid, own)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["iban_masked"] == "DE…3000" and body["bic"] == "COBADEFFXXX"
    assert body["vat_id"] == "DE136695976" and body["country"] == "DE" and body["address_line2"] is None
    assert body["updated_by"] == f"partner:{pid}"
    assert IBAN not in created.text and "0532" not in created.text
    read = await api.client.get(f"/v1/partners/{pid}/payee-details", headers=own)
    assert read.status_code == 200 and read.json() == body
    assert (await api.client.get(f"/v1/partners/{pid}/payee-details", headers=api.admin)).json() == body

    again = await _put(api, pid, own)  # the same details: nothing changes
    assert again.status_code == 200 and again.json() == body
    assert len(await _events(api, type="payee.changed")) == 1


async def test_an_admin_gives_a_partners_payee_details_and_another_partner_is_refused(api: Api) -> None:
    partner, key = await api.register()
    other, other_key = await api.register()
    pid = partner["id"]
    by_admin = await _put(api, pid, api.admin, legal_name="Partner GmbH & Co. KG")
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["updated_by"].startswith("admin:")
    assert (await api.client.get(f"/v1/partners/{pid}/payee-details", headers=api.bearer(key))).status_code == 200
    for response in (
        await api.client.get(f"/v1/partners/{pid}/payee-details", headers=api.bearer(other_key)),
        await _put(api, pid, api.bearer(other_key)),
        await api.client.get(f"/v1/partners/{pid}/self-billing-acceptances", headers=api.bearer(other_key)),
    ):
        assert response.status_code == 404 and response.json()["code"] == "partner_not_found"
    reader = await api.issue_key("admin", ["read"])
    refused = await _put(api, other["id"], api.bearer(reader))
    assert refused.status_code == 403 and refused.json()["code"] == "scope_missing"
    suspended = await api.client.post(f"/v1/partners/{pid}/suspend", json={"reason": "audit"}, headers=api.admin)
    assert suspended.status_code == 200
    frozen = await _put(api, pid, api.bearer(key), city="Bonn")
    assert frozen.status_code == 403 and frozen.json()["code"] == "partner_suspended"


async def test_the_iban_is_stored_encrypted_and_never_in_the_audit_log_or_the_event(api: Api) -> None:
    partner, key = await api.register()
    assert (await _put(api, partner["id"], api.bearer(key))).status_code == 201
    assert api.connection is not None
    iban, bic, masked = (await api.connection.execute(text("SELECT iban, bic, iban_masked FROM payee_details"))).one()
    settings = api.app.state.settings
    assert IBAN not in iban and open_sealed(settings, iban) == IBAN
    assert "COBADEFF" not in bic and open_sealed(settings, bic) == "COBADEFFXXX"
    assert masked == "DE…3000"
    audit = await api.client.get("/v1/audit-events", params={"action": "payee.changed"}, headers=api.admin)
    [row] = audit.json()["items"]
    assert row["after"]["iban_masked"] == "DE…3000" and row["object_id"] == partner["id"]
    [event] = await _events(api, type="payee.changed")
    assert event["partner_id"] == partner["id"] and event["payload"]["bank_details_changed"] is True
    assert "iban" in event["payload"]["changed"]
    for stored in (json.dumps(row), json.dumps(event)):
        assert IBAN not in stored and "0532 0130" not in stored and "05320130" not in stored


async def test_refused_bank_details_are_a_clear_422(api: Api) -> None:
    partner, key = await api.register()
    pid, own = partner["id"], api.bearer(key)
    for overrides, code in (
        ({"iban": "DE89370400440532013001"}, "iban_invalid"),
        ({"bic": "BNPAFRPP"}, "bic_mismatch"),
        ({"bic": "DEUTDEFF"}, "bic_mismatch"),
        ({"bic": "COBAXXFF"}, "bic_invalid"),
        ({"vat_id": None}, "vat_id_required"),
        ({"vat_id": "DE123"}, "vat_id_invalid"),
        ({"country": "XX"}, "validation_failed"),
        ({"iban": "not an iban"}, "validation_failed"),
    ):
        response = await _put(api, pid, own, **overrides)
        assert response.status_code == 422, (overrides, response.text)
        assert response.json()["code"] == code, (overrides, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert await _events(api, type="payee.changed") == []  # nothing refused was recorded
    assert (await _put(api, pid, own, vat_id=None, vat_registered=False)).status_code == 201


async def test_a_change_of_bank_details_holds_payouts_and_a_change_of_address_does_not(api: Api) -> None:
    partner, key = await api.register()
    pid, own = partner["id"], api.bearer(key)
    await _publish(api, "2026-03")
    accepted = await api.client.post(
        f"/v1/partners/{pid}/self-billing-acceptances", json={"version": "2026-03"}, headers=own
    )
    assert accepted.status_code == 201, accepted.text
    first = (await _put(api, pid, own)).json()
    start = api.clock.now()
    assert first["payouts_held_until"] == _iso(start + timedelta(days=7))  # the first bank details too
    assert "held for 7 days" in first["payouts_held_because"]
    assert first["payable"] is False
    assert [r["code"] for r in first["not_payable_because"]] == ["payouts_held"]

    api.clock.advance(days=8)
    settled = (await api.client.get(f"/v1/partners/{pid}/payee-details", headers=own)).json()
    assert settled["payouts_held_until"] is None and settled["payable"] is True

    moved = await _put(api, pid, own, address_line1="Neumarkt 2", postal_code="50667")
    assert moved.status_code == 200 and moved.json()["payouts_held_until"] is None and moved.json()["payable"]
    assert moved.json()["bank_details_changed_at"] == _iso(start)

    changed = await _put(api, pid, own, address_line1="Neumarkt 2", iban=OTHER_IBAN, bic=OTHER_BIC)
    assert changed.status_code == 200, changed.text
    assert changed.json()["payouts_held_until"] == _iso(api.clock.now() + timedelta(days=7))
    assert changed.json()["iban_masked"] == "FR…2606" and changed.json()["payable"] is False
    told = [
        (e["payload"]["changed"], e["payload"]["payouts_held_until"]) for e in await _events(api, type="payee.changed")
    ]
    every_field = ["legal_name", "address_line1", "address_line2", "postal_code", "city", "country", "vat_id"]
    assert told == [
        (["self_billing_agreement"], None),
        ([*every_field, "vat_registered", "iban", "bic"], _iso(start + timedelta(days=7))),
        (["address_line1"], None),
        (["iban", "bic"], _iso(api.clock.now() + timedelta(days=7))),
    ]


@pytest.mark.parametrize("settings_overrides", [{"payout_hold_days": 2}])
async def test_the_hold_lasts_the_configured_days(api: Api, settings_overrides: dict[str, Any]) -> None:
    partner, key = await api.register()
    answer = (await _put(api, partner["id"], api.bearer(key))).json()
    assert answer["payouts_held_until"] == _iso(api.clock.now() + timedelta(days=2))


async def test_a_new_self_billing_version_makes_the_old_acceptance_outdated(api: Api) -> None:
    partner, key = await api.register()
    pid, own = partner["id"], api.bearer(key)
    none = await api.client.get("/v1/self-billing-agreements/current", headers=own)
    assert none.status_code == 404 and none.json()["code"] == "no_self_billing_agreement"
    refused = await api.client.post(
        "/v1/self-billing-agreements", json={"version": "v1", "title": "Self-billing"}, headers=own
    )
    assert refused.status_code == 403
    await _publish(api, "v1")
    duplicate = await api.client.post(
        "/v1/self-billing-agreements", json={"version": "v1", "title": "Again"}, headers=api.admin
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "self_billing_version_exists"
    await _put(api, pid, own)
    api.clock.advance(days=8)

    accepted = await api.client.post(
        f"/v1/partners/{pid}/self-billing-acceptances", json={"version": "v1"}, headers=own
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json() == {"version": "v1", "accepted_at": _iso(api.clock.now()), "accepted_by": f"partner:{pid}"}
    again = await api.client.post(f"/v1/partners/{pid}/self-billing-acceptances", json={"version": "v1"}, headers=own)
    assert again.status_code == 200 and again.json() == accepted.json()
    assert (await api.client.get(f"/v1/partners/{pid}/payee-details", headers=own)).json()["payable"] is True

    api.clock.advance(days=1)
    await _publish(api, "v2")
    read = (await api.client.get(f"/v1/partners/{pid}/payee-details", headers=own)).json()
    assert read["payable"] is False
    assert [r["code"] for r in read["not_payable_because"]] == ["self_billing_outdated"]
    old = await api.client.post(f"/v1/partners/{pid}/self-billing-acceptances", json={"version": "v0"}, headers=own)
    assert old.status_code == 404 and old.json()["code"] == "self_billing_version_not_found"

    # An admin records the partner's acceptance of the new version.
    by_admin = await api.client.post(
        f"/v1/partners/{pid}/self-billing-acceptances", json={"version": "v2"}, headers=api.admin
    )
    assert by_admin.status_code == 201 and by_admin.json()["accepted_by"].startswith("admin:")
    assert (await api.client.get(f"/v1/partners/{pid}/payee-details", headers=own)).json()["payable"] is True
    api.clock.advance(days=1)
    await _publish(api, "v3")
    stale = await api.client.post(f"/v1/partners/{pid}/self-billing-acceptances", json={"version": "v2"}, headers=own)
    assert stale.status_code == 200  # accepted before: answered as it was
    late = await api.client.post(f"/v1/partners/{pid}/self-billing-acceptances", json={"version": "v1"}, headers=own)
    assert late.status_code == 200
    listed = await api.client.get(f"/v1/partners/{pid}/self-billing-acceptances", headers=api.admin)
    assert [a["version"] for a in listed.json()["items"]] == ["v1", "v2"]
    versions = await api.client.get("/v1/self-billing-agreements", headers=own)
    assert [v["version"] for v in versions.json()["items"]] == ["v1", "v2", "v3"]
    current = await api.client.get("/v1/self-billing-agreements/current", headers=api.admin)
    assert current.json()["version"] == "v3"


async def test_only_the_version_in_force_is_accepted(api: Api) -> None:
    partner, key = await api.register()
    await _publish(api, "v1")
    api.clock.advance(seconds=1)
    await _publish(api, "v2")
    refused = await api.client.post(
        f"/v1/partners/{partner['id']}/self-billing-acceptances", json={"version": "v1"}, headers=api.bearer(key)
    )
    assert refused.status_code == 409 and refused.json()["code"] == "self_billing_version_not_current"


async def test_payee_history_and_acceptances_are_append_only(api: Api, backend: str) -> None:
    partner, key = await api.register()
    await _publish(api, "v1")
    await _put(api, partner["id"], api.bearer(key))
    await api.client.post(
        f"/v1/partners/{partner['id']}/self-billing-acceptances", json={"version": "v1"}, headers=api.bearer(key)
    )
    assert api.connection is not None
    for sql in (
        "UPDATE payee_details SET iban_masked = 'XX…0000'",
        "DELETE FROM payee_details",
        "UPDATE self_billing_acceptances SET accepted_at = accepted_at",
        "DELETE FROM self_billing_acceptances",
    ):
        savepoint = await api.connection.begin_nested()
        with pytest.raises(DBAPIError) as refused:
            await api.connection.execute(text(sql))
        await savepoint.rollback()
        assert "append-only" in str(refused.value.orig)


# --- the event, delivered to subscribers ----------------------------------------------------------


@pytest.fixture
async def receiver(api: Api) -> AsyncIterator[Receiver]:
    async with serve(api.clock) as running:
        yield running


async def test_payee_changed_reaches_the_partners_own_subscription_without_the_iban(
    api: Api, receiver: Receiver
) -> None:
    partner, key = await api.register()
    other, other_key = await api.register()
    made = await api.client.post(
        f"/v1/partners/{partner['id']}/webhook-subscriptions",
        json={"url": receiver.url, "event_types": ["payee.changed"]},
        headers=api.bearer(key),
    )
    assert made.status_code == 201, made.text
    receiver.secrets.append(made.json()["secret"])
    await _put(api, other["id"], api.bearer(other_key))
    await _put(api, partner["id"], api.bearer(key))
    await api.drain()
    [delivered] = receiver.received
    assert delivered.verified_with
    assert delivered.json["type"] == "payee.changed"
    data = delivered.json["data"]
    assert data["partner_id"] == partner["id"] and data["bank_details_changed"] is True
    assert data["payouts_held_until"] == _iso(api.clock.now() + timedelta(days=7))
    assert data["by"] == f"partner:{partner['id']}"
    assert IBAN not in json.dumps(delivered.json)
    own = await api.client.get(
        f"/v1/partners/{partner['id']}/events", params={"type": "payee.changed"}, headers=api.bearer(key)
    )
    assert own.status_code == 200 and [e["partner_id"] for e in own.json()["items"]] == [partner["id"]]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
