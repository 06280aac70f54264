"""Pages in a real browser: Debian's chromium, driven by Selenium through Debian's chromium-driver,
against the app served on a local port with its own worker; mail read from the test's SMTP server;
every page checked by axe-core (a local copy of its npm package, which `.ci/run` installs) and saved as
a screenshot in the test's output folder. The browser's calls block, so they run in a thread while the
served app goes on in the test's event loop."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from typing import Any

import httpx

from tests.browser import GOOD, Browser, browser, link_in, live_settings_overrides, mail_to
from tests.conftest import Api
from tests.smtp import Mailbox, smtp_server, smtp_settings

__all__ = ["browser", "live_settings_overrides"]  # fixtures


async def test_a_vendor_admin_approves_an_application_and_its_owner_signs_in_to_the_portal(
    live_api: Api, browser: Browser
) -> None:
    api = live_api
    async with smtp_server() as box:
        for name, value in {**smtp_settings(box), "public_url": browser.base}.items():
            setattr(api.app.state.settings, name, value)

        # The vendor's admin: invited, sets a password on the invitation page, signs in.
        invited = await api.client.post(
            "/v1/users", json={"email": "ada@qalyptus.example.com", "role": "admin"}, headers=api.admin
        )
        assert invited.status_code == 201, invited.text
        invitation = await mail_to(box, "ada@qalyptus.example.com")
        await browser.open(link_in(box, invitation))
        assert "Set your password" in await browser.text()
        violations = await browser.look("invitation")
        await browser.fill({"name": "Ada Lovelace", "password": "password1234"})
        await browser.press("Activate my account")
        page = await browser.text()
        assert "too easy to guess" in page  # said next to the field; the name typed is kept
        assert await browser.run(lambda: browser.driver.find_element("name", "name").get_attribute("value")) == (
            "Ada Lovelace"
        )
        violations += await browser.look("invitation-refused")
        await browser.fill({"password": GOOD})
        await browser.press("Activate my account")
        assert (await browser.path()).startswith("/sign-in")
        assert "Your account is active" in await browser.text()
        violations += await browser.look("sign-in")
        await browser.fill({"email": "ada@qalyptus.example.com", "password": GOOD})
        await browser.press("Sign in")
        assert await browser.path() == "/console"

        # An application waits; Ada approves it.
        manual = await api.client.patch("/v1/program/settings", json={"auto_approve": False}, headers=api.admin)
        assert manual.status_code == 200, manual.text
        registration = api.registration(company="Reseller Oy", contact_email="eero@reseller.example.com")
        applied = await api.client.post("/v1/partners", json=registration)
        assert applied.status_code == 201, applied.text
        await browser.open("/console")
        console = await browser.text()
        assert "Reseller Oy" in console and "Partners waiting for approval\n1" in console
        violations += await browser.look("console")
        await browser.press("Approve Reseller Oy")
        approved = await browser.text()
        assert "Reseller Oy is approved" in approved and "Affiliate\n1" in approved  # the chart's figures
        violations += await browser.look("console-approved")

        # Its contact, invited as owner by mail, activates the account and reads the portal.
        owner_invitation = await mail_to(box, "eero@reseller.example.com")
        assert "as owner of Reseller Oy" in box.text(owner_invitation)
        await browser.press("Sign out")
        assert (await browser.path()).startswith("/sign-in")
        await browser.open(link_in(box, owner_invitation))
        await browser.fill({"password": GOOD})
        await browser.press("Activate my account")
        await browser.fill({"email": "eero@reseller.example.com", "password": GOOD})
        await browser.press("Sign in")
        assert await browser.path() == "/portal"
        portal = await browser.text()
        assert "Reseller Oy" in portal and "Level" in portal and "Affiliate" in portal
        violations += await browser.look("portal")

        # The ledger: every amount with the rule that gave it and why, in the user's time zone.
        partner_id = applied.json()["partner"]["id"]
        adjusted = await api.client.post(
            f"/v1/partners/{partner_id}/adjustments",
            json={"kind": "money", "amount": 12345, "currency": "EUR", "reason": "Launch bonus"},
            headers=api.admin,
        )
        assert adjusted.status_code == 201, adjusted.text
        await browser.open("/portal/ledger?kind=money")
        ledger = await browser.text()
        assert "Launch bonus" in ledger and "+123.45 EUR" in ledger and "ADJ" in ledger
        violations += await browser.look("ledger")
        await browser.open("/portal/statements")
        assert "No statement yet" in await browser.text()
        violations += await browser.look("statements")

        # The account: a wrong time zone said next to its field; notifications turned off by unticking.
        await browser.open("/account")
        await browser.fill({"time_zone": "Mars/Olympus"})
        await browser.press("Save")
        assert "not an IANA time zone" in await browser.text()
        violations += await browser.look("account-refused")
        await browser.fill({"time_zone": "America/New_York"})
        await browser.run(lambda: browser.driver.find_element("id", "n-level_changed").click())
        await browser.press("Save")
        assert "Saved." in await browser.text()
        violations += await browser.look("account")

        signed_in = await browser.run(lambda: browser.driver.get_cookie("partners_session"))
        mine = await api.client.get("/v1/account", headers={"Cookie": f"partners_session={signed_in['value']}"})
        assert mine.json()["time_zone"] == "America/New_York" and mine.json()["notifications_off"] == ["level_changed"]

        # A partner's user does not reach the console; a form without the session's token is refused.
        await browser.open("/console")
        assert await browser.path() == "/portal"
        cookie = await browser.run(lambda: browser.driver.get_cookie("partners_session"))
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        async with httpx.AsyncClient(base_url=browser.base, cookies={"partners_session": cookie["value"]}) as direct:
            forged = await direct.post("/sign-out", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        headers = (await api.client.get("/sign-in")).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert violations == []


async def test_a_partners_finance_user_reads_its_statements_and_downloads_one_as_csv_from_the_portal(
    api: Api,
) -> None:
    """Without a browser: the portal's statements page and its CSV, as a signed-in user's cookie gets them."""
    from app.domain.rules.roles import Role
    from tests.test_payouts import _close_and_approve, _earn
    from tests.test_people import make_user

    partner, _ = await api.register(company="Delta Ltd")
    await _earn(api, partner["id"], 45678)
    [statement] = await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    finance = await make_user(api, Role.PARTNER_FINANCE, partner["id"])
    sales = await make_user(api, Role.SALES, partner["id"])
    cookie = {"Cookie": f"partners_session={finance.cookie}"}
    page = await api.client.get("/portal/statements", headers=cookie)
    assert page.status_code == 200 and "2026-Q1" in page.text and "456.78 EUR" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    sheet = await api.client.get(f"/portal/statements/{statement['id']}.csv", headers=cookie)
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    assert "45678" in sheet.text and "2026-Q1" in sheet.text
    # Sales does not read statements; nobody reads another partner's; no session, no page.
    refused = await api.client.get("/portal/statements", headers={"Cookie": f"partners_session={sales.cookie}"})
    assert refused.status_code == 403 and "does not read statements" in refused.text
    other, _ = await api.register(company="Echo Ltd")
    stranger = await make_user(api, Role.OWNER, other["id"])
    foreign = await api.client.get(
        f"/portal/statements/{statement['id']}.csv", headers={"Cookie": f"partners_session={stranger.cookie}"}
    )
    assert foreign.status_code == 404
    anonymous = await api.client.get("/portal/statements", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/sign-in?next=/portal/statements"


async def test_the_application_page_refuses_as_the_api_does_next_to_each_field_and_registers_the_partner(
    api: Api,
) -> None:
    """R20, R22: the page reads the form with the API's request model and registers with its use case."""
    page = await api.client.get("/apply")
    assert page.status_code == 200 and "2026-01" in page.text and 'name="accept"' in page.text
    bad = {"company": "Hill Ltd", "country": "Narnia", "contact_name": "Ann Hill", "contact_email": "ann@hill.example"}
    refused = await api.client.post("/apply", data=bad)
    assert refused.status_code == 422
    by_api = await api.client.post("/v1/partners", json=api.registration(**{**bad, "languages": []}))
    [said] = [e["message"] for e in by_api.json()["errors"] if e["field"] == "body.country"]
    assert 'id="country-error">' + html.escape(said) in refused.text  # the API's words, next to the field
    assert "Tick the box to accept the partner agreement 2026-01." in refused.text
    assert 'value="Ann Hill"' in refused.text and 'value="Narnia"' in refused.text  # what was typed is kept
    assert (await api.client.get("/v1/partners?q=Hill", headers=api.admin)).json()["items"] == []

    taken = api.registration()
    await api.register(**taken)
    again = await api.client.post(
        "/apply", data={**bad, "country": "GB", "contact_email": taken["contact_email"], "accept": "2026-01"}
    )
    assert again.status_code == 409 and 'id="contact_email-error"' in again.text

    done = await api.client.post(
        "/apply", data={**bad, "country": "gb", "languages": "en, fr", "website": "", "accept": "2026-01"}
    )
    assert done.status_code == 201, done.text
    assert "Welcome, Hill Ltd" in done.text and "ann@hill.example" in done.text
    key = re.search(r'<code class="secret">([^<]+)</code>', done.text)
    assert key is not None
    mine = await api.client.get("/v1/partners?q=Hill", headers=api.admin)
    [partner] = mine.json()["items"]
    assert (partner["country"], partner["languages"], partner["status"]) == ("GB", ["en", "fr"], "active")
    own = await api.client.get(f"/v1/partners/{partner['id']}", headers=api.bearer(html.unescape(key.group(1))))
    assert own.status_code == 200  # the key shown once is the partner's own


async def test_a_refusal_on_a_page_is_a_page_saying_why_and_the_api_still_answers_problem_json(api: Api) -> None:
    from app.domain.rules.roles import Role
    from tests.test_people import make_user

    admin = await make_user(api, Role.ADMIN)
    cookie = {"Cookie": f"partners_session={admin.cookie}"}
    assert (await api.client.get("/", headers=cookie, follow_redirects=False)).headers["location"] == "/console"
    assert (await api.client.get("/", follow_redirects=False)).headers["location"] == "/sign-in"
    forged = await api.client.post("/sign-out", data={"csrf_token": "forged"}, headers=cookie)
    assert forged.status_code == 403 and forged.headers["content-type"].startswith("text/html")
    assert "CSRF token is missing or not this session&#39;s" in forged.text
    missing = await api.client.get("/console/no-such-page", headers=cookie)
    assert missing.status_code == 404 and "There is no route GET /console/no-such-page." in missing.text
    unreadable = await api.client.post(
        "/console/partners/not-an-id/approve", data={"reason": "x", "csrf_token": admin.csrf}, headers=cookie
    )
    assert unreadable.status_code == 422 and "partner_id" in unreadable.text and "<h1>" in unreadable.text
    assert "script-src 'self'" in unreadable.headers["content-security-policy"]
    incomplete = await api.client.post("/sign-in", data={"email": "ada@example.com"})  # no password
    assert incomplete.status_code == 422 and "body.password: " in incomplete.text and "json" not in incomplete.text
    api_answer = await api.client.get("/v1/no-such-route", headers=api.admin)
    assert api_answer.status_code == 404 and api_answer.headers["content-type"] == "application/problem+json"


async def _applied(api: Api, accepted: httpx.Response) -> dict[str, Any]:
    """The stored store event once the served app's worker has applied it: polled through the API with
    a bound (another process's work; the clock is not what it waits on)."""
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 60
    while True:
        stored = (await api.client.get(accepted.json()["url"], headers=api.admin)).json()
        if stored["status"] != "accepted":
            return dict(stored)
        assert time.monotonic() < deadline, f"the store event was not applied: {stored}"
        await asyncio.sleep(0.05)


async def _activate(browser: Browser, box: Mailbox, address: str, *, count: int = 1) -> None:
    """Open the invitation mailed to `address`, set the password, and sign in."""
    await browser.open(link_in(box, await mail_to(box, address, count)))
    await browser.fill({"password": GOOD})
    await browser.press("Activate my account")
    await _sign_in(browser, address)


async def _sign_in(browser: Browser, address: str) -> None:
    await browser.open("/sign-in")
    await browser.fill({"email": address, "password": GOOD})
    await browser.press("Sign in")


async def test_a_partner_applies_is_approved_registers_accepts_a_lead_earns_and_downloads_its_statement(
    live_api: Api, browser: Browser
) -> None:
    """The flow of issue "Pages people use", in the browser, with axe-core on every page."""
    from tests.program import Customer, line, order_event, t

    api = live_api
    violations: list[str] = []
    async with smtp_server() as box:
        for name, value in {**smtp_settings(box), "public_url": browser.base}.items():
            setattr(api.app.state.settings, name, value)
        other, other_key = await api.register(company="Rival Conseil SAS")  # approved at once
        manual = await api.client.patch("/v1/program/settings", json={"auto_approve": False}, headers=api.admin)
        assert manual.status_code == 200, manual.text

        # A partner applies on the public page; its first key is shown once.
        await browser.open("/apply")
        violations += await browser.look("apply")
        await browser.fill(
            {
                "company": "Brise Conseil SARL",
                "country": "FR",
                "contact_name": "Lea Brise",
                "contact_email": "lea@brise-conseil.example.com",
                "languages": "fr en",
            }
        )
        await browser.press("Apply")
        assert "Tick the box to accept the partner agreement 2026-01." in await browser.text()
        violations += await browser.look("apply-refused")
        await browser.run(lambda: browser.driver.find_element("id", "accept").click())
        await browser.press("Apply")
        applied = await browser.text()
        assert "Application received, Brise Conseil SARL" in applied
        violations += await browser.look("applied")
        key = await browser.run(lambda: browser.driver.find_element("css selector", "code.secret").text)
        [partner] = (await api.client.get("/v1/partners?q=Brise", headers=api.admin)).json()["items"]
        pid = partner["id"]
        assert partner["status"] == "pending"

        # A partner manager, invited by mail, approves it in the console.
        invited = await api.client.post(
            "/v1/users", json={"email": "max@qalyptus.example.com", "role": "partner_manager"}, headers=api.admin
        )
        assert invited.status_code == 201, invited.text
        await _activate(browser, box, "max@qalyptus.example.com")
        assert await browser.path() == "/console"
        await browser.press("Approve Brise Conseil SARL")
        assert "Brise Conseil SARL is approved" in await browser.text()
        violations += await browser.look("approved")
        # The partner manager does not approve statements: a direct request with its own session and
        # CSRF token is refused by the role table before anything is looked up.
        await browser.open("/console/statements")
        manager = await browser.run(lambda: browser.driver.get_cookie("partners_session"))
        token = await browser.run(
            lambda: browser.driver.find_element("css selector", "input[name=csrf_token]").get_attribute("value")
        )
        async with httpx.AsyncClient(base_url=browser.base, cookies={"partners_session": manager["value"]}) as direct:
            refused = await direct.post(f"/console/statements/{uuid.uuid4()}/approve", data={"csrf_token": token})
        assert refused.status_code == 403 and "role may not do this (statements.write)" in refused.text
        await browser.press("Sign out")

        # The owner's invitation arrives by mail; the owner sets a password and signs in.
        await _activate(browser, box, "lea@brise-conseil.example.com")
        assert await browser.path() == "/portal"
        violations += await browser.look("portal-first")

        # Another partner registered Contoso first: the conflict is explained in the program's words.
        contoso = Customer.new("Contoso")
        taken = await api.client.post(
            f"/v1/partners/{other['id']}/registrations", json=contoso.registration(), headers=api.bearer(other_key)
        )
        assert taken.status_code == 201, taken.text
        by_api = await api.client.post(
            f"/v1/partners/{pid}/registrations", json=contoso.registration(), headers=api.bearer(key)
        )
        assert by_api.status_code == 409, by_api.text
        await browser.open("/portal/customers")
        await browser.fill({k: str(v) for k, v in contoso.registration().items()})
        await browser.press("Register the customer")
        assert by_api.json()["detail"] in await browser.text()
        violations += await browser.look("customer-conflict")
        fabrikam = Customer.new("Fabrikam")
        await browser.fill({k: str(v) for k, v in fabrikam.registration().items()})
        await browser.press("Register the customer")
        assert "is registered to you" in await browser.text()
        violations += await browser.look("customers")

        # A lead offered to it, accepted before its deadline.
        lead = await api.client.post(
            "/v1/leads",
            json={
                "company": "Northwind SARL",
                "country": "FR",
                "contact_name": "Louis",
                "contact_email": "louis@northwind.example.com",
                "products": ["server-business"],
            },
            headers=api.admin,
        )
        assert lead.status_code == 201, lead.text
        offered = await api.client.post(
            f"/v1/leads/{lead.json()['id']}/assign", json={"partner_id": pid}, headers=api.admin
        )
        assert offered.status_code in (200, 201), offered.text
        await browser.open("/portal")
        assert "A lead waits for your answer: Northwind SARL" in await browser.text()
        await browser.open("/portal/leads")
        violations += await browser.look("leads")
        await browser.press("Accept Northwind SARL")
        assert "Northwind SARL" in await browser.text()
        violations += await browser.look("lead-accepted")

        # Fabrikam buys at the store: a signed webhook, applied by the served app's worker.
        order = order_event(fabrikam, [line("server-business", 1, 100000)], placed_at=t("2026-03-02T09:20:00Z"))
        api.clock.at = t("2026-03-02T09:30:00Z")  # within the sessions' idle hour
        stored = await _applied(api, await api.deliver(order, "msg_e2e_1"))
        assert stored["status"] == "applied", stored
        await browser.open("/portal")
        home = await browser.text()
        assert "Silver" in home and "Active points\n4" in home, home  # R01, R02
        assert "200.00 EUR" in home, home  # R11: 20 % of 1,000.00
        violations += await browser.look("portal-earned")
        await browser.open("/portal/ledger?kind=money")
        ledger = await browser.text()
        assert "+200.00 EUR" in ledger and order["data"]["order_id"] in ledger  # R21: the rule, why, the order
        violations += await browser.look("ledger")

        # The quarter closes; the vendor's finance approves the statement in the console.
        rival_earned = await api.client.post(
            f"/v1/partners/{other['id']}/adjustments",
            json={"kind": "money", "amount": 5000, "currency": "EUR", "reason": "Referral bonus"},
            headers=api.admin,
        )
        assert rival_earned.status_code == 201, rival_earned.text
        api.clock.at = t("2026-04-01T09:00:00Z")
        closed = await api.client.post("/v1/quarters/2026-Q1/close", headers=api.admin)
        assert closed.status_code == 200, closed.text
        invited = await api.client.post(
            "/v1/users", json={"email": "fin@qalyptus.example.com", "role": "finance"}, headers=api.admin
        )
        assert invited.status_code == 201, invited.text
        await _activate(browser, box, "fin@qalyptus.example.com")  # the owner's session has ended meanwhile
        await browser.open("/console/statements")
        violations += await browser.look("console-statements")
        await browser.press("Approve Brise Conseil SARL 2026-Q1")
        assert "approved" in (await browser.text()).lower()
        violations += await browser.look("statement-approved")
        await browser.press("Sign out")

        # The owner downloads it from the portal; another partner's statement is not reachable by its URL.
        await _sign_in(browser, "lea@brise-conseil.example.com")
        await browser.open("/portal/statements")
        violations += await browser.look("statements")
        href = await browser.run(
            lambda: browser.driver.find_element("link text", "CSV of 2026-Q1 EUR").get_attribute("href")
        )
        cookie = await browser.run(lambda: browser.driver.get_cookie("partners_session"))
        async with httpx.AsyncClient(cookies={"partners_session": cookie["value"]}) as direct:
            sheet = await direct.get(href)
            assert sheet.status_code == 200 and "20000" in sheet.text and "2026-Q1" in sheet.text
            [rival] = [s for s in closed.json()["statements"] if s["partner_id"] == other["id"]]
            assert (await direct.get(f"{browser.base}/portal/statements/{rival['id']}.csv")).status_code == 404
            # CSRF through a direct request: a form posted without the session's token is refused.
            forged = await direct.post(f"{browser.base}/portal/keys", data={"name": "x", "csrf_token": "forged"})
            assert forged.status_code == 403
        # CSRF through the browser: the page's token altered before the form is sent.
        await browser.open("/account")
        await browser.run(
            lambda: browser.driver.execute_script(
                "document.querySelector('form:not(.signout) input[name=csrf_token]').value = 'forged';"
            )
        )
        await browser.press("Save")
        assert "CSRF token is missing or not this session's" in await browser.text()
        violations += await browser.look("csrf-refused")
        # A partner's user who edits the URL to the console is sent back to its portal.
        await browser.open("/console/partners")
        assert await browser.path() == "/portal"
    assert violations == []
