"""The service runs as the least-privilege role the README describes, with the README's GRANTs."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pyotp
import pytest
from sqlalchemy import update

from app.db.session import unit_of_work
from app.db.tables import MailMessage
from app.main import create_app
from app.routers.deps import CSRF_HEADER, SESSION_COOKIE
from app.worker import documents, previews
from tests.conftest import Api, MovableClock, _first_admin_key, make_settings
from tests.program import Customer, Program, line
from tests.receiver import Receiver, serve
from tests.test_people import GOOD, sign_in, stored_link_token

README = Path(__file__).resolve().parent.parent / "README.md"
PAYOUT_DEBTOR = {
    "payout_debtor_name": "Qalyptus SAS",
    "payout_debtor_iban": "FR1420041010050500013M02606",
    "payout_debtor_bic": "PSSTFRPP",
}


def readme_grants(role: str, database: str) -> list[str]:
    """The README's GRANT statements, for this role and database."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [grants] = [b for b in blocks if "GRANT" in b]
    grants = re.sub(r"\bpartners_app\b", role, grants)
    grants = re.sub(r"\bDATABASE partners\b", f'DATABASE "{database}"', grants)
    return [s.strip() for s in grants.split(";") if s.strip()]


@asynccontextmanager
async def _as_the_role(committing_database_url: str, clock: MovableClock) -> AsyncIterator[tuple[Api, str]]:
    """The app served as a role of this run's own with the README's grants; yields the API and the
    role's DSN. The role is dropped at the end."""
    database = committing_database_url.rsplit("/", 1)[1]
    owner_dsn = committing_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    # Roles are cluster-wide: a name of this run's own, dropped at the end.
    role = f"partners_app_{uuid.uuid4().hex[:12]}"
    owner = await asyncpg.connect(owner_dsn)
    try:
        await owner.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role} LOGIN; END IF; END $$"
        )
        for statement in readme_grants(role, database):
            await owner.execute(statement)
        app_url = committing_database_url.replace("postgres@", f"{role}@", 1)
        assert role in app_url
        application = create_app(make_settings(app_url, **PAYOUT_DEBTOR), clock=clock)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                key = await _first_admin_key(application.state.session_factory, clock.now())
                api = Api(client=client, connection=None, clock=clock, app=application, admin_key=key)
                yield api, app_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    finally:
        await owner.execute(f"DROP OWNED BY {role}")
        await owner.execute(f"DROP ROLE IF EXISTS {role}")
        await owner.close()


@pytest.mark.parametrize("backend", ["postgres"])
async def test_webhooks_quarter_close_and_replay_run_as_the_least_privilege_role(
    backend: str, committing_database_url: str, clock: MovableClock
) -> None:
    async with _as_the_role(committing_database_url, clock) as (api, dsn):
        await _program_as_the_role(api)
        await _the_role_cannot(dsn)


async def _program_as_the_role(api: Api) -> None:
    program = Program(api)
    p = await program.partner("2026-01-01T09:00:00Z")
    c = Customer.new()
    assert (await program.register(p, c, at="2026-01-02T09:00:00Z")).status_code == 201
    await program.order(c, [line("desktop", 2, 96000)], placed_at="2026-02-01T10:00:00Z")
    parked = await program.order(c, [line("cloud-premium", 1, 50000)], placed_at="2026-02-02T10:00:00Z", expect=202)
    added = await api.client.post("/v1/program/skus", json={"sku": "cloud-premium", "points": 6}, headers=api.admin)
    assert added.status_code == 201, added.text
    replayed = await api.client.post(f"/v1/webhook-events/{parked['receipt']['event_id']}/replay", headers=api.admin)
    assert replayed.status_code == 200 and replayed.json()["status"] == "applied", replayed.text
    program.at("2026-04-02T00:00:00Z")
    closed = await api.client.post("/v1/quarters/2026-Q1/close", headers=api.admin)
    assert closed.status_code == 200, closed.text
    [statement] = closed.json()["statements"]
    assert statement["payable_amount"] == 19200 + 10000
    approved = await api.client.post(f"/v1/statements/{statement['id']}/approve", headers=api.admin)
    assert approved.status_code == 200, approved.text
    paid = await api.client.post(
        f"/v1/statements/{statement['id']}/mark-paid",
        json={"payment_reference": "PAY-1"},
        headers={**api.admin, "Idempotency-Key": "pay-1"},
    )
    assert paid.status_code == 200, paid.text
    assert await program.total_points(p) == 2 + 6
    malformed = b'{"type": "order.paid", "data": {"order_id": 7}}'
    rejected = await api.client.post("/v1/webhooks/store", content=malformed, headers=api.signed("msg_lp_1", malformed))
    assert rejected.status_code == 422, rejected.text


async def _the_role_cannot(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in (
            "UPDATE money_entries SET amount = amount + 1",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "DELETE FROM statements",
            "CREATE TABLE intruder (id int)",
            "ALTER TABLE partners ADD COLUMN intruder int",
            "DROP TRIGGER money_entries_no_update ON money_entries",
        ):
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.execute(statement)
        # What the role may write in general, the triggers refuse for history and closed periods.
        closed = "WHERE quarter = '2026-Q1'"
        for statement in (
            f"UPDATE quarter_closes SET quarter = '2025-Q4' {closed}",
            f"UPDATE quarter_closes SET statements = statements + 1 {closed}",
            f"UPDATE statements SET payable_amount = payable_amount + 1 {closed}",
            f"UPDATE statements SET status = 'approved' {closed}",
            "INSERT INTO statements (id, partner_id, quarter, currency, status, opening_balance, lines_total, "
            "closing_balance, payable_amount, payout_date, created_at) SELECT gen_random_uuid(), partner_id, "
            f"quarter, 'USD', 'draft', 0, 500, 500, 500, payout_date, created_at FROM statements {closed}",
            "INSERT INTO statement_lines (statement_id, money_entry_id, amount) "
            "SELECT statement_id, money_entry_id, 500 FROM statement_lines",
            "UPDATE rejected_webhook_events SET body = '{}'",
            "UPDATE partner_status_changes SET reason = 'rewritten'",
            "UPDATE agreement_acceptances SET accepted_at = accepted_at",
            "UPDATE program_terms_versions SET published_by = 'someone else'",
            "UPDATE program_terms_versions SET terms = jsonb_set(terms::jsonb, '{points_per_sku,desktop}', '40')::json",
            "UPDATE webhook_events SET body = '{}'",
        ):
            async with conn.transaction():  # each in its own transaction: a refusal aborts it
                with pytest.raises(asyncpg.exceptions.RestrictViolationError):
                    await conn.execute(statement)
    finally:
        await conn.close()


# --- every operation of the API, as the role -------------------------------------------------------


class Calls:
    """Every request the API answers, by operation (matched against the OpenAPI document's paths)."""

    def __init__(self, openapi: dict[str, Any]) -> None:
        self.operations: dict[str, tuple[str, re.Pattern[str]]] = {}
        for path, methods in openapi["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
            for method, operation in methods.items():
                self.operations[operation["operationId"]] = (method.upper(), pattern)
        # Literal paths win over templated ones (`/v1/statements/bulk-approve` is not a statement id).
        self._order = sorted(self.operations, key=lambda o: self.operations[o][1].pattern.count("[^/]+"))
        self.answers: dict[str, list[int]] = {}
        self.server_errors: list[str] = []

    async def record(self, response: httpx.Response) -> None:
        request = response.request
        for operation in self._order:
            method, pattern = self.operations[operation]
            if method == request.method and pattern.match(request.url.path):
                self.answers.setdefault(operation, []).append(response.status_code)
                break
        else:
            raise AssertionError(f"{request.method} {request.url.path} is no operation of the OpenAPI document")
        if response.status_code >= 500:
            await response.aread()
            self.server_errors.append(f"{request.method} {request.url.path}: {response.status_code} {response.text}")

    def without_success(self) -> list[str]:
        return sorted(o for o in self.operations if not any(200 <= s < 300 for s in self.answers.get(o, [])))


@pytest.mark.parametrize("backend", ["postgres"])
async def test_every_operation_succeeds_as_the_least_privilege_role(
    backend: str, committing_database_url: str, clock: MovableClock
) -> None:
    """The happy path of every operation in the OpenAPI document, as the README's role: none answers
    5xx, and each answers a success at least once (a new operation without a call here fails)."""
    async with _as_the_role(committing_database_url, clock) as (api, _dsn), serve(api.clock) as receiver:
        calls = Calls(api.app.openapi())
        api.client.event_hooks["response"].append(calls.record)
        await _every_operation(api, receiver)
    assert calls.server_errors == []
    assert calls.without_success() == []


async def _every_operation(api: Api, receiver: Receiver) -> None:
    program = Program(api)
    admin = api.admin
    c = api.client

    async def ok(method: str, url: str, *, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        """One call that must succeed (any 2xx: which one is each operation's own tests' business)."""
        response = await c.request(method, url, headers=headers if headers is not None else admin, **kw)
        assert 200 <= response.status_code < 300, f"{method} {url}: {response.status_code} {response.text}"
        return response.json() if response.headers.get("content-type", "").endswith("json") else response.text

    await ok("GET", "/health/live", headers={})
    await ok("GET", "/health/ready", headers={})

    # Partners: two active ones, then one waiting for approval.
    a_id, a_key = await program.partner("2026-01-05T09:00:00Z")
    b_id, b_key = await program.partner("2026-01-05T10:00:00Z")
    a = api.bearer(a_key)
    await ok("PATCH", "/v1/program/settings", json={"auto_approve": False})
    pending, pending_key = await api.register()
    await ok("POST", f"/v1/partners/{pending['id']}/approve", json={"reason": "checked"})
    await ok("PATCH", "/v1/program/settings", json={"auto_approve": True})
    await ok("GET", "/v1/program/settings")
    await ok("GET", "/v1/partners")
    await ok("GET", f"/v1/partners/{a_id}", headers=a)
    await ok("PATCH", f"/v1/partners/{a_id}", json={"contact_name": "Ada Partner"}, headers=a)
    await ok("GET", f"/v1/partners/{a_id}/status-history")
    await ok("GET", f"/v1/partners/{a_id}/standing", headers=a)
    await ok("GET", f"/v1/partners/{a_id}/identifiers", headers=a)
    await ok("GET", f"/v1/partners/{a_id}/agreement-acceptances", headers=a)
    await ok("POST", f"/v1/partners/{a_id}/agreement-acceptances", json={"version": "2026-01"}, headers=a)
    # Payee details and the self-billing agreement.
    await ok("POST", "/v1/self-billing-agreements", json={"version": "sb-1", "title": "Self-billing"})
    await ok("GET", "/v1/self-billing-agreements", headers=a)
    await ok("GET", "/v1/self-billing-agreements/current")
    await ok("POST", f"/v1/partners/{a_id}/self-billing-acceptances", json={"version": "sb-1"}, headers=a)
    await ok("GET", f"/v1/partners/{a_id}/self-billing-acceptances", headers=a)
    payee = {
        "legal_name": "Ada Partner GmbH",
        "address_line1": "Hohe Straße 1",
        "postal_code": "50667",
        "city": "Köln",
        "country": "DE",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "vat_registered": False,
    }
    await ok("PUT", f"/v1/partners/{a_id}/payee-details", json=payee, headers=a)
    await ok("GET", f"/v1/partners/{a_id}/payee-details")
    keys = await ok("GET", f"/v1/partners/{a_id}/api-keys", headers=a)
    extra = await ok("POST", f"/v1/partners/{a_id}/api-keys", json={"name": "crm"}, headers=a)
    rotated = await ok("POST", f"/v1/partners/{a_id}/api-keys/{extra['id']}/rotate", headers=a)
    await ok("DELETE", f"/v1/partners/{a_id}/api-keys/{rotated['id']}", headers=a)
    assert keys["items"]

    # Agreements and keys of the admin.
    await ok("GET", "/v1/agreements")
    await ok("GET", "/v1/agreements/current", headers={})
    await ok(
        "POST",
        "/v1/agreements",
        json={"version": "2026-07", "title": "July", "accept_by": "2026-09-01T00:00:00Z"},
    )
    await ok("GET", "/v1/api-keys")
    store_key = await api.issue_key("store", ["store"])
    spare = await ok("POST", "/v1/api-keys", json={"kind": "admin", "name": "spare", "scopes": ["read"]})
    await ok("DELETE", f"/v1/api-keys/{spare['id']}")

    # Customers: registrations, imports, the sales-process flag.
    c1, c2, c3 = Customer.new("Alpha"), Customer.new("Beta"), Customer.new("Gamma")
    registered = await ok("POST", f"/v1/partners/{a_id}/registrations", json=c1.registration(), headers=a)
    withdrawn = await ok("POST", f"/v1/partners/{a_id}/registrations", json=c2.registration(), headers=a)
    await ok("POST", f"/v1/partners/{a_id}/registrations/{withdrawn['id']}/withdraw", headers=a)
    await ok("GET", f"/v1/partners/{a_id}/registrations", headers=a)
    await ok("GET", f"/v1/partners/{a_id}/registrations/{registered['id']}", headers=a)
    assert (await program.register((b_id, b_key), c3)).status_code == 201
    await ok(
        "POST",
        "/v1/customer-imports",
        json={"customers": [{"company": "Delta AG", "country": "DE", "domain": "delta-ag.example"}]},
    )
    csv = "company,country,vat_id,domain,store_customer_id\nEpsilon SA,FR,,epsilon-sa.example,\n"
    await ok("POST", "/v1/customer-imports/csv", content=csv.encode(), headers={**admin, "content-type": "text/csv"})
    customers = await ok("GET", "/v1/customers")
    customer_id = customers["items"][0]["id"]
    await ok("GET", f"/v1/customers/{customer_id}")
    await ok(
        "PUT", f"/v1/customers/{customer_id}/sales-process", json={"until": "2026-12-31T00:00:00Z", "reason": "talks"}
    )
    await ok("DELETE", f"/v1/customers/{customer_id}/sales-process")
    await ok("GET", "/v1/registration-refusals")

    # Orders through the store's webhook (the worker applies them as the role), a parked one replayed.
    await program.order(c1, [line("desktop", 2, 96000)], placed_at="2026-01-20T10:00:00Z")
    await program.order(c3, [line("server-business", 1, 120000)], placed_at="2026-01-21T10:00:00Z")
    parked = await program.order(c1, [line("cloud-premium", 1, 50000)], placed_at="2026-01-22T10:00:00Z", expect=202)
    await ok("POST", "/v1/program/skus", json={"sku": "cloud-premium", "points": 6})
    events = await ok("GET", "/v1/webhook-events")
    await ok("GET", f"/v1/webhook-events/{parked['receipt']['event_id']}")
    await ok("POST", f"/v1/webhook-events/{parked['receipt']['event_id']}/replay")
    assert events["items"]
    # A discount the program does not give: a mismatch and an order flag, resolved.
    await program.order(c1, [line("desktop", 1, 40000, discount=30000)], placed_at="2026-01-23T10:00:00Z", buyer=a_id)
    await ok("GET", "/v1/discount-mismatches")
    flags = await ok("GET", "/v1/order-flags")
    await ok("POST", f"/v1/order-flags/{flags['items'][0]['id']}/resolve", json={"reason": "agreed with sales"})

    # What a partner reads of its program.
    for path in (
        "status",
        "points-entries",
        "money-entries",
        "level-history",
        "relationships",
        "payout-forecast",
        "events",
        "points-entries.csv",
        "money-entries.csv",
    ):
        await ok("GET", f"/v1/partners/{a_id}/{path}", headers=a)
    await ok("POST", f"/v1/partners/{a_id}/adjustments", json={"kind": "points", "amount": 3, "reason": "fair"})
    await ok("GET", "/v1/program/terms", headers=admin)
    terms = await ok("GET", "/v1/program/terms/versions")
    current = terms["items"][-1]["terms"]
    preview = await ok(
        "POST", "/v1/program/terms/preview", json={"effective_from": "2026-11-01T00:00:00Z", "terms": current}
    )
    await previews.settle(api.app.state.worker)
    await ok("GET", preview["url"])
    await ok("GET", preview["partners_url"])
    await ok("GET", preview["partners_url"] + ".csv")
    await ok("GET", "/v1/program/terms/previews")
    published = await ok("POST", "/v1/program/terms", json={"effective_from": "2026-11-01T00:00:00Z", "terms": current})
    await ok("GET", f"/v1/program/terms/versions/{published['version']}/preview")
    quote = {
        "partner_id": a_id,
        "customer": c1.store(),
        "currency": "EUR",
        "lines": [{"sku": "desktop", "quantity": 1, "kind": "new", "list_amount": 48000}],
    }
    await ok("POST", "/v1/pricing/quote", json=quote, headers=api.bearer(store_key))

    # Directory: an edit reviewed and approved, another rejected; hidden and shown again.
    await ok(
        "PATCH", f"/v1/partners/{a_id}/directory-profile", json={"description": "Reports for finance teams."}, headers=a
    )
    reviews = await ok("GET", "/v1/directory-reviews?status=pending")
    await ok("POST", f"/v1/directory-reviews/{reviews['items'][0]['id']}/approve")
    await ok(
        "PATCH", f"/v1/partners/{a_id}/directory-profile", json={"description": "The best, guaranteed."}, headers=a
    )
    reviews = await ok("GET", "/v1/directory-reviews?status=pending")
    await ok("POST", f"/v1/directory-reviews/{reviews['items'][0]['id']}/reject", json={"reason": "a claim"})
    await ok("GET", f"/v1/partners/{a_id}/directory-reviews", headers=a)
    await ok("POST", f"/v1/partners/{a_id}/directory-hide", json={"reason": "complaint"})
    await ok("POST", f"/v1/partners/{a_id}/directory-unhide", json={"reason": "settled"})
    await ok("GET", "/v1/directory", headers={})

    # Free licences.
    nfr = {"sku": "desktop", "purpose": "demonstration", "acknowledged": True}
    licence = await ok("POST", f"/v1/partners/{a_id}/nfr-licences", json=nfr, headers=a)
    await ok("GET", f"/v1/partners/{a_id}/nfr-licences", headers=a)
    await ok("GET", "/v1/nfr-licences")
    await ok("POST", f"/v1/nfr-licences/{licence['id']}/revoke", json={"reason": "left"})
    await ok("GET", "/v1/nfr-violations")

    # Leads: one offer accepted, one declined.
    offers = []
    for n in (1, 2):
        lead = await ok(
            "POST",
            "/v1/leads",
            json={
                "company": f"Lead {n} GmbH",
                "country": "DE",
                "contact_name": "L",
                "contact_email": f"l@lead{n}.example",
            },
        )
        await ok("GET", f"/v1/leads/{lead['id']}")
        offers.append(await ok("POST", f"/v1/leads/{lead['id']}/assign", json={"partner_id": a_id}))
    await ok("GET", f"/v1/partners/{a_id}/lead-offers", headers=a)
    await ok("POST", f"/v1/partners/{a_id}/lead-offers/{offers[0]['id']}/accept", headers=a)
    await ok("POST", f"/v1/partners/{a_id}/lead-offers/{offers[1]['id']}/decline", json={"reason": "busy"}, headers=a)

    # Webhook subscriptions, the admin's and a partner's: delivered, retried, then deleted.
    for base, headers, types in (
        ("/v1/webhook-subscriptions", admin, ["partner.registered"]),
        (f"/v1/partners/{a_id}/webhook-subscriptions", a, ["registration.created"]),
    ):
        made = await ok("POST", base, json={"url": receiver.url, "event_types": types}, headers=headers)
        receiver.secrets.append(made["secret"])
        one = f"{base}/{made['id']}"
        await ok("GET", base, headers=headers)
        await ok("GET", one, headers=headers)
        await ok("PATCH", one, json={"description": "ops"}, headers=headers)
        rotated_secret = await ok("POST", f"{one}/rotate-secret", headers=headers)
        receiver.secrets.append(rotated_secret["secret"])
        ping = await ok("POST", f"{one}/test", headers=headers)
        await api.drain()
        await ok("GET", f"{one}/deliveries", headers=headers)
        await ok("POST", f"{one}/deliveries/{ping['id']}/retry", headers=headers)
        await api.drain()
        await ok("DELETE", one, headers=headers)
    assert receiver.received

    # The quarter: closed, each statement approved and paid, one by one and in bulk.
    program.at("2026-04-02T00:00:00Z")
    closed = await ok("POST", "/v1/quarters/2026-Q1/close")
    statements = {s["partner_id"]: s["id"] for s in closed["statements"]}
    await ok("GET", "/v1/quarters")
    await ok("GET", "/v1/quarters/overdue")
    await ok("GET", "/v1/licences?without_term_end=true")
    await ok("GET", "/v1/statements")
    await ok("GET", "/v1/quarters/2026-Q1/statements.csv")
    await ok("POST", f"/v1/statements/{statements[a_id]}/approve")
    # A's statement in a payout run, its transfer returned by the bank, the run confirmed; then paid by hand.
    run = await ok("POST", "/v1/payout-runs", json={"payment_date": "2026-04-25"})
    await ok("GET", "/v1/payout-runs")
    await ok("GET", f"/v1/payout-runs/{run['id']}")
    await ok("GET", f"/v1/payout-runs/{run['id']}/sepa.xml")
    await ok("GET", f"/v1/payout-runs/{run['id']}/transfers.csv")
    [invoice] = (await ok("GET", f"/v1/partners/{a_id}/invoices", headers=a))["items"]
    await ok("GET", f"/v1/partners/{a_id}/invoices/{invoice['id']}", headers=a)
    await documents.settle(api.app.state.worker)
    await ok("GET", f"/v1/partners/{a_id}/invoices/{invoice['id']}/pdf", headers=a)
    await ok("GET", f"/v1/partners/{a_id}/payouts", headers=a)
    await ok("GET", "/v1/invoices")
    await ok("GET", f"/v1/invoices/{invoice['id']}")
    await ok("GET", f"/v1/invoices/{invoice['id']}/pdf")
    [transfer] = run["transfer_list"]
    await ok("POST", f"/v1/payout-runs/{run['id']}/transfers/{transfer['id']}/return", json={"reason": "AC04"})
    await ok("POST", f"/v1/invoices/{invoice['id']}/credit-note", json={"reason": "wrong address"})
    await ok("POST", f"/v1/payout-runs/{run['id']}/confirm")
    await ok("POST", f"/v1/statements/{statements[a_id]}/mark-paid", json={"payment_reference": "PAY-A"})
    await ok("POST", "/v1/statements/bulk-approve", json={"statement_ids": [statements[b_id]]})
    await ok(
        "POST",
        "/v1/statements/bulk-mark-paid",
        json={"payments": [{"statement_id": statements[b_id], "payment_reference": "PAY-B"}]},
    )
    await ok("GET", f"/v1/partners/{a_id}/statements", headers=a)
    await ok("GET", f"/v1/partners/{a_id}/statements/{statements[a_id]}", headers=a)
    await ok("GET", f"/v1/partners/{a_id}/statements/{statements[a_id]}/csv", headers=a)

    # What admins read across the program.
    for path in (
        "/v1/dashboards/overview",
        "/v1/partners.csv",
        "/v1/audit-events",
        "/v1/audit-events.csv",
        "/v1/events",
        "/v1/jobs",
    ):
        await ok("GET", path)

    # People: a vendor admin invited, activated, signed in; its account, second factor and password; a
    # partner's team; a password reset; the mail log.
    await ok("POST", "/v1/users", json={"email": "ada@qalyptus.example.com", "role": "admin", "name": "Ada"})
    token = await stored_link_token(api, "ada@qalyptus.example.com")
    await ok("POST", "/v1/invitations/accept", json={"token": token, "password": GOOD})
    ada = await sign_in(api, "ada@qalyptus.example.com")
    browser = {"Cookie": f"{SESSION_COOKIE}={ada.cookie}", CSRF_HEADER: ada.csrf}
    await ok("GET", "/v1/sessions/current", headers=browser)
    await ok("GET", "/v1/account", headers=browser)
    await ok("PATCH", "/v1/account", json={"time_zone": "Europe/Berlin"}, headers=browser)
    setup = await ok("POST", "/v1/account/second-factor", headers=browser)
    totp = pyotp.TOTP(setup["secret"])
    await ok("POST", "/v1/account/second-factor/confirm", json={"code": totp.at(api.clock.now())}, headers=browser)
    api.clock.at = api.clock.now() + timedelta(seconds=30)
    await ok("POST", "/v1/account/second-factor/disable", json={"code": totp.at(api.clock.now())}, headers=browser)
    team = await ok(
        "POST", f"/v1/partners/{a_id}/users", json={"email": "sam@a.example.com", "role": "sales"}, headers=browser
    )
    await ok("GET", f"/v1/partners/{a_id}/users", headers=browser)
    await ok("GET", "/v1/users", headers=browser)
    await ok("GET", f"/v1/users/{team['id']}", headers=browser)
    await ok("PATCH", f"/v1/users/{team['id']}", json={"role": "finance"}, headers=browser)
    await ok("POST", f"/v1/users/{team['id']}/deactivate", headers=browser)
    await ok(
        "POST",
        "/v1/account/password",
        json={"current_password": GOOD, "password": "another fine passphrase"},
        headers=browser,
    )
    await ok("POST", "/v1/password-resets", json={"email": "ada@qalyptus.example.com"}, headers={})
    reset = await stored_link_token(api, "ada@qalyptus.example.com")
    await ok("POST", "/v1/password-resets/confirm", json={"token": reset, "password": GOOD}, headers={})
    ada = await sign_in(api, "ada@qalyptus.example.com")
    browser = {"Cookie": f"{SESSION_COOKIE}={ada.cookie}", CSRF_HEADER: ada.csrf}
    log = await ok("GET", "/v1/mail", headers=browser)
    async with unit_of_work(api.app.state.session_factory) as session:  # a message given up on
        failed = update(MailMessage).where(MailMessage.id == log["items"][0]["id"])  # type: ignore[arg-type]
        await session.execute(failed.values(state="failed"))
    await ok("POST", f"/v1/mail/{log['items'][0]['id']}/retry", headers=browser)
    await ok("DELETE", "/v1/sessions/current", headers=browser)

    # Status changes last: suspended and reinstated, then terminated.
    await ok("POST", f"/v1/partners/{b_id}/suspend", json={"reason": "late invoices"})
    await ok("POST", f"/v1/partners/{b_id}/reinstate", json={"reason": "paid"})
    await ok("POST", f"/v1/partners/{pending['id']}/terminate", json={"reason": "left the program"})
    assert pending_key
