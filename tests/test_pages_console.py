"""The program console's pages (issue 24): partners and their history, the review queues, statements,
payout runs, the terms' versions and the overview's charts, each for the vendor's roles by the role
table; refusals said on the page; and every page once in a browser (axe-core and a phone's width)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.db.tables import MailMessage
from app.domain.rules.money import commission
from app.domain.rules.roles import Role
from app.worker import previews
from tests.browser import Browser, browser
from tests.conftest import Api
from tests.program import Customer, Program, line
from tests.test_payouts import DE, DEBTOR, _close_and_approve, _earn, _partner, _publish, _run, at
from tests.test_people import make_user
from tests.test_terms_preview import POLICY, _close_q1, _referrals

__all__ = ["browser"]  # fixture

PAGES = (
    "/console",
    "/console/partners",
    "/console/reviews",
    "/console/statements",
    "/console/payout-runs",
    "/console/terms",
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(DEBTOR)  # a payout run needs the vendor's account


@pytest.fixture
def live_settings_overrides() -> dict[str, Any]:
    return dict(DEBTOR)  # the browser's walk includes a payout run


class Person:
    """A signed-in user's pages: its cookie, and the CSRF token its forms carry."""

    def __init__(self, api: Api, cookie: str) -> None:
        self.api, self.cookie, self.csrf = api, cookie, ""

    async def get(self, path: str, **params: Any) -> httpx.Response:
        response = await self.api.client.get(
            path, params=params, headers={"Cookie": f"partners_session={self.cookie}"}, follow_redirects=False
        )
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def post(self, path: str, csrf: str | None = None, **form: str) -> httpx.Response:
        data = {"csrf_token": self.csrf if csrf is None else csrf, **form}
        return await self.api.client.post(
            path, data=data, headers={"Cookie": f"partners_session={self.cookie}"}, follow_redirects=False
        )


async def person(api: Api, role: Role, partner_id: str | None = None) -> Person:
    user = await make_user(api, role, partner_id)
    api.client.cookies.clear()  # each person sends its own cookie
    signed_in = Person(api, user.cookie)
    await signed_in.get("/console")
    return signed_in


async def test_every_console_page_answers_each_vendor_role_and_a_partner_user_is_sent_to_its_portal(api: Api) -> None:
    partner, _ = await api.register(company="Alpha Ltd")
    for role in (Role.ADMIN, Role.PARTNER_MANAGER, Role.VENDOR_FINANCE, Role.VIEWER):
        someone = await person(api, role)
        for path in PAGES:
            page = await someone.get(path)
            assert page.status_code == 200, (role, path, page.text)
            assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "Alpha Ltd" in (await someone.get(f"/console/partners/{partner['id']}")).text
    owner = await person(api, Role.OWNER, partner["id"])
    for path in (*PAGES, f"/console/partners/{partner['id']}"):
        sent = await owner.get(path)
        assert sent.status_code == 303 and sent.headers["location"] == "/portal", path
    anonymous = await api.client.get("/console/reviews", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/sign-in?next=/console/reviews"


async def test_partners_are_found_by_text_and_filters_and_a_suspension_shows_in_the_history_with_its_reason(
    api: Api,
) -> None:
    alpha, _ = await api.register(company="Alpha Reports Ltd", country="FR")
    beta, _ = await api.register(company="Beta Analytics GmbH", country="DE")
    manager = await person(api, Role.PARTNER_MANAGER)

    found = await manager.get("/console/partners", q="reports")
    assert found.status_code == 200 and "Alpha Reports Ltd" in found.text and "Beta Analytics" not in found.text
    german = await manager.get("/console/partners", country="de", status="active", level="affiliate")
    assert "Beta Analytics GmbH" in german.text and "Alpha Reports" not in german.text
    none = await manager.get("/console/partners", status="suspended")
    assert "No partner matches" in none.text
    wrong = await manager.get("/console/partners", status="sleeping", country="France")
    assert wrong.status_code == 422 and "is not a partner status" in wrong.text and "two letters" in wrong.text

    page = await manager.get(f"/console/partners/{alpha['id']}")
    assert "Suspend Alpha Reports Ltd" in page.text and "Reinstate" not in page.text  # what active allows
    assert "Agreement acceptances" in page.text and "2026-01" in page.text
    blank = await manager.post(f"/console/partners/{alpha['id']}/status", action="suspend", reason="   ")
    assert blank.status_code == 422 and 'id="reason-suspend-error"' in blank.text  # said next to the field
    long = await manager.post(f"/console/partners/{alpha['id']}/status", action="suspend", reason="why " * 300)
    assert long.status_code == 422 and "at most 1000 characters" in long.text
    assert f'value="{"why " * 300}"' in long.text  # what was typed is kept
    suspended = await manager.post(
        f"/console/partners/{alpha['id']}/status", action="suspend", reason="Sold its own production licences"
    )
    assert suspended.status_code == 200 and "Alpha Reports Ltd is suspended." in suspended.text
    history = (await manager.get(f"/console/partners/{alpha['id']}")).text
    assert "Sold its own production licences" in history and "Reinstate Alpha Reports Ltd" in history
    again = await manager.post(f"/console/partners/{alpha['id']}/status", action="suspend", reason="twice")
    assert again.status_code == 409 and "A partner that is suspended cannot be suspended." in again.text
    assert "Alpha Reports Ltd" in (await manager.get("/console/partners", status="suspended")).text

    viewer = await person(api, Role.VIEWER)
    read = await viewer.get(f"/console/partners/{beta['id']}")
    assert (
        read.status_code == 200
        and "Suspend" not in read.text
        and '<form method="post" action="/console/partners' not in read.text
    )
    refused = await viewer.post(f"/console/partners/{beta['id']}/status", action="suspend", reason="no")
    assert refused.status_code == 403 and "The viewer role may not do this (partners.status.write)." in refused.text

    # The form's token is this session's, or nothing changes; an unknown partner is not found.
    for token in ("", "forged"):
        forged = await manager.post(f"/console/partners/{beta['id']}/status", csrf=token, action="suspend", reason="x")
        assert (
            forged.status_code == 403
            and "The form&#39;s CSRF token is missing or not this session&#39;s." in forged.text
        )
    assert (await manager.get("/console/partners/4d2d0bde-1111-4c3d-9e7f-1a2b3c4d5e6f")).status_code == 404
    assert (await manager.get("/console/partners/not-an-id")).status_code == 404
    assert (await manager.get(f"/console/partners/{beta['id']}/history/nothing")).status_code == 404
    gone = await manager.post(
        "/console/partners/4d2d0bde-1111-4c3d-9e7f-1a2b3c4d5e6f/status", action="suspend", reason="x"
    )
    assert gone.status_code == 404
    assert (await api.client.get(f"/v1/partners/{beta['id']}", headers=api.admin)).json()["status"] == "active"


async def test_the_review_queues_replay_a_parked_event_resolve_an_order_flag_and_approve_directory_text(
    api: Api,
) -> None:
    program = Program(api)
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    await program.order(c, [line("desktop", 2, 96000)], placed_at="2026-01-20T10:00:00Z")
    parked = await program.order(c, [line("cloud-premium", 1, 50000)], placed_at="2026-01-22T10:00:00Z", expect=202)
    event_id = parked["receipt"]["event_id"]
    await program.order(c, [line("desktop", 1, 40000, discount=30000)], placed_at="2026-01-23T10:00:00Z", buyer=p[0])
    edited = await api.client.patch(
        f"/v1/partners/{p[0]}/directory-profile",
        json={"description": "Reports for finance teams."},
        headers=api.bearer(p[1]),
    )
    assert edited.status_code == 200, edited.text

    viewer = await person(api, Role.VIEWER)
    seen = await viewer.get("/console/reviews")
    assert (
        f"Event {event_id}" in seen.text and "cloud-premium" in seen.text and "Reports for finance teams." in seen.text
    )
    assert "Replay event" not in seen.text and "Resolve flag" not in seen.text and "Approve review" not in seen.text
    company = (await api.client.get(f"/v1/partners/{p[0]}", headers=api.admin)).json()["company"]
    assert seen.text.count(html.escape(company)) == 2  # the partner named beside its order flag and its text
    refused = await viewer.post(f"/console/reviews/events/{event_id}/replay")
    assert refused.status_code == 403 and "may not do this (reviews.write)" in refused.text

    manager = await person(api, Role.PARTNER_MANAGER)
    still = await manager.post(f"/console/reviews/events/{event_id}/replay")
    assert still.status_code == 200 and f"Store event {event_id} is still parked" in still.text
    added = await api.client.post("/v1/program/skus", json={"sku": "cloud-premium", "points": 6}, headers=api.admin)
    assert added.status_code == 201, added.text
    replayed = await manager.post(f"/console/reviews/events/{event_id}/replay")
    assert replayed.status_code == 200 and f"Store event {event_id} is applied." in replayed.text
    twice = await manager.post(f"/console/reviews/events/{event_id}/replay")
    assert twice.status_code == 409 and "Only parked events are replayed; this one is applied." in twice.text

    flags = (await api.client.get("/v1/order-flags?resolved=false", headers=api.admin)).json()["items"]
    flag_id = flags[0]["id"]
    empty = await manager.post(f"/console/reviews/flags/{flag_id}/resolve", reason="")
    assert empty.status_code == 422 and f'id="reason-flag-{flag_id}-error"' in empty.text
    resolved = await manager.post(f"/console/reviews/flags/{flag_id}/resolve", reason="Agreed with sales")
    assert resolved.status_code == 200 and f"Order flag {flag_id} is resolved." in resolved.text
    flag = (await api.client.get("/v1/order-flags?resolved=true", headers=api.admin)).json()["items"][0]
    assert (flag["id"], flag["resolution"]) == (flag_id, "Agreed with sales")

    [review] = (await api.client.get("/v1/directory-reviews?status=pending", headers=api.admin)).json()["items"]
    approved = await manager.post(f"/console/reviews/directory/{review['id']}/approve")
    assert approved.status_code == 200 and "is approved: the directory shows it" in approved.text
    assert "No directory profile waits for review." in approved.text
    listed = (await api.client.get("/v1/directory")).json()["items"]
    assert any(i.get("description") == "Reports for finance teams." for i in listed)

    for path in ("/console/reviews/flags/999999/resolve", "/console/reviews/directory/nothing/approve"):
        missing = await manager.post(path, reason="x")
        assert missing.status_code == 404, path


async def test_finance_approves_and_pays_statements_and_makes_a_payout_run_whose_sepa_file_downloads(
    api: Api,
) -> None:
    await _publish(api)
    pid, _ = await _partner(api, DE)
    await _earn(api, pid, 45678)
    at(api, "2026-04-02T09:00:00Z")
    closed = await api.client.post("/v1/quarters/2026-Q1/close", headers=api.admin)
    assert closed.status_code == 200, closed.text
    [statement] = closed.json()["statements"]
    sid = statement["id"]

    viewer = await person(api, Role.VIEWER)
    draft = await viewer.get("/console/statements", quarter="2026-Q1", status="draft")
    assert "456.78 EUR" in draft.text and "Approve" not in draft.text
    refused = await viewer.post(f"/console/statements/{sid}/approve")
    assert refused.status_code == 403 and "may not do this (statements.write)" in refused.text
    assert "Create the run" not in (await viewer.get("/console/payout-runs")).text

    finance = await person(api, Role.VENDOR_FINANCE)
    listed = await finance.get("/console/statements", quarter="2026-Q1")
    assert "Approve Partner" in listed.text and "2026-Q1" in listed.text
    assert (await finance.get("/console/statements", quarter="1999-Q1")).status_code == 422
    approved = await finance.post(f"/console/statements/{sid}/approve?quarter=2026-Q1")
    assert approved.status_code == 200 and "The 2026-Q1 statement is approved." in approved.text
    assert f"/console/statements/{sid}/mark-paid" in approved.text
    csv = await finance.get(f"/console/statements/{sid}.csv")
    assert csv.status_code == 200 and "45678" in csv.text
    assert (await finance.get("/console/statements/4d2d0bde-1111-4c3d-9e7f-1a2b3c4d5e6f.csv")).status_code == 404

    # A run: a date passed is refused next to its field; then the statement is paid by the run.
    at(api, "2026-04-20T09:00:00Z")
    finance = await person(api, Role.VENDOR_FINANCE)  # a session lasts less than the weeks gone by
    past = await finance.post("/console/payout-runs", payment_date="2026-04-01")
    assert past.status_code == 422 and 'id="payment_date-error"' in past.text and "has passed" in past.text
    assert 'value="2026-04-01"' in past.text
    made = await finance.post("/console/payout-runs", payment_date="2026-04-25")
    assert made.status_code == 200 and "pays 1 transfers on 2026-04-25" in made.text, made.text
    assert "1 issued" in made.text and "SEPA file of" in made.text
    run = (await api.client.get("/v1/payout-runs", headers=api.admin)).json()["items"][0]
    sepa = await finance.get(f"/console/payout-runs/{run['id']}/sepa.xml")
    assert sepa.status_code == 200 and sepa.headers["content-type"].startswith("application/xml")
    assert "pain.001.001.09" in sepa.text
    assert (await finance.get("/console/payout-runs/4d2d0bde-1111-4c3d-9e7f-1a2b3c4d5e6f/sepa.xml")).status_code == 404
    confirmed = await finance.post(f"/console/payout-runs/{run['id']}/confirm")
    assert confirmed.status_code == 200 and "is confirmed executed" in confirmed.text
    paid = await finance.get("/console/statements", status="paid")
    assert "456.78 EUR" in paid.text and run["reference"] in paid.text


async def test_a_payout_runs_page_shows_its_transfers_what_it_pays_and_what_it_could_not_and_takes_a_return(
    api: Api,
) -> None:
    await _publish(api)
    paid_pid, paid_key = await _partner(api, DE)
    unpaid_pid, _ = await _partner(api, None)  # no payee details: its statement waits
    await _earn(api, paid_pid, 45678)
    await _earn(api, unpaid_pid, 12300)
    await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    at(api, "2026-04-20T09:00:00Z")
    run = await _run(api)
    [transfer] = run["transfer_list"]
    paid = next(s for s in run["statements"] if s["transfer_id"] is not None)
    [unpaid] = [s for s in run["statements"] if s["transfer_id"] is None]
    path = f"/console/payout-runs/{run['id']}"
    names = {
        pid: (await api.client.get(f"/v1/partners/{pid}", headers=api.admin)).json()["company"]
        for pid in (paid_pid, unpaid_pid)
    }

    viewer = await person(api, Role.VIEWER)
    listed = await viewer.get("/console/payout-runs")
    assert f'href="{path}"' in listed.text
    seen = await viewer.get(path)
    assert seen.status_code == 200, seen.text
    page = html.unescape(seen.text)
    assert f"Payout run {run['reference']}" in page and "456.78 EUR" in page
    assert transfer["iban_masked"] in page and transfer["end_to_end_id"] in page and names[paid_pid] in page
    assert paid["invoice_number"] in page and f"/console/partners/{paid_pid}" in page
    assert names[unpaid_pid] in page and "123.00 EUR" in page
    assert unpaid["not_payable_because"][0]["detail"] in page
    assert "Confirm" not in page and "returned</button>" not in page  # a viewer changes nothing
    refused = await viewer.post(f"{path}/transfers/{transfer['id']}/return", reason="AC04 account closed")
    assert refused.status_code == 403 and "may not do this (payout_runs.write)" in refused.text
    for missing in ("/console/payout-runs/4d2d0bde-1111-4c3d-9e7f-1a2b3c4d5e6f", "/console/payout-runs/x"):
        assert (await viewer.get(missing)).status_code == 404, missing
    owner = await person(api, Role.OWNER, paid_pid)
    sent = await owner.get(path)
    assert sent.status_code == 303 and sent.headers["location"] == "/portal"

    finance = await person(api, Role.VENDOR_FINANCE)
    shown = await finance.get(path)
    assert (
        f"Confirm {run['reference']} executed" in shown.text
        and f"Mark {transfer['end_to_end_id']} returned" in shown.text
    )
    blank = await finance.post(f"{path}/transfers/{transfer['id']}/return", reason=" ")
    assert blank.status_code == 422 and f'id="reason-{transfer["id"]}-error"' in blank.text
    assert (await finance.post(f"{path}/transfers/999999/return", reason="AC04")).status_code == 404
    returned = await finance.post(f"{path}/transfers/{transfer['id']}/return", reason="AC04 account closed")
    assert returned.status_code == 200, returned.text
    assert f"Transfer {transfer['end_to_end_id']} is returned" in returned.text
    assert "returned, 2026-04-20" in returned.text and "AC04 account closed" in returned.text
    assert "returned</button>" not in returned.text  # nothing left to return
    statement = await api.client.get(
        f"/v1/partners/{paid_pid}/statements/{paid['statement_id']}", headers=api.bearer(paid_key)
    )
    assert statement.json()["status"] == "approved"  # the next run pays it

    confirmed = await finance.post(f"{path}/confirm")
    assert confirmed.status_code == 200 and "is confirmed executed" in confirmed.text
    after = await finance.get(path)
    assert "executed" in after.text and "Confirm" not in after.text


async def test_a_statement_is_marked_paid_with_its_reference_and_a_blank_one_is_said_next_to_the_field(
    api: Api,
) -> None:
    partner, _ = await api.register(company="Delta Ltd")
    await _earn(api, partner["id"], 12000)
    [statement] = await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    finance = await person(api, Role.VENDOR_FINANCE)
    await finance.get("/console/statements")
    blank = await finance.post(f"/console/statements/{statement['id']}/mark-paid", payment_reference="")
    assert blank.status_code == 422 and f'id="{statement["id"]}-payment_reference-error"' in blank.text
    paid = await finance.post(
        f"/console/statements/{statement['id']}/mark-paid", payment_reference="SEPA-2026-Q1-7", paid_on="2026-04-24"
    )
    assert paid.status_code == 200 and "paid under reference SEPA-2026-Q1-7" in paid.text


async def test_the_terms_page_says_what_each_version_changed_and_the_overview_draws_its_charts(api: Api) -> None:
    versions = (await api.client.get("/v1/program/terms/versions", headers=api.admin)).json()["items"]
    changed = {**versions[-1]["terms"], "referral_rate_bp": 2500}
    published = await api.client.post(
        "/v1/program/terms", json={"effective_from": "2026-11-01T00:00:00Z", "terms": changed}, headers=api.admin
    )
    assert published.status_code == 201, published.text
    admin = await person(api, Role.ADMIN)
    page = (await admin.get("/console/terms")).text
    assert f"Version {len(versions) + 1}" in page and "to come" in page and "in force" in page
    assert re.search(r"<td>referral_rate_bp</td><td>2000</td><td>2500</td>", page)

    await api.register(company="Echo Ltd")
    async with api.app.state.session_factory() as session:
        await session.execute(update(MailMessage).values(state="failed"))
        await session.commit()
    overview = await admin.get("/console")
    text = overview.text
    for title in (
        "Active partners by points",
        "Commission accrued per quarter",
        "Overdue statements by quarter",
        "Failed webhook deliveries by subscription",
        "Mail given up on, by kind",
    ):
        assert "<title id=" in text and title in text, title
    assert "No webhook delivery has failed." in text and "<td>invitation</td>" in text


async def test_an_admin_previews_draft_terms_from_the_terms_page_and_reads_who_moves_and_what_it_costs(
    api: Api,
) -> None:
    """Issue 26: the preview of draft terms in the console, by the API's own request model and use case."""
    program = Program(api)
    amounts = [100001, 33333, 4999]
    partner = await _referrals(api, program, amounts)
    await _close_q1(api, program)  # now 2026-04-02
    company = (await api.client.get(f"/v1/partners/{partner[0]}", headers=api.admin)).json()["company"]

    admin = await person(api, Role.ADMIN)
    page = await admin.get("/console/terms")
    assert page.status_code == 200 and "Preview draft terms" in page.text and "No preview is kept" in page.text

    def draft_in(text: str) -> str:
        found = re.search(r'<textarea id="terms" name="terms"[^>]*>(.*?)</textarea>', text, re.S)
        assert found, text
        return html.unescape(found.group(1))

    assert json.loads(draft_in(page.text)) == POLICY  # the terms in force

    # Refused: the draft is not JSON (said next to it, what was typed kept), a quarter is no quarter.
    broken = '{"referral_rate_bp": 2500,'
    refused = await admin.post(
        "/console/terms/previews", terms=broken, effective_from="2026-07-01T00:00", first_quarter="Q1"
    )
    assert refused.status_code == 422 and 'id="terms-error"' in refused.text, refused.text
    assert "The draft is not JSON" in refused.text and draft_in(refused.text) == broken
    assert 'id="first_quarter-error"' in refused.text and 'value="Q1"' in refused.text
    assert 'value="2026-07-01T00:00"' in refused.text
    past = await admin.post("/console/terms/previews", terms=json.dumps(POLICY), effective_from="2026-03-01T00:00")
    assert past.status_code == 422 and 'id="effective_from-error"' in past.text
    assert "take effect in the future" in past.text
    wrong = await admin.post(
        "/console/terms/previews",
        terms=json.dumps({**POLICY, "referral_rate_bp": -5}),
        effective_from="2026-07-01T00:00",
    )
    assert wrong.status_code == 422 and "referral_rate_bp: " in wrong.text and 'id="terms-error"' in wrong.text

    draft = json.dumps({**POLICY, "referral_rate_bp": 2500, "hold_days": 30}, indent=2)
    asked = await admin.post("/console/terms/previews", terms=draft, effective_from="2026-07-01T00:00")
    assert asked.status_code == 303, asked.text
    where = asked.headers["location"]
    assert re.fullmatch(r"/console/terms/previews/[0-9a-f-]{36}", where)
    queued = await admin.get(where)
    assert queued.status_code == 200 and "Queued" in queued.text and f'<a href="{where}">Refresh</a>' in queued.text
    assert "referral_rate_bp" in queued.text and "Not modelled" in queued.text and "hold_days" in queued.text
    assert "2026-07-01 00:00" in queued.text  # in the user's time zone, as typed
    listed = await admin.get("/console/terms")
    assert f'href="{where}"' in listed.text and "queued" in listed.text

    assert await previews.settle(api.app.state.worker) == 1
    done = await admin.get(where)
    assert done.status_code == 200 and "Refresh" not in done.text
    nets = [paid - paid // 6 for paid in amounts]
    actual = sum(commission(net, 2000) for net in nets)
    expected = sum(commission(net, 2500) for net in nets)

    def eur(amount: int) -> str:
        return f"{amount // 100:,}.{amount % 100:02d} EUR"

    assert eur(actual) in done.text and eur(expected) in done.text and f"+{eur(expected - actual)}" in done.text
    assert '<svg role="img" aria-labelledby="per-quarter-title"' in done.text and "<td>2026-Q1</td>" in done.text
    assert "referral (R11)" in done.text and "Silver" in done.text
    most = re.search(r'<td class="n">1</td>\s*<td><a href="/console/partners/([^"]+)">([^<]+)</a>', done.text)
    assert most and (most.group(1), html.unescape(most.group(2))) == (partner[0], company)

    sheet = await admin.get(where + "/partners.csv")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    [first, *_] = list(csv.DictReader(io.StringIO(sheet.text)))
    assert (first["partner_id"], first["commission_draft"], first["impact_rank"]) == (partner[0], str(expected), "1")
    api_sheet = await api.client.get(
        f"/v1/program/terms/previews/{where.rsplit('/', 1)[-1]}/partners.csv", headers=api.admin
    )
    assert api_sheet.text == sheet.text

    # A viewer reads the preview but has no form, and its post is refused; CSRF; a partner's user; 404.
    viewer = await person(api, Role.VIEWER)
    terms_page = await viewer.get("/console/terms")
    assert "Preview draft terms" not in terms_page.text and 'action="/console/terms/previews"' not in terms_page.text
    assert f'href="{where}"' in terms_page.text
    assert eur(expected) in (await viewer.get(where)).text
    forbidden = await viewer.post("/console/terms/previews", terms=draft, effective_from="2026-07-01T00:00")
    assert forbidden.status_code == 403 and "The viewer role may not do this (terms.write)." in forbidden.text
    forged = await admin.post("/console/terms/previews", csrf="", terms=draft, effective_from="2026-07-01T00:00")
    assert forged.status_code == 403 and "CSRF token" in forged.text
    owner = await person(api, Role.OWNER, partner[0])
    for path in ("/console/terms", where, where + "/partners.csv"):
        sent = await owner.get(path)
        assert sent.status_code == 303 and sent.headers["location"] == "/portal", path
    await owner.get("/portal")  # its session's CSRF token
    sent = await owner.post("/console/terms/previews", terms=draft, effective_from="2026-07-01T00:00")
    assert sent.status_code == 303 and sent.headers["location"] == "/portal"
    for missing in ("/console/terms/previews/4d2d0bde-1111-4c3d-9e7f-1a2b3c4d5e6f", "/console/terms/previews/x"):
        assert (await admin.get(missing)).status_code == 404, missing
        assert (await admin.get(missing + "/partners.csv")).status_code == 404, missing
    listing = (await api.client.get("/v1/program/terms/previews", headers=api.admin)).json()["items"]
    assert len(listing) == 1  # the refused forms asked for nothing


async def test_every_console_page_in_a_browser_passes_axe_and_fits_a_phone(live_api: Api, browser: Browser) -> None:
    api = live_api
    await _publish(api)
    paid_pid, _ = await _partner(api, DE)  # payable: a payout run pays it
    partner, key = await api.register(company="Foxtrot Reports Ltd")  # no payee details: left out of the run
    await _earn(api, paid_pid, 20000)
    await _earn(api, partner["id"], 34500)
    await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    at(api, "2026-04-20T09:00:00Z")
    run = await _run(api)
    await api.client.patch(
        f"/v1/partners/{partner['id']}/directory-profile",
        json={"description": "Qalyptus reports."},
        headers=api.bearer(key),
    )
    asked = await api.client.post(
        "/v1/program/terms/preview",
        json={"effective_from": "2026-07-01T00:00:00Z", "terms": {**POLICY, "referral_rate_bp": 2500}},
        headers=api.admin,
    )
    assert asked.status_code == 202, asked.text
    await previews.settle(api.app.state.worker)
    preview_page = f"/console/terms/previews/{asked.json()['id']}"
    admin = await make_user(api, Role.ADMIN)
    await browser.open("/sign-in")
    await browser.run(
        lambda: browser.driver.add_cookie({"name": "partners_session", "value": admin.cookie, "path": "/"})
    )
    violations: list[str] = []
    for path in (
        *PAGES,
        f"/console/partners/{partner['id']}",
        f"/console/partners/{partner['id']}/history/money",
        preview_page,
        f"/console/payout-runs/{run['id']}",
    ):
        await browser.open(path)
        assert await browser.path() == path, path
        violations += [f"{path}: {v}" for v in await browser.look(path.strip("/").replace("/", "-"))]
    assert violations == []
