"""R19: leads by location — ranking with reasons, offers, declines and deadlines passing it on."""

from __future__ import annotations

import uuid

import pytest

from app.domain.rules.leads import Candidate, Prospect, rank
from app.domain.rules.terms import Level
from tests.conftest import Api
from tests.program import Customer, Program, iso, line


def _c(
    name: str,
    country: str,
    level: Level = Level.AFFILIATE,
    open_leads: int = 0,
    regions: tuple[str, ...] = (),
    at: tuple[float, float] | None = None,
) -> Candidate:
    return Candidate(uuid.uuid4(), name, country, regions, level, open_leads, at)


def test_r19_rank_same_country_then_continent_then_elsewhere() -> None:
    prospect = Prospect("FR", "bretagne", (48.11, -1.68))  # Rennes
    ranked = rank(
        prospect,
        [
            _c("Far", "US", Level.PLATINUM),
            _c("Near EU", "DE", Level.GOLD),
            _c("FR silver busy", "FR", Level.SILVER, open_leads=3),
            _c("FR silver free", "FR", Level.SILVER, open_leads=0),
            _c("FR gold", "FR", Level.GOLD),
            _c("Breton", "FR", Level.AFFILIATE, regions=("bretagne",)),
        ],
    )
    assert [r.candidate.name for r in ranked] == [
        "Breton",
        "FR gold",
        "FR silver free",
        "FR silver busy",
        "Near EU",
        "Far",
    ]
    assert ranked[0].reason.startswith("same country and region") and "gold" in ranked[1].reason
    assert ranked[-1].reason.startswith("elsewhere")


def test_r19_distance_breaks_ties_when_coordinates_are_known() -> None:
    prospect = Prospect("FR", None, (48.85, 2.35))  # Paris
    ranked = rank(
        prospect, [_c("Marseille", "FR", at=(43.30, 5.37)), _c("Lille", "FR", at=(50.63, 3.06)), _c("Unknown", "FR")]
    )
    assert [r.candidate.name for r in ranked] == ["Lille", "Marseille", "Unknown"]
    assert "km away" in ranked[0].reason and ranked[2].distance_km is None


@pytest.fixture
def program(api: Api, delivery: str) -> Program:
    """Store events the test delivers are applied one by one, or together (`delivery`: both ways)."""
    return Program(api)


async def _lead(program: Program, **extra: object) -> dict:
    body = {
        "company": "Prospect SAS",
        "country": "FR",
        "region": "Bretagne",
        "contact_name": "P",
        "contact_email": "p@prospect.example",
        "products": ["server-business"],
        **extra,
    }
    response = await program.client.post("/v1/leads", json=body, headers=program.api.admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_r19_ranking_is_explained_and_assignment_offers_a_registration(program: Program) -> None:
    program.at("2026-02-01T09:00:00Z")
    paris, paris_key = await program.api.register(company="Paris Data", country="FR")
    breton, breton_key = await program.api.register(company="Breizh BI", country="FR")
    berlin, _ = await program.api.register(company="Berlin BI", country="DE")
    await program.client.patch(
        f"/v1/partners/{breton['id']}/directory-profile",
        json={"region": "Bretagne"},
        headers=program.api.bearer(breton_key),
    )
    lead = await _lead(program)
    assert [r["name"] for r in lead["ranking"]] == ["Breizh BI", "Paris Data", "Berlin BI"]
    assert [r["tier"] for r in lead["ranking"]] == [0, 1, 2]
    offer = (await program.client.post(f"/v1/leads/{lead['id']}/assign", json={}, headers=program.api.admin)).json()
    assert offer["partner_id"] == breton["id"] and offer["state"] == "offered"
    assert offer["deadline"] == "2026-02-06T09:00:00Z"
    registrations = (
        await program.client.get(f"/v1/partners/{breton['id']}/registrations", headers=program.api.bearer(breton_key))
    ).json()["items"]
    assert registrations[0]["state"] == "offered"
    # While offered, nobody else can register the prospect.
    taken = await program.client.post(
        f"/v1/partners/{paris['id']}/registrations",
        json={"company": "Prospect SAS", "country": "FR", "contact_name": "P", "contact_email": "p@prospect.example"},
        headers=program.api.bearer(paris_key),
    )
    assert taken.status_code == 409 and taken.json()["code"] == "registered_by_another_partner"
    program.api.clock.advance(days=1)
    accepted = await program.client.post(
        f"/v1/partners/{breton['id']}/lead-offers/{offer['id']}/accept", headers=program.api.bearer(breton_key)
    )
    assert accepted.json()["state"] == "accepted"
    live = (await program.client.get(f"/v1/partners/{breton['id']}/registrations", headers=program.api.admin)).json()[
        "items"
    ][0]
    assert live["state"] == "live" and live["registered_at"] == "2026-02-02T09:00:00Z" and live["days_left"] == 60
    # The R07 window started at acceptance: an order now credits the partner.
    c = Customer(company="Prospect SAS", domain="prospect.example")
    await program.order(c, [line("server-business", 1, 100000)], placed_at=iso(program.api.clock.advance(days=2)))
    assert await program.total_points((breton["id"], breton_key)) == 4
    assert berlin


async def test_r19_declined_offer_passes_to_the_next_partner_and_history_is_kept(program: Program) -> None:
    program.at("2026-02-01T09:00:00Z")
    first, first_key = await program.api.register(company="Aaa First", country="FR")
    second, _ = await program.api.register(company="Bbb Second", country="FR")
    lead = await _lead(program, region=None)
    offer = (await program.client.post(f"/v1/leads/{lead['id']}/assign", json={}, headers=program.api.admin)).json()
    assert offer["partner_id"] == first["id"]
    declined = await program.client.post(
        f"/v1/partners/{first['id']}/lead-offers/{offer['id']}/decline",
        json={"reason": "no capacity"},
        headers=program.api.bearer(first_key),
    )
    assert declined.json()["state"] == "declined"
    detail = (await program.client.get(f"/v1/leads/{lead['id']}", headers=program.api.admin)).json()
    assert [(h["partner_id"], h["state"]) for h in detail["history"]] == [
        (first["id"], "declined"),
        (second["id"], "offered"),
    ]
    assert detail["status"] == "offered"
    mine = (await program.client.get(f"/v1/partners/{first['id']}/registrations", headers=program.api.admin)).json()[
        "items"
    ]
    assert mine[0]["state"] == "withdrawn"


async def test_r19_missed_deadline_passes_the_lead_on(program: Program) -> None:
    from app.domain import leads
    from app.domain.context import Caller, Context

    program.at("2026-02-01T09:00:00Z")
    first, first_key = await program.api.register(company="Aaa Slow", country="FR")
    second, _ = await program.api.register(company="Bbb Next", country="FR")
    lead = await _lead(program, region=None)
    offer = (await program.client.post(f"/v1/leads/{lead['id']}/assign", json={}, headers=program.api.admin)).json()
    program.api.clock.advance(days=6)
    app = program.api.client._transport.app  # type: ignore[attr-defined]
    async with app.state.session_factory.begin() as session:
        assert await leads.expire_due(session, Context(Caller(kind="system"), program.api.clock.now())) == 1
    late = await program.client.post(
        f"/v1/partners/{first['id']}/lead-offers/{offer['id']}/accept", headers=program.api.bearer(first_key)
    )
    assert late.status_code == 409 and late.json()["code"] == "offer_not_open"
    detail = (await program.client.get(f"/v1/leads/{lead['id']}", headers=program.api.admin)).json()
    assert [(h["partner_id"], h["state"]) for h in detail["history"]] == [
        (first["id"], "expired"),
        (second["id"], "offered"),
    ]


async def test_r19_refusal_is_shown_and_suspension_passes_offers_on(program: Program) -> None:
    program.at("2026-02-01T09:00:00Z")
    first, _ = await program.api.register(company="Aaa", country="FR")
    second, _ = await program.api.register(company="Bbb", country="FR")
    existing = await program.client.post(
        "/v1/customer-imports",
        json={"customers": [{"company": "Old Client", "country": "FR", "domain": "old.example"}]},
        headers=program.api.admin,
    )
    assert existing.status_code == 200
    old = await _lead(program, company="Old Client", contact_email="x@old.example", region=None)
    refused = await program.client.post(
        f"/v1/leads/{old['id']}/assign", json={"partner_id": first["id"]}, headers=program.api.admin
    )
    assert refused.status_code == 409 and refused.json()["code"] == "lead_offer_refused"
    assert "already bought" in refused.json()["detail"]
    lead = await _lead(program, region=None)
    offer = (await program.client.post(f"/v1/leads/{lead['id']}/assign", json={}, headers=program.api.admin)).json()
    assert offer["partner_id"] == first["id"]
    program.api.clock.advance(hours=1)
    await program.client.post(f"/v1/partners/{first['id']}/suspend", json={"reason": "x"}, headers=program.api.admin)
    await program.api.drain()  # the offers pass on as the worker's reaction to the suspension
    detail = (await program.client.get(f"/v1/leads/{lead['id']}", headers=program.api.admin)).json()
    assert [(h["partner_id"], h["state"]) for h in detail["history"]] == [
        (first["id"], "withdrawn"),
        (second["id"], "offered"),
    ]
    offers = (
        await program.client.get(f"/v1/partners/{second['id']}/lead-offers?state=offered", headers=program.api.admin)
    ).json()["items"]
    assert [(o["lead_id"], o["partner_id"]) for o in offers] == [(lead["id"], second["id"])]


@pytest.mark.parametrize("status", ["suspend", "terminate"])
async def test_r04_suspended_partner_cannot_accept_an_offer_that_reached_it_before(
    program: Program, status: str
) -> None:
    from app.db.session import unit_of_work
    from app.domain import leads
    from app.domain.context import Caller, Context
    from app.domain.errors import Forbidden

    program.at("2026-02-01T09:00:00Z")
    first, first_key = await program.api.register(company="Aaa Held", country="FR")
    second, _ = await program.api.register(company="Bbb Next", country="FR")
    lead = await _lead(program, region=None)
    offer = (await program.client.post(f"/v1/leads/{lead['id']}/assign", json={}, headers=program.api.admin)).json()
    assert offer["partner_id"] == first["id"]
    program.api.clock.advance(hours=1)
    changed = await program.client.post(
        f"/v1/partners/{first['id']}/{status}", json={"reason": "x"}, headers=program.api.admin
    )
    assert changed.status_code == 200, changed.text
    # Before the worker has passed the offer on, it is still open, and still refused.
    code = "partner_suspended" if status == "suspend" else "partner_terminated"
    late = await program.client.post(
        f"/v1/partners/{first['id']}/lead-offers/{offer['id']}/accept", headers=program.api.bearer(first_key)
    )
    assert late.status_code == 403 and late.json()["code"] == code
    # The use case refuses it too, whoever calls it.
    factory = program.api.app.state.session_factory
    ctx = Context(Caller(kind="partner", partner_id=uuid.UUID(first["id"])), program.api.clock.now())
    with pytest.raises(Forbidden) as refused:
        async with unit_of_work(factory) as session:
            await leads.accept(session, ctx, uuid.UUID(first["id"]), uuid.UUID(offer["id"]))
    assert refused.value.code == code
    detail = (await program.client.get(f"/v1/leads/{lead['id']}", headers=program.api.admin)).json()
    assert [(h["partner_id"], h["state"]) for h in detail["history"]] == [(first["id"], "offered")]
    await program.api.drain()
    detail = (await program.client.get(f"/v1/leads/{lead['id']}", headers=program.api.admin)).json()
    assert [(h["partner_id"], h["state"]) for h in detail["history"]] == [
        (first["id"], "withdrawn"),
        (second["id"], "offered"),
    ]
    assert detail["history"][0]["reason"] == (
        "The partner was suspended." if status == "suspend" else "The partner was terminated."
    )
