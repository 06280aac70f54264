"""Partner registration, admin management with reasons, profile, search and the rate limit."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Api


async def test_registration_returns_partner_and_key_once(api: Api) -> None:
    response = await api.client.post("/v1/partners", json=api.registration(country="fr", languages=["FR"]))
    assert response.status_code == 201, response.text
    body = response.json()
    partner = body["partner"]
    assert partner["status"] == "active"  # auto-approve is on by default
    assert partner["country"] == "FR" and partner["languages"] == ["fr"]
    assert response.headers["location"] == f"/v1/partners/{partner['id']}"
    key = body["api_key"]["key"]
    read = await api.client.get(f"/v1/partners/{partner['id']}", headers=api.bearer(key))
    assert read.json() == partner
    keys = await api.client.get(f"/v1/partners/{partner['id']}/api-keys", headers=api.bearer(key))
    assert key not in keys.text


async def test_registration_records_agreement_acceptance_and_status_history(api: Api) -> None:
    partner, key = await api.register()
    acceptances = await api.client.get(f"/v1/partners/{partner['id']}/agreement-acceptances", headers=api.bearer(key))
    assert acceptances.json() == {
        "items": [{"version": "2026-01", "accepted_at": "2026-03-02T09:00:00Z"}],
        "next_cursor": None,
        "has_more": False,
    }
    history = await api.client.get(f"/v1/partners/{partner['id']}/status-history", headers=api.admin)
    assert [(h["from_status"], h["to_status"]) for h in history.json()["items"]] == [(None, "active")]


async def test_registration_must_accept_the_current_agreement(api: Api) -> None:
    response = await api.client.post("/v1/partners", json=api.registration(accepted_agreement_version="1999-01"))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "agreement_version_not_current"
    assert body["current_version"] == "2026-01"
    assert "2026-01" in body["detail"]


async def test_duplicate_contact_email_is_409(api: Api) -> None:
    await api.register(contact_email="sales@acme.example")
    response = await api.client.post("/v1/partners", json=api.registration(contact_email="Sales@ACME.example"))
    assert response.status_code == 409
    assert response.json()["code"] == "partner_already_registered"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("country", "XX"),
        ("country", "FRA"),
        ("languages", ["xx"]),
        ("contact_email", "not-an-email"),
        ("website", "ftp://example.com"),
        ("company", ""),
        ("company", "A" * 201),
        ("company", "Nul\x00Byte"),
    ],
)
async def test_invalid_registration_fields_are_listed(api: Api, field: str, value: Any) -> None:
    response = await api.client.post("/v1/partners", json=api.registration(**{field: value}))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_failed"
    assert any(e["field"].startswith(f"body.{field}") for e in body["errors"]), body
    assert field in body["detail"]


async def test_missing_fields_are_each_listed(api: Api) -> None:
    response = await api.client.post("/v1/partners", json={"company": "Acme"})
    body = response.json()
    assert response.status_code == 422
    missing = {e["field"] for e in body["errors"] if e["type"] == "missing"}
    assert missing == {
        "body.country",
        "body.contact_name",
        "body.contact_email",
        "body.accepted_agreement_version",
    }


async def test_unknown_fields_are_refused(api: Api) -> None:
    response = await api.client.post("/v1/partners", json=api.registration(status="active"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.status"
    assert response.json()["errors"][0]["type"] == "extra_forbidden"


async def test_malformed_json_is_422_problem(api: Api) -> None:
    response = await api.client.post("/v1/partners", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


async def test_admin_approval_when_auto_approve_is_off(api: Api) -> None:
    off = await api.client.patch("/v1/program/settings", json={"auto_approve": False}, headers=api.admin)
    assert off.status_code == 200 and off.json()["auto_approve"] is False
    partner, key = await api.register()
    assert partner["status"] == "pending"
    approved = await api.client.post(
        f"/v1/partners/{partner['id']}/approve",
        json={"reason": "Checked the company register"},
        headers=api.admin,
    )
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    history = (await api.client.get(f"/v1/partners/{partner['id']}/status-history", headers=api.bearer(key))).json()[
        "items"
    ]
    assert [(h["from_status"], h["to_status"], h["reason"]) for h in history] == [
        (None, "pending", "registered"),
        ("pending", "active", "Checked the company register"),
    ]
    assert history[1]["actor"].startswith("admin:")


async def test_suspend_reinstate_terminate_each_with_a_reason(api: Api) -> None:
    partner, _ = await api.register()
    pid = partner["id"]
    steps = [
        ("suspend", "suspended"),
        ("reinstate", "active"),
        ("suspend", "suspended"),
        ("terminate", "terminated"),
    ]
    for action, expected in steps:
        api.clock.advance(days=1)
        response = await api.client.post(
            f"/v1/partners/{pid}/{action}", json={"reason": f"{action} now"}, headers=api.admin
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == expected
    history = (await api.client.get(f"/v1/partners/{pid}/status-history", headers=api.admin)).json()["items"]
    assert [h["to_status"] for h in history] == ["active", "suspended", "active", "suspended", "terminated"]
    assert [h["reason"] for h in history[1:]] == [f"{a} now" for a, _ in steps]


async def test_a_reason_is_required(api: Api) -> None:
    partner, _ = await api.register()
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        response = await api.client.post(f"/v1/partners/{partner['id']}/suspend", json=body, headers=api.admin)
        assert response.status_code == 422, body


async def test_impossible_transition_is_409(api: Api) -> None:
    partner, _ = await api.register()
    response = await api.client.post(f"/v1/partners/{partner['id']}/reinstate", json={"reason": "x"}, headers=api.admin)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_status_transition" and body["status"] == 409
    assert "active" in body["detail"]
    await api.client.post(f"/v1/partners/{partner['id']}/terminate", json={"reason": "x"}, headers=api.admin)
    again = await api.client.post(f"/v1/partners/{partner['id']}/approve", json={"reason": "x"}, headers=api.admin)
    assert again.status_code == 409


async def test_unknown_partner_is_404(api: Api) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await api.client.get(f"/v1/partners/{missing}", headers=api.admin)).status_code == 404
    response = await api.client.post(f"/v1/partners/{missing}/suspend", json={"reason": "x"}, headers=api.admin)
    assert response.status_code == 404 and response.json()["code"] == "partner_not_found"
    bad = await api.client.get("/v1/partners/not-a-uuid", headers=api.admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "path.partner_id"


async def test_partner_updates_its_profile(api: Api) -> None:
    partner, key = await api.register()
    api.clock.advance(hours=1)
    response = await api.client.patch(
        f"/v1/partners/{partner['id']}",
        json={"company": "Renamed AG", "languages": ["de"], "website": None},
        headers=api.bearer(key),
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["company"] == "Renamed AG" and updated["languages"] == ["de"] and updated["website"] is None
    assert updated["contact_email"] == partner["contact_email"]
    assert updated["updated_at"] > partner["updated_at"]
    cleared = await api.client.patch(f"/v1/partners/{partner['id']}", json={"company": None}, headers=api.bearer(key))
    assert cleared.status_code == 422 and cleared.json()["code"] == "field_required"
    status = await api.client.patch(f"/v1/partners/{partner['id']}", json={"status": "active"}, headers=api.bearer(key))
    assert status.status_code == 422


async def test_profile_email_must_stay_unique(api: Api) -> None:
    first, _ = await api.register()
    second, key = await api.register()
    response = await api.client.patch(
        f"/v1/partners/{second['id']}",
        json={"contact_email": first["contact_email"].upper()},
        headers=api.bearer(key),
    )
    assert response.status_code == 409


async def test_list_search_and_filter(api: Api) -> None:
    a, _ = await api.register(company="Alpha Reporting", country="FR")
    api.clock.advance(minutes=1)
    b, _ = await api.register(company="Beta Analytics", country="DE")
    api.clock.advance(minutes=1)
    c, _ = await api.register(company="Gamma 100% Data", country="FR")
    await api.client.post(f"/v1/partners/{b['id']}/suspend", json={"reason": "x"}, headers=api.admin)

    async def ids(query: str) -> list[str]:
        response = await api.client.get(f"/v1/partners?{query}", headers=api.admin)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["items"]]

    assert await ids("") == [c["id"], b["id"], a["id"]]
    assert await ids("country=fr") == [c["id"], a["id"]]
    assert await ids("status=suspended") == [b["id"]]
    assert await ids("q=analytics") == [b["id"]]
    assert await ids("q=100%25") == [c["id"]]
    assert await ids("q=_") == []
    assert await ids("status=active&country=FR&q=alpha") == [a["id"]]
    assert await ids("created_from=2026-03-02T09:01:00Z") == [c["id"], b["id"]]
    assert await ids("created_to=2026-03-02T09:01:00%2B00:00") == [a["id"]]
    naive = await api.client.get("/v1/partners?created_from=2026-03-02T09:01:00", headers=api.admin)
    assert naive.status_code == 422


async def test_pagination_walks_every_partner_once(api: Api) -> None:
    registered = []
    for _ in range(5):
        partner, _ = await api.register()
        registered.append(partner["id"])  # same created_at: the id breaks ties
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/partners?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.client.get(url, headers=api.admin)).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(registered) and len(seen) == 5
    bad = await api.client.get("/v1/partners?cursor=garbage", headers=api.admin)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"


def _long_url(host: str, character: str) -> tuple[str, str]:
    """A URL of exactly 2083 characters (the API document's `maxLength`) and its normalised form,
    where each character of four UTF-8 bytes is percent-encoded as twelve."""
    base = f"https://{host}/"
    sent = base + character * (2083 - len(base))
    return sent, base + quote(character) * (2083 - len(base))


async def test_a_url_of_2083_characters_is_kept_whole_however_long_it_normalises(api: Api) -> None:
    """Every column that stores a normalised URL takes what the document allows: the partner's website,
    the one a directory review holds and the directory shows once approved, and an agreement's URL."""
    registered_as, registered = _long_url("long-url.example", "\U0001f600")
    assert len(registered) > 12 * 2000
    partner, key = await api.register(website=registered_as)
    assert partner["website"] == partner["published_website"] == registered
    read = await api.client.get(f"/v1/partners/{partner['id']}", headers=api.bearer(key))
    assert read.json()["website"] == registered
    shown = (await api.client.get("/v1/directory")).json()["items"]
    assert [item["website"] for item in shown] == [registered]

    moved_as, moved = _long_url("moved-url.example", "\U0001f680")
    changed = await api.client.patch(
        f"/v1/partners/{partner['id']}", json={"website": moved_as}, headers=api.bearer(key)
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["website"], changed.json()["published_website"]) == (moved, registered)
    reviews = await api.client.get("/v1/directory-reviews?status=pending", headers=api.admin)
    [review] = reviews.json()["items"]
    assert review["website"] == moved
    approved = await api.client.post(f"/v1/directory-reviews/{review['id']}/approve", headers=api.admin)
    assert approved.status_code == 200, approved.text
    assert [item["website"] for item in (await api.client.get("/v1/directory")).json()["items"]] == [moved]

    agreement_as, agreement = _long_url("terms.example", "\U0001f4dc")
    published = await api.client.post(
        "/v1/agreements",
        json={"version": "2027-01", "title": "T", "url": agreement_as, "accept_by": "2027-02-01T00:00:00Z"},
        headers=api.admin,
    )
    assert published.status_code == 201, published.text
    assert (await api.client.get("/v1/agreements/current")).json()["url"] == agreement


async def test_a_url_longer_than_2083_characters_as_sent_is_refused(api: Api) -> None:
    response = await api.client.post("/v1/partners", json=api.registration(website="https://a.example/" + "a" * 2066))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == ("body.website", "url_too_long")
    assert error["message"] == "URL should have at most 2083 characters."
