"""A suspended or terminated partner's key still reads, but every write it makes is refused as key
creation refuses it: 403 `partner_suspended` or `partner_terminated`, before anything is looked at.
Revoking one of its own keys stays possible (it only narrows access)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.main import create_app
from tests.conftest import Api, make_settings
from tests.program import Customer, Program
from tests.receiver import serve

# Every write route a partner's own key may call (the first test checks the list against the app).
WRITES: list[tuple[str, str, Any]] = [
    ("PATCH", "/v1/partners/{p}", {"contact_name": "Someone Else"}),
    ("POST", "/v1/partners/{p}/agreement-acceptances", {"version": "2026-01"}),
    ("POST", "/v1/partners/{p}/api-keys", {"name": "another"}),
    ("POST", "/v1/partners/{p}/api-keys/{key}/rotate", None),
    ("POST", "/v1/partners/{p}/registrations", "customer"),
    ("POST", "/v1/partners/{p}/registrations/{registration}/withdraw", None),
    ("PATCH", "/v1/partners/{p}/directory-profile", {"description": "Now selling while suspended"}),
    ("POST", "/v1/partners/{p}/nfr-licences", {"sku": "desktop", "purpose": "demonstration", "acknowledged": True}),
    ("POST", "/v1/partners/{p}/lead-offers/{offer}/accept", None),
    ("POST", "/v1/partners/{p}/lead-offers/{offer}/decline", {"reason": "busy"}),
    ("POST", "/v1/partners/{p}/webhook-subscriptions", {"url": "{url}", "event_types": ["registration.created"]}),
    ("PATCH", "/v1/partners/{p}/webhook-subscriptions/{subscription}", {"enabled": True}),
    ("DELETE", "/v1/partners/{p}/webhook-subscriptions/{subscription}", None),
    ("POST", "/v1/partners/{p}/webhook-subscriptions/{subscription}/rotate-secret", None),
    ("POST", "/v1/partners/{p}/webhook-subscriptions/{subscription}/deliveries/{delivery}/retry", None),
    ("POST", "/v1/partners/{p}/webhook-subscriptions/{subscription}/test", None),
    (
        "PUT",
        "/v1/partners/{p}/payee-details",
        {
            "legal_name": "Partner GmbH",
            "address_line1": "Hohe Straße 1",
            "postal_code": "50667",
            "city": "Köln",
            "country": "DE",
            "iban": "DE89370400440532013000",
            "bic": "COBADEFFXXX",
            "vat_registered": False,
        },
    ),
    ("POST", "/v1/partners/{p}/self-billing-acceptances", {"version": "2026-01"}),
]
READS = [
    "/v1/partners/{p}",
    "/v1/partners/{p}/api-keys",
    "/v1/partners/{p}/registrations",
    "/v1/partners/{p}/webhook-subscriptions",
    "/v1/partners/{p}/webhook-subscriptions/{subscription}/deliveries",
    "/v1/partners/{p}/lead-offers",
    "/v1/partners/{p}/nfr-licences",
    "/v1/partners/{p}/self-billing-acceptances",
]
REVOKE = ("DELETE", "/v1/partners/{p}/api-keys/{key}")


def _partner_routes(routes: Any) -> Iterator[tuple[str, str, bool]]:
    """(method, path, whether the partner's standing is checked) of each route a partner key may write."""
    for route in routes:
        if hasattr(route, "original_router"):  # an included router
            yield from _partner_routes(route.original_router.routes)
        elif isinstance(route, APIRoute):
            for dependency in _dependencies(route.dependant):
                if getattr(dependency, "__qualname__", "").startswith("_partner_access."):
                    standing = dict(zip(dependency.__code__.co_freevars, dependency.__closure__ or (), strict=True))
                    for method in route.methods - {"GET", "HEAD"}:
                        yield method, route.path, standing["standing"].cell_contents


def _dependencies(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _dependencies(sub)


def test_the_list_holds_every_partner_write_and_only_revoking_skips_the_check() -> None:
    app = create_app(make_settings("sqlite+aiosqlite:///never-opened.db"))
    found = {(m, re.sub(r"\{\w+\}", "{}", path), checked) for m, path, checked in _partner_routes(app.routes)}
    listed = {(m, re.sub(r"\{\w+\}", "{}", path), True) for m, path, _ in WRITES}
    assert found == listed | {(REVOKE[0], re.sub(r"\{\w+\}", "{}", REVOKE[1]), False)}


async def _partner_with_something_of_each(api: Api, url: str) -> tuple[dict[str, str], str]:
    """A partner holding a key, a registration, a lead offer, a subscription and a delivery."""
    program = Program(api)
    pid, key = await program.partner("2026-02-02T09:00:00Z")
    mine = api.bearer(key)
    keys = (await api.client.get(f"/v1/partners/{pid}/api-keys", headers=mine)).json()["items"]
    registered = await program.register((pid, key), Customer.new("Fabrikam"))
    assert registered.status_code == 201, registered.text
    lead = await api.client.post(
        "/v1/leads",
        json={
            "company": "Prospect 41 SARL",
            "country": "DE",
            "contact_name": "P",
            "contact_email": "p@prospect41.example",
            "products": ["desktop"],
        },
        headers=api.admin,
    )
    assert lead.status_code == 201, lead.text
    offer = await api.client.post(f"/v1/leads/{lead.json()['id']}/assign", json={"partner_id": pid}, headers=api.admin)
    assert offer.status_code in (200, 201), offer.text
    subscription = await api.client.post(
        f"/v1/partners/{pid}/webhook-subscriptions",
        json={"url": url, "event_types": ["registration.created"]},
        headers=mine,
    )
    assert subscription.status_code == 201, subscription.text
    sid = subscription.json()["id"]
    ping = await api.client.post(f"/v1/partners/{pid}/webhook-subscriptions/{sid}/test", headers=mine)
    assert ping.status_code == 202, ping.text
    ids = {
        "p": pid,
        "key": keys[0]["id"],
        "registration": registered.json()["id"],
        "offer": offer.json()["id"],
        "subscription": sid,
        "delivery": ping.json()["id"],
        "url": url,
    }
    return ids, key


def _request(method: str, path: str, body: Any, ids: dict[str, str]) -> tuple[str, str, Any]:
    if body == "customer":
        body = Customer.new("Northwind").registration()
    elif isinstance(body, dict):
        body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    return method, path.format(**ids), body


@pytest.mark.parametrize(("action", "code"), [("suspend", "partner_suspended"), ("terminate", "partner_terminated")])
async def test_a_suspended_or_terminated_partner_writes_nothing_but_still_reads(
    api: Api, action: str, code: str
) -> None:
    async with serve(api.clock) as receiver:
        ids, key = await _partner_with_something_of_each(api, receiver.url)
        mine = api.bearer(key)
        status = f"/v1/partners/{ids['p']}/{action}"
        changed = await api.client.post(status, json={"reason": "audit"}, headers=api.admin)
        assert changed.status_code == 200, changed.text
        for method, path, body in (_request(*write, ids) for write in WRITES):
            response = await api.client.request(method, path, json=body, headers=mine)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["code"] == code, (method, path)
        for path in READS:
            read = await api.client.get(path.format(**ids), headers=mine)
            assert read.status_code == 200, (path, read.text)
        # The refused writes changed nothing; an admin's writes still go through.
        subscription = f"/v1/partners/{ids['p']}/webhook-subscriptions/{ids['subscription']}"
        assert (await api.client.get(subscription, headers=mine)).status_code == 200
        assert len((await api.client.get(f"/v1/partners/{ids['p']}/api-keys", headers=mine)).json()["items"]) == 1
        edited = await api.client.patch(subscription, json={"description": "kept by ops"}, headers=api.admin)
        assert edited.status_code == 200, edited.text
        # Its own key can still be revoked, which only narrows access.
        revoked = await api.client.delete(REVOKE[1].format(**ids), headers=mine)
        assert revoked.status_code == 200, revoked.text
        assert (await api.client.get(f"/v1/partners/{ids['p']}", headers=mine)).status_code == 401


async def test_a_reinstated_partner_writes_again(api: Api) -> None:
    async with serve(api.clock) as receiver:
        ids, key = await _partner_with_something_of_each(api, receiver.url)
        mine = api.bearer(key)
        await api.client.post(f"/v1/partners/{ids['p']}/suspend", json={"reason": "audit"}, headers=api.admin)
        body = {"url": receiver.url, "event_types": ["partner.level_changed"]}
        refused = await api.client.post(f"/v1/partners/{ids['p']}/webhook-subscriptions", json=body, headers=mine)
        assert refused.status_code == 403 and refused.json()["code"] == "partner_suspended"
        await api.client.post(f"/v1/partners/{ids['p']}/reinstate", json={"reason": "cleared"}, headers=api.admin)
        made = await api.client.post(f"/v1/partners/{ids['p']}/webhook-subscriptions", json=body, headers=mine)
        assert made.status_code == 201, made.text


async def test_a_terminated_partner_is_refused_with_the_status_its_problem_page_gives(api: Api) -> None:
    """`partner_terminated` is 403 wherever it is answered: to its own key and to an admin editing a
    closed profile alike, as its problem page says."""
    partner, key = await api.register()
    terminated = await api.client.post(
        f"/v1/partners/{partner['id']}/terminate", json={"reason": "left the program"}, headers=api.admin
    )
    assert terminated.status_code == 200, terminated.text
    answers = [
        await api.client.patch(f"/v1/partners/{partner['id']}", json={"contact_name": "X"}, headers=api.admin),
        await api.client.patch(
            f"/v1/partners/{partner['id']}/directory-profile", json={"description": "x"}, headers=api.admin
        ),
        await api.client.patch(f"/v1/partners/{partner['id']}", json={"contact_name": "X"}, headers=api.bearer(key)),
    ]
    page = await api.client.get("/problems/partner_terminated")
    for answer in answers:
        assert (answer.status_code, answer.json()["code"]) == (403, "partner_terminated"), answer.text
    assert "<p>HTTP status 403.</p>" in page.text
