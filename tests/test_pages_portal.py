"""The partner portal's pages: what each role reads and does on them, refusals in the program's words
next to their fields, another partner's ids answered 404, CSRF on every form; and one walk through
every page in a real browser (axe-core and a phone's width)."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest

from app.domain.rules.roles import Role
from app.worker import documents
from tests.browser import Browser, browser, live_settings_overrides
from tests.conftest import Api
from tests.program import Customer, Program, line, t
from tests.test_payouts import DEBTOR, FR, _close_and_approve, _earn, _partner, _publish, _run, at
from tests.test_people import make_user

__all__ = ["browser", "live_settings_overrides"]  # fixtures

PAGES = (
    "/portal",
    "/portal/customers",
    "/portal/leads",
    "/portal/ledger",
    "/portal/statements",
    "/portal/payouts",
    "/portal/profile",
    "/portal/team",
    "/portal/keys",
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(DEBTOR)  # payout runs need the vendor's bank details


def _cookie(user: Any) -> dict[str, str]:
    return {"Cookie": f"partners_session={user.cookie}"}


async def _get(api: Api, user: Any, path: str) -> httpx.Response:
    return await api.client.get(path, headers=_cookie(user), follow_redirects=False)


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has a form with the session's CSRF token"
    return found.group(1)


async def _post(api: Api, user: Any, path: str, data: dict[str, str] | None = None, *, form: str = "/portal") -> Any:
    """Post a form as the page does: with the CSRF token read from the page `form`."""
    token = _csrf(await _get(api, user, form))
    return await api.client.post(path, data={"csrf_token": token, **(data or {})}, headers=_cookie(user))


def _text(response: httpx.Response) -> str:
    return html.unescape(response.text)


def _value(response: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" type="[a-z]+" value="([^"]*)"', response.text)
    assert found, f"no field {name}"
    return html.unescape(found.group(1))


async def _owner(api: Api, **company: Any) -> tuple[str, str, Any]:
    partner, key = await api.register(**company)
    owner = await make_user(api, Role.OWNER, partner["id"])
    api.client.cookies.clear()
    return partner["id"], key, owner


async def _lead(api: Api, partner_id: str, company: str = "Prospect SAS") -> dict[str, Any]:
    body = {
        "company": company,
        "country": "FR",
        "region": "Bretagne",
        "contact_name": "P",
        "contact_email": f"p@{company.split()[0].lower()}.example",
        "products": ["server-business"],
    }
    posted = await api.client.post("/v1/leads", json=body, headers=api.admin)
    assert posted.status_code == 201, posted.text
    offered = await api.client.post(
        f"/v1/leads/{posted.json()['id']}/assign", json={"partner_id": partner_id}, headers=api.admin
    )
    assert offered.status_code == 200, offered.text
    return dict(offered.json())


async def test_every_portal_page_renders_for_an_owner_and_a_vendor_user_is_sent_to_the_console(api: Api) -> None:
    _, _, owner = await _owner(api, company="Alpha GmbH")
    for path in PAGES:
        page = await _get(api, owner, path)
        assert page.status_code == 200, (path, page.text)
        assert "Alpha GmbH" in _text(page) and "script-src 'self'" in page.headers["content-security-policy"]
        assert "style=" not in page.text and "<script" not in page.text  # the CSP allows neither
    vendor = await make_user(api, Role.ADMIN)
    for path in PAGES:
        sent = await _get(api, vendor, path)
        assert sent.status_code == 303 and sent.headers["location"] == "/console", path
    anonymous = await api.client.get("/portal/leads", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/sign-in?next=/portal/leads"


async def test_a_role_without_the_permission_gets_the_page_with_403_and_why(api: Api) -> None:
    pid, _, _ = await _owner(api)
    finance = await make_user(api, Role.PARTNER_FINANCE, pid)
    sales = await make_user(api, Role.SALES, pid)
    refused = [
        (finance, "/portal/customers", "Your role does not read the partner's registrations."),
        (finance, "/portal/leads", "Your role does not read the leads offered to the partner."),
        (finance, "/portal/keys", "Your role does not manage the partner's API keys."),
        (sales, "/portal/payouts", "Your role does not read payouts or invoices."),
        (sales, "/portal/statements", "Your role does not read statements."),
        (sales, "/portal/keys", "Your role does not manage the partner's API keys."),
    ]
    for user, path, why in refused:
        page = await _get(api, user, path)
        assert page.status_code == 403 and why in _text(page), path
    for user, path in ((finance, "/portal/payouts"), (sales, "/portal/customers"), (sales, "/portal/leads")):
        assert (await _get(api, user, path)).status_code == 200, path
    # Every partner role reads the profile and the team; only the owner edits or invites.
    profile = await _get(api, sales, "/portal/profile")
    assert profile.status_code == 200 and "Save the profile" not in profile.text
    team = await _get(api, sales, "/portal/team")
    assert team.status_code == 200 and "Send the invitation" not in team.text
    edit = await _post(api, sales, "/portal/profile", {"description": "Reporting"})
    assert edit.status_code == 403 and "does not edit the directory profile" in _text(edit)
    invite = await _post(api, sales, "/portal/team", {"email": "x@alpha.example", "role": "sales"})
    assert invite.status_code == 403 and "does not invite users" in _text(invite)
    register = await _post(api, finance, "/portal/customers", {"company": "Contoso SA"})
    assert register.status_code == 403 and "does not register customers" in _text(register)


async def test_a_registration_conflict_is_said_in_the_apis_words_next_to_what_was_typed(api: Api) -> None:
    customer = Customer.new("Contoso")
    first, first_key = await api.register()
    made = await api.client.post(
        f"/v1/partners/{first['id']}/registrations", json=customer.registration(), headers=api.bearer(first_key)
    )
    assert made.status_code == 201, made.text
    third, third_key = await api.register()
    by_api = await api.client.post(
        f"/v1/partners/{third['id']}/registrations", json=customer.registration(), headers=api.bearer(third_key)
    )
    assert by_api.status_code == 409 and by_api.json()["code"] == "registered_by_another_partner"

    _, _, owner = await _owner(api)
    typed = {k: str(v) for k, v in customer.registration().items()}
    page = await _post(api, owner, "/portal/customers", typed, form="/portal/customers")
    assert page.status_code == 409 and by_api.json()["detail"] in _text(page)
    for name, value in typed.items():
        assert _value(page, name) == value, name  # what was typed is kept

    # A refusal that names its field is said next to it; so is a missing identifier.
    bad_vat = {**typed, "company": "Other SA", "vat_id": "FR00000000000"}
    page = await _post(api, owner, "/portal/customers", bad_vat, form="/portal/customers")
    assert page.status_code == 422 and 'id="vat_id-error"' in page.text and "vat_id FR00000000000" in _text(page)
    no_identifier = {"company": "Nameless SA", "country": "FR", "contact_name": "A", "contact_email": "a@gmail.com"}
    page = await _post(api, owner, "/portal/customers", no_identifier, form="/portal/customers")
    assert (
        page.status_code == 422 and 'id="vat_id-error"' in page.text and "gmail.com is a free-mail domain" in page.text
    )
    # A value the API's schema refuses is said next to its field, in the API's words.
    page = await _post(api, owner, "/portal/customers", {**typed, "country": "France"}, form="/portal/customers")
    assert page.status_code == 422 and 'id="country-error"' in page.text and _value(page, "country") == "France"


async def test_registrations_paginate_filter_by_state_and_one_is_withdrawn(api: Api) -> None:
    _, _, owner = await _owner(api)
    for n in range(21):
        customer = Customer.new(f"Client{n}")
        typed = {k: str(v) for k, v in customer.registration().items()}
        made = await _post(api, owner, "/portal/customers", typed, form="/portal/customers")
        assert made.status_code == 200 and "is registered to you" in made.text, made.text
        api.clock.advance(minutes=1)
    first = await _get(api, owner, "/portal/customers")
    assert first.text.count("Withdraw Client") == 20 and "page 1 of 2" in first.text and "60</td>" in first.text
    assert "Client20 " in first.text and 'href="/portal/customers?page=2"' in first.text
    second = await _get(api, owner, "/portal/customers?page=2")
    assert second.text.count("Withdraw Client") == 1 and "Client0 " in second.text

    withdraw = re.search(r'action="(/portal/customers/[0-9a-f-]+/withdraw)"', second.text)
    assert withdraw
    done = await _post(api, owner, withdraw.group(1), form="/portal/customers")
    assert done.status_code == 200 and "is withdrawn" in done.text
    again = await _post(api, owner, withdraw.group(1), form="/portal/customers")
    assert again.status_code == 409 and "A registration that is withdrawn cannot be withdrawn." in again.text
    withdrawn = await _get(api, owner, "/portal/customers?state=withdrawn")
    assert "Client0 " in withdrawn.text and "Client1 " not in withdrawn.text
    live = await _get(api, owner, "/portal/customers?state=live")
    assert "Client0 " not in live.text and "page 1 of 1" in live.text


async def test_a_lead_is_accepted_and_another_declined_with_deadlines_in_the_users_time_zone(api: Api) -> None:
    pid, _, owner = await _owner(api, country="FR", company="Breizh SARL")
    await api.register(country="FR", company="Next SARL")  # the next in the ranking
    offer = await _lead(api, pid, "Prospect SAS")
    page = await _get(api, owner, "/portal/leads")
    # Offered at 2026-03-02 09:00 UTC, five days to answer: 10:00 in Paris, the user's zone.
    assert "Prospect SAS" in page.text and "2026-03-07 10:00" in page.text and "Europe/Paris" in page.text
    home = await _get(api, owner, "/portal")
    assert "A lead waits for your answer" in home.text and "2026-03-07 10:00" in home.text

    accepted = await _post(api, owner, f"/portal/leads/{offer['id']}/accept", form="/portal/leads")
    assert accepted.status_code == 200 and "The lead is yours" in accepted.text
    customers = await _get(api, owner, "/portal/customers?state=live")
    assert "Prospect SAS" in customers.text
    twice = await _post(api, owner, f"/portal/leads/{offer['id']}/accept", form="/portal/leads")
    assert twice.status_code == 409 and "The offer is accepted." in twice.text

    other = await _lead(api, pid, "Second SAS")
    declined = await _post(
        api, owner, f"/portal/leads/{other['id']}/decline", {"reason": "No consultant free"}, form="/portal/leads"
    )
    assert declined.status_code == 200 and "passes to the next partner" in declined.text
    assert "No consultant free" in declined.text and "declined" in declined.text  # among the past offers
    history = await api.client.get(f"/v1/leads/{other['lead_id']}", headers=api.admin)
    assert [o["state"] for o in history.json()["history"]] == ["declined", "offered"]


async def test_a_form_without_the_sessions_csrf_token_is_refused(api: Api) -> None:
    _, _, owner = await _owner(api)
    fields = {"company": "Contoso SA", "country": "FR", "contact_name": "A", "contact_email": "a@contoso.example"}
    missing = await api.client.post("/portal/customers", data=fields, headers=_cookie(owner))
    assert missing.status_code == 403 and "The form's CSRF token is missing or not this session's." in _text(missing)
    forged = await api.client.post("/portal/customers", data={**fields, "csrf_token": "forged"}, headers=_cookie(owner))
    assert forged.status_code == 403 and "CSRF token" in forged.text
    for path in ("/portal/keys", "/portal/profile", "/portal/team"):
        assert (await api.client.post(path, data={"name": "x"}, headers=_cookie(owner))).status_code == 403
    listed = await _get(api, owner, "/portal/customers")
    assert "Contoso SA" not in listed.text


async def test_another_partners_ids_in_a_url_answer_404(api: Api) -> None:
    theirs, their_key, their_owner = await _owner(api, country="FR")
    _, _, owner = await _owner(api)
    registration = await api.client.post(
        f"/v1/partners/{theirs}/registrations", json=Customer.new().registration(), headers=api.bearer(their_key)
    )
    assert registration.status_code == 201, registration.text
    offer = await _lead(api, theirs)
    keys = await api.client.get(f"/v1/partners/{theirs}/api-keys", headers=api.bearer(their_key))
    key_id = keys.json()["items"][0]["id"]
    their_user = their_owner.user["id"]
    for path in (
        f"/portal/customers/{registration.json()['id']}/withdraw",
        f"/portal/leads/{offer['id']}/accept",
        f"/portal/leads/{offer['id']}/decline",
        f"/portal/keys/{key_id}/revoke",
        f"/portal/team/{their_user}/deactivate",
    ):
        answer = await _post(api, owner, path)
        assert answer.status_code == 404, (path, answer.text)
    assert (await _get(api, owner, "/portal/invoices/1.pdf")).status_code == 404
    # Nothing of theirs changed.
    state = await api.client.get(
        f"/v1/partners/{theirs}/registrations/{registration.json()['id']}", headers=api.bearer(their_key)
    )
    assert state.json()["state"] == "live"
    assert (await _get(api, their_owner, "/portal/keys")).text.count("Revoke ") == 1


async def test_payouts_and_invoices_each_downloadable_once_rendered_and_not_by_another_partner(api: Api) -> None:
    await _publish(api)
    pid, _ = await _partner(api, FR)
    await _earn(api, pid, 25000)
    await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    at(api, "2026-04-20T09:00:00Z")
    await _run(api)
    finance = await make_user(api, Role.PARTNER_FINANCE, pid)
    page = await _get(api, finance, "/portal/payouts")
    assert page.status_code == 200, page.text
    assert "2026-04-25" in page.text and "300.00 EUR" in page.text and "FR…2606" in page.text
    assert "SB-2026-000001" in page.text and "Not rendered yet" in page.text
    number = re.search(r"<td>(SB-2026-\d+)</td>", page.text)
    assert number
    listed = await api.client.get(f"/v1/partners/{pid}/invoices", headers=api.admin)
    invoice_id = listed.json()["items"][0]["id"]
    early = await _get(api, finance, f"/portal/invoices/{invoice_id}.pdf")
    assert early.status_code == 409 and "is not rendered yet" in early.text

    assert await documents.settle(api.app.state.worker) == 1
    page = await _get(api, finance, "/portal/payouts")
    assert f'href="/portal/invoices/{invoice_id}.pdf"' in page.text
    pdf = await _get(api, finance, f"/portal/invoices/{invoice_id}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and f"{number.group(1)}.pdf" in pdf.headers["content-disposition"]
    _, _, stranger = await _owner(api)
    assert (await _get(api, stranger, f"/portal/invoices/{invoice_id}.pdf")).status_code == 404
    sales = await make_user(api, Role.SALES, pid)
    assert (await _get(api, sales, f"/portal/invoices/{invoice_id}.pdf")).status_code == 403


async def test_the_home_page_shows_the_points_at_risk_commission_by_kind_and_a_year_in_a_chart(api: Api) -> None:
    program = Program(api)
    partner, key = await api.register()
    pid = partner["id"]
    customer = Customer.new("Contoso")
    registered = await program.register((pid, key), customer)
    assert registered.status_code == 201, registered.text
    # A Server Business licence (4 points) whose term ends within the 60 days points are at risk.
    term_end = t("2026-04-02T10:00:00Z")
    await program.order(
        customer, [line("server-business", 1, 100000, term_end=term_end)], placed_at="2026-03-03T10:00:00Z"
    )
    owner = await make_user(api, Role.OWNER, pid)  # signed in now: a session idles out
    home = await _get(api, owner, "/portal")
    text = _text(home)
    assert home.status_code == 200 and "Points at risk</dt><dd>4 " in text
    assert f'{customer.company}</td><td>1 × server-business</td><td>2026-04-02</td><td class="n">4</td>' in text
    assert "Commission on a referred customer&#39;s orders" in home.text or "referred customer's orders" in text
    assert '(R11)</td><td class="n">200.00 EUR' in text and "2026-Q1" in text
    # The chart: an image with its title, and its figures in a table beside it, a row per month.
    assert text.count('role="img"') == 2 and '<title id="points-title">Active points' in text
    assert '<td>2026-03</td><td class="n">4</td><td class="n">200.00 EUR</td>' in text
    assert "<td>2025-04</td>" in text and "<td>2026-04</td>" not in text
    assert "Your registration of" not in text  # its window is 60 days: not ending within a week

    # The ledger, by rule.
    adjusted = await api.client.post(
        f"/v1/partners/{pid}/adjustments",
        json={"kind": "money", "amount": 500, "currency": "EUR", "reason": "Launch bonus"},
        headers=api.admin,
    )
    assert adjusted.status_code == 201, adjusted.text
    every = await _get(api, owner, "/portal/ledger?kind=money")
    assert "Launch bonus" in every.text and "200.00 EUR" in every.text
    only = await _get(api, owner, "/portal/ledger?kind=money&rule=ADJ")
    assert "Launch bonus" in only.text and "200.00 EUR" not in only.text
    none = await _get(api, owner, "/portal/ledger?kind=points&rule=R14")
    assert none.status_code == 200 and "No entries of this rule yet" in none.text

    # A week before its window ends, the registration is among what needs doing.
    api.clock.at = t("2026-04-27T09:00:00Z")
    other = Customer.new("Later")
    assert (await program.register((pid, key), other)).status_code == 201
    api.clock.at = t("2026-06-22T09:00:00Z")
    home = await _get(api, await make_user(api, Role.SALES, pid), "/portal")
    assert f"Your registration of <b>{other.company}</b> ends 2026-06-26 11:00 (4 days left)" in home.text


async def test_the_team_is_invited_with_the_roles_the_table_allows_and_a_member_deactivated(api: Api) -> None:
    pid, _, owner = await _owner(api)
    team = await _get(api, owner, "/portal/team")
    assert re.findall(r'<option value="([a-z_]+)"', team.text) == ["owner", "sales", "finance"]
    bad = await _post(api, owner, "/portal/team", {"email": "not an address", "role": "sales"}, form="/portal/team")
    assert bad.status_code == 422 and 'id="email-error"' in bad.text and _value(bad, "email") == "not an address"
    bad_role = await _post(api, owner, "/portal/team", {"email": "r@x.example", "role": "admin"}, form="/portal/team")
    assert bad_role.status_code == 422 and 'id="role-error"' in bad_role.text
    invited = await _post(
        api, owner, "/portal/team", {"email": "ana@alpha.example", "role": "sales", "name": "Ana"}, form="/portal/team"
    )
    assert invited.status_code == 200 and "ana@alpha.example is invited" in invited.text
    again = await _post(
        api, owner, "/portal/team", {"email": "ana@alpha.example", "role": "sales"}, form="/portal/team"
    )
    assert again.status_code == 409 and "has an account already" in again.text and 'id="email-error"' in again.text
    users = await api.client.get(f"/v1/partners/{pid}/users", headers=api.admin)
    ana = next(u for u in users.json()["items"] if u["email"] == "ana@alpha.example")
    assert (ana["role"], ana["status"]) == ("sales", "invited")
    done = await _post(api, owner, f"/portal/team/{ana['id']}/deactivate", form="/portal/team")
    assert done.status_code == 200 and "ana@alpha.example is deactivated" in done.text
    myself = await _post(api, owner, f"/portal/team/{owner.user['id']}/deactivate", form="/portal/team")
    assert myself.status_code == 409 and "A user does not deactivate itself." in myself.text


async def test_api_keys_are_made_shown_once_and_revoked(api: Api) -> None:
    pid, first_key, owner = await _owner(api)
    empty = await _post(api, owner, "/portal/keys", {"name": ""}, form="/portal/keys")
    assert empty.status_code == 422 and 'id="name-error"' in empty.text
    made = await _post(api, owner, "/portal/keys", {"name": "crm integration"}, form="/portal/keys")
    secret = re.search(r"<code>(qpp_[A-Za-z0-9_-]+)</code>", made.text)
    assert made.status_code == 200 and secret and "shown this once" in made.text
    works = await api.client.get(f"/v1/partners/{pid}", headers=api.bearer(secret.group(1)))
    assert works.status_code == 200
    listed = await _get(api, owner, "/portal/keys")
    assert secret.group(1) not in listed.text and "crm integration" in listed.text
    revoke = re.search(
        r'action="(/portal/keys/[0-9a-f-]+/revoke)">\s*<input[^>]*>\s*<button[^>]*>Revoke crm', listed.text
    )
    assert revoke
    revoked = await _post(api, owner, revoke.group(1), form="/portal/keys")
    assert revoked.status_code == 200 and "is revoked" in revoked.text
    assert (await api.client.get(f"/v1/partners/{pid}", headers=api.bearer(secret.group(1)))).status_code == 401
    assert (await api.client.get(f"/v1/partners/{pid}", headers=api.bearer(first_key))).status_code == 200


async def test_the_directory_profile_is_edited_and_its_review_shown(api: Api) -> None:
    _, _, owner = await _owner(api)
    misspelt = {"description": "We install QALYPTUS reports.", "services": "training", "languages": "de, en"}
    refused = await _post(api, owner, "/portal/profile", {**misspelt, "listed": "on"}, form="/portal/profile")
    assert refused.status_code == 422 and 'id="description-error"' in refused.text
    assert "description spells the vendor's name as 'QALYPTUS'" in _text(refused)
    assert "We install QALYPTUS reports." in refused.text  # what was typed is kept
    saved = await _post(
        api,
        owner,
        "/portal/profile",
        {"description": "We install Qalyptus reports.", "services": "training\nimplementation", "languages": "de, en",
         "listed": "on"},
        form="/portal/profile",
    )  # fmt: skip
    assert saved.status_code == 200 and "once Qalyptus has reviewed it" in saved.text
    assert "Description and services</td><td>" in saved.text and "<td>pending</td>" in saved.text
    bad_site = await _post(
        api, owner, "/portal/profile", {"website": "not a site", "listed": "on"}, form="/portal/profile"
    )
    assert bad_site.status_code == 422 and 'id="website-error"' in bad_site.text


async def test_every_portal_page_passes_axe_and_fits_a_phone(live_api: Api, browser: Browser) -> None:
    api = live_api
    pid, key, owner = await _owner(api, company="Phone Width GmbH")
    registered = await api.client.post(
        f"/v1/partners/{pid}/registrations", json=Customer.new().registration(), headers=api.bearer(key)
    )
    assert registered.status_code == 201, registered.text
    await _lead(api, pid, "Prospect With A Rather Long Company Name SAS")
    adjusted = await api.client.post(
        f"/v1/partners/{pid}/adjustments",
        json={"kind": "money", "amount": 123456, "currency": "EUR", "reason": "Launch bonus"},
        headers=api.admin,
    )
    assert adjusted.status_code == 201, adjusted.text
    await browser.open("/sign-in")
    await browser.run(lambda: browser.driver.add_cookie({"name": "partners_session", "value": owner.cookie}))
    violations: list[str] = []
    for path in PAGES:
        await browser.open(path)
        assert await browser.path() == path, path
        violations += [f"{path}: {v}" for v in await browser.look(path.strip("/").replace("/", "-"))]
    await browser.open("/portal/keys")
    await browser.fill({"name": "crm integration"})
    await browser.press("Make the key")
    assert "shown this once" in await browser.text()
    violations += [f"key made: {v}" for v in await browser.look("key-made")]
    await browser.open("/portal/customers")
    await browser.fill({"company": "Nameless SA", "country": "FR", "contact_name": "A", "contact_email": "a@gmail.com"})
    await browser.press("Register the customer")
    assert "free-mail domain" in await browser.text()
    violations += [f"registration refused: {v}" for v in await browser.look("registration-refused")]
    assert violations == []
