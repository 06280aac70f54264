"""Payout runs: approved statements paid by a SEPA credit transfer file through their self-billed
invoices, confirmed executed or returned by the bank; what a run cannot pay is listed with the reason.
The pure VAT and remittance rules: tests/domain/test_invoice_rules.py."""

from __future__ import annotations

import asyncio
import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import sepaxml
import xmlschema

from tests.conftest import Api

DEBTOR = {
    "payout_debtor_name": "Qalyptus SAS",
    "payout_debtor_iban": "FR1420041010050500013M02606",
    "payout_debtor_bic": "PSSTFRPP",
    "payout_debtor_street": "1 rue de la Paix",
    "payout_debtor_postal_code": "75002",
    "payout_debtor_city": "Paris",
    "payout_debtor_country": "FR",
    "vendor_vat_id": "FR40303265045",
}
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
DE = {
    "legal_name": "Partner GmbH",
    "address_line1": "Hohe Straße 1",
    "postal_code": "50667",
    "city": "Köln",
    "country": "DE",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
    "vat_id": "DE136695976",
    "vat_registered": True,
}
FR = {
    "legal_name": "Partenaire SARL",
    "address_line1": "2 rue du Port",
    "postal_code": "13002",
    "city": "Marseille",
    "country": "FR",
    "iban": "FR1420041010050500013M02606",
    "bic": "PSSTFRPP",
    "vat_id": "FR40303265045",
    "vat_registered": True,
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(DEBTOR)


def at(api: Api, moment: str) -> None:
    from tests.program import t

    api.clock.at = t(moment)


async def _publish(api: Api) -> None:
    at(api, "2026-01-02T09:00:00Z")
    published = await api.client.post(
        "/v1/self-billing-agreements", json={"version": "2026-01", "title": "Self-billing"}, headers=api.admin
    )
    assert published.status_code == 201, published.text


async def _partner(api: Api, details: dict[str, Any] | None = DE, *, accept: bool = True) -> tuple[str, str]:
    """A partner registered, with payee details and the self-billing agreement accepted (on 2026-01-05)."""
    at(api, "2026-01-05T09:00:00Z")
    partner, key = await api.register()
    pid = partner["id"]
    if details is not None:
        put = await api.client.put(f"/v1/partners/{pid}/payee-details", json=details, headers=api.bearer(key))
        assert put.status_code == 201, put.text
    if accept:
        accepted = await api.client.post(
            f"/v1/partners/{pid}/self-billing-acceptances", json={"version": "2026-01"}, headers=api.bearer(key)
        )
        assert accepted.status_code == 201, accepted.text
    return pid, key


async def _earn(api: Api, pid: str, amount: int, currency: str = "EUR", when: str = "2026-01-10T09:00:00Z") -> None:
    at(api, when)
    posted = await api.client.post(
        f"/v1/partners/{pid}/adjustments",
        json={"kind": "money", "amount": amount, "currency": currency, "reason": "commission"},
        headers=api.admin,
    )
    assert posted.status_code == 201, posted.text


async def _close_and_approve(api: Api, quarter: str, when: str) -> list[dict[str, Any]]:
    at(api, when)
    closed = await api.client.post(f"/v1/quarters/{quarter}/close", headers=api.admin)
    assert closed.status_code == 200, closed.text
    statements = list(closed.json()["statements"])
    for s in statements:
        approved = await api.client.post(f"/v1/statements/{s['id']}/approve", headers=api.admin)
        assert approved.status_code == 200, approved.text
    return statements


async def _run(api: Api, payment_date: str = "2026-04-25", expect: int = 201, **headers: str) -> Any:
    response = await api.client.post(
        "/v1/payout-runs", json={"payment_date": payment_date}, headers={**api.admin, **headers}
    )
    assert response.status_code == expect, response.text
    return response.json()


async def _statement(api: Api, pid: str, key: str, sid: str) -> dict[str, Any]:
    response = await api.client.get(f"/v1/partners/{pid}/statements/{sid}", headers=api.bearer(key))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _events(api: Api, type: str) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/events", params={"type": type, "limit": 200}, headers=api.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _parse(xml: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The file's header and its transfers, read back."""
    root = ET.fromstring(xml.encode())
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header is not None
    head = {
        name: header.findtext(f"p:{name}", namespaces=NS) or "" for name in ("MsgId", "CreDtTm", "NbOfTxs", "CtrlSum")
    }
    transfers = [
        {
            "end_to_end_id": tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS) or "",
            "amount": tx.findtext("p:Amt/p:InstdAmt", namespaces=NS) or "",
            "currency": tx.find("p:Amt/p:InstdAmt", NS).get("Ccy", ""),  # type: ignore[union-attr]
            "name": tx.findtext("p:Cdtr/p:Nm", namespaces=NS) or "",
            "street": tx.findtext("p:Cdtr/p:PstlAdr/p:StrtNm", namespaces=NS) or "",
            "town": tx.findtext("p:Cdtr/p:PstlAdr/p:TwnNm", namespaces=NS) or "",
            "country": tx.findtext("p:Cdtr/p:PstlAdr/p:Ctry", namespaces=NS) or "",
            "iban": tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) or "",
            "bic": tx.findtext("p:CdtrAgt/p:FinInstnId/p:BICFI", namespaces=NS) or "",
            "remittance": tx.findtext("p:RmtInf/p:Ustrd", namespaces=NS) or "",
        }
        for tx in root.iterfind(".//p:CdtTrfTxInf", NS)
    ]
    return head, transfers


def _cents(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0"))


async def test_a_run_round_trip_create_return_confirm_and_the_next_run_pays_the_same_invoice(api: Api) -> None:
    await _publish(api)
    de, de_key = await _partner(api, DE)
    fr, fr_key = await _partner(api, FR)
    await _earn(api, de, 10000)
    await _earn(api, fr, 25000)
    statements = {s["partner_id"]: s for s in await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")}

    at(api, "2026-04-20T09:00:00Z")
    run = await _run(api, **{"Idempotency-Key": "run-1"})
    again = await _run(api, **{"Idempotency-Key": "run-1"})  # a replay: the same run, nothing new
    assert again["id"] == run["id"]
    assert run["status"] == "created" and run["payment_date"] == "2026-04-25" and run["currency"] == "EUR"
    by_partner = {t["partner_id"]: t for t in run["transfer_list"]}
    items = {i["partner_id"]: i for i in run["statements"]}
    # DE, registered elsewhere in the EU: reverse charge, no VAT; FR, registered in the vendor's country: 20 %.
    assert by_partner[de]["amount"] == 10000 and by_partner[fr]["amount"] == 30000
    assert run["control_sum"] == 40000 and run["transfers"] == 2
    # Numbered without gaps in the series and year (partners in id order).
    assert sorted(i["invoice_number"] for i in run["statements"]) == ["SB-2026-000001", "SB-2026-000002"]
    de_no, fr_no = items[de]["invoice_number"], items[fr]["invoice_number"]
    assert by_partner[de]["remittance"] == f"Invoice {de_no}"
    assert by_partner[de]["iban_masked"] == "DE…3000" and "DE89370400440532013000" not in str(run)
    for pid, key in ((de, de_key), (fr, fr_key)):
        assert (await _statement(api, pid, key, statements[pid]["id"]))["status"] == "in_payment"

    # The file validates against the schema sepaxml ships and reads back to the same transfers and sums.
    file = await api.client.get(f"/v1/payout-runs/{run['id']}/sepa.xml", headers=api.admin)
    assert file.status_code == 200 and file.headers["content-type"].startswith("application/xml")
    xmlschema.XMLSchema(str(XSD)).validate(file.text)
    head, transfers = _parse(file.text)
    assert head == {"MsgId": run["reference"], "CreDtTm": "2026-04-20T09:00:00Z", "NbOfTxs": "2", "CtrlSum": "400.00"}
    assert sorted((t["end_to_end_id"], _cents(t["amount"])) for t in transfers) == sorted(
        (t["end_to_end_id"], t["amount"]) for t in run["transfer_list"]
    )
    de_tx = next(t for t in transfers if t["end_to_end_id"] == by_partner[de]["end_to_end_id"])
    assert de_tx == {
        "end_to_end_id": by_partner[de]["end_to_end_id"],
        "amount": "100.00",
        "currency": "EUR",
        "name": "Partner GmbH",
        "street": "Hohe Strasse 1",
        "town": "Koln",
        "country": "DE",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "remittance": f"Invoice {de_no}",
    }
    sheet = await api.client.get(f"/v1/payout-runs/{run['id']}/transfers.csv", headers=api.admin)
    assert sheet.status_code == 200, sheet.text
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert {(r["iban"], r["amount"], r["remittance"]) for r in rows} == {
        ("DE89370400440532013000", "100.00", f"Invoice {de_no}"),
        ("FR1420041010050500013M02606", "300.00", f"Invoice {fr_no}"),
    }

    # The invoices, as the partners read them.
    mine = await api.client.get(f"/v1/partners/{fr}/invoices", headers=api.bearer(fr_key))
    [invoice] = mine.json()["items"]
    assert (invoice["net"], invoice["vat_rate_bp"], invoice["vat_amount"], invoice["total"]) == (
        25000,
        2000,
        5000,
        30000,
    )
    assert invoice["vat_treatment"] == "domestic" and invoice["seller"]["legal_name"] == "Partenaire SARL"
    assert invoice["buyer"]["name"] == "Qalyptus SAS" and invoice["buyer"]["vat_id"] == "FR40303265045"
    assert [line["amount"] for line in invoice["lines"]] == [25000]
    assert any("Self-billing" in m for m in invoice["mentions"]) and invoice["quarter"] == "2026-Q1"
    de_invoice = (await api.client.get(f"/v1/partners/{de}/invoices", headers=api.admin)).json()["items"][0]
    assert de_invoice["vat_treatment"] == "reverse_charge" and any(
        "Reverse charge" in m for m in de_invoice["mentions"]
    )
    one = await api.client.get(f"/v1/partners/{fr}/invoices/{invoice['id']}", headers=api.bearer(fr_key))
    assert one.status_code == 200 and one.json() == invoice
    other = await api.client.get(f"/v1/partners/{de}/invoices/{invoice['id']}", headers=api.bearer(de_key))
    assert other.status_code in (403, 404)

    # mark-paid stays for statements paid outside a run, and is refused while one is in payment.
    refused = await api.client.post(
        f"/v1/statements/{statements[de]['id']}/mark-paid", json={"payment_reference": "X"}, headers=api.admin
    )
    assert refused.status_code == 409 and refused.json()["code"] == "statement_in_payment"

    # The bank returns the DE transfer: its statement is approved again, with its invoice.
    returned = await api.client.post(
        f"/v1/payout-runs/{run['id']}/transfers/{by_partner[de]['id']}/return",
        json={"reason": "AC04 account closed"},
        headers=api.admin,
    )
    assert returned.status_code == 200, returned.text
    assert (await _statement(api, de, de_key, statements[de]["id"]))["status"] == "approved"
    [event] = await _events(api, "statement.returned")
    assert event["payload"]["reason"] == "AC04 account closed"
    assert event["payload"]["invoice_number"] == de_no

    at(api, "2026-04-26T09:00:00Z")
    # Past its payout date, a statement still in payment counts as overdue until the run is confirmed.
    late_ones = await api.client.get("/v1/statements", params={"overdue": "true"}, headers=api.admin)
    assert {(s["id"], s["status"]) for s in late_ones.json()["items"]} == {
        (statements[de]["id"], "approved"),
        (statements[fr]["id"], "in_payment"),
    }
    confirmed = await api.client.post(
        f"/v1/payout-runs/{run['id']}/confirm", headers={**api.admin, "Idempotency-Key": "confirm-1"}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "executed"
    assert {t["partner_id"]: t["status"] for t in confirmed.json()["transfer_list"]} == {
        de: "returned",
        fr: "executed",
    }
    paid = await _statement(api, fr, fr_key, statements[fr]["id"])
    assert paid["status"] == "paid" and paid["payment_reference"] == run["reference"]
    assert (await _statement(api, de, de_key, statements[de]["id"]))["status"] == "approved"
    late = await api.client.post(
        f"/v1/payout-runs/{run['id']}/transfers/{by_partner[fr]['id']}/return",
        json={"reason": "too late"},
        headers=api.admin,
    )
    assert late.status_code == 409 and late.json()["code"] == "payout_run_executed"

    # The next run pays the DE statement through the same invoice, never a second one.
    at(api, "2026-05-02T09:00:00Z")
    following = await _run(api, "2026-05-05")
    [item] = following["statements"]
    assert item["statement_id"] == statements[de]["id"] and item["invoice_number"] == de_no
    assert following["control_sum"] == 10000
    invoices = (await api.client.get(f"/v1/partners/{de}/invoices", headers=api.admin)).json()["items"]
    assert [i["number"] for i in invoices] == [de_no]
    assert len(await _events(api, "invoice.issued")) == 2
    assert len(await _events(api, "payout_run.created")) == 2
    assert [e["payload"]["returned"] for e in await _events(api, "payout_run.executed")] == [1]
    listed = (await api.client.get("/v1/payout-runs", headers=api.admin)).json()
    assert ([r["id"] for r in listed["items"]], listed["has_more"]) == ([following["id"], run["id"]], False)
    first = (await api.client.get("/v1/payout-runs?limit=1", headers=api.admin)).json()
    assert ([r["id"] for r in first["items"]], first["has_more"]) == ([following["id"]], True)
    rest = (await api.client.get(f"/v1/payout-runs?limit=1&cursor={first['next_cursor']}", headers=api.admin)).json()
    assert ([r["id"] for r in rest["items"]], rest["next_cursor"], rest["has_more"]) == ([run["id"]], None, False)


async def test_what_a_run_cannot_pay_is_listed_with_the_reason_and_stays_approved(api: Api) -> None:
    await _publish(api)
    payable, _ = await _partner(api, DE)
    no_details, _ = await _partner(api, None)
    not_accepted, _ = await _partner(api, FR, accept=False)
    await _earn(api, payable, 10000)
    await _earn(api, payable, 5000, "USD")
    await _earn(api, no_details, 7000)
    await _earn(api, not_accepted, 8000)
    zero, _ = await _partner(api, DE)
    await _earn(api, zero, 3000)
    await _earn(api, zero, -3000)
    await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")

    at(api, "2026-04-20T09:00:00Z")
    run = await _run(api)
    reasons = {
        (i["partner_id"], i["currency"]): [r["code"] for r in i["not_payable_because"]] for i in run["statements"]
    }
    assert reasons == {
        (payable, "EUR"): [],
        (payable, "USD"): ["currency_not_supported"],
        (no_details, "EUR"): ["payee_details_missing"],
        (not_accepted, "EUR"): ["self_billing_not_accepted"],
        (zero, "EUR"): ["nothing_to_pay"],
    }
    assert run["transfers"] == 1 and run["control_sum"] == 10000
    listed = await api.client.get("/v1/statements", params={"status": "approved"}, headers=api.admin)
    assert len(listed.json()["items"]) == 4
    # Nothing left that can be paid: a second run is refused, naming what it found.
    refused = await _run(api, expect=409)
    assert refused["code"] == "payout_run_nothing_payable" and len(refused["not_payable"]) == 4


async def test_a_statement_is_never_in_two_runs_and_a_run_with_nothing_approved_is_refused(api: Api) -> None:
    await _publish(api)
    pid, _ = await _partner(api, DE)
    refused = await _run(api, "2026-01-25", expect=409)
    assert refused["code"] == "payout_run_nothing_payable"
    past = await _run(api, "2026-01-04", expect=422)
    assert past["code"] == "payment_date_in_past"
    await _earn(api, pid, 10000)
    await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    at(api, "2026-04-20T09:00:00Z")
    early = await _run(api, "2026-04-24", expect=409)  # not due by that date
    assert early["code"] == "payout_run_nothing_payable"
    first = await _run(api)
    second = await _run(api, expect=409)  # its statement is in the first run
    assert second["code"] == "payout_run_nothing_payable" and second["not_payable"] == []
    assert len(first["statements"]) == 1
    missing = await api.client.get(f"/v1/payout-runs/{'0' * 32}", headers=api.admin)
    assert missing.status_code == 404 and missing.json()["code"] == "payout_run_not_found"


@pytest.mark.parametrize("settings_overrides", [DEBTOR | {"payout_hold_days": 120}])
async def test_a_bank_detail_change_during_a_run_holds_only_later_runs(
    api: Api, settings_overrides: dict[str, Any]
) -> None:
    await _publish(api)
    pid, key = await _partner(api, DE)  # held until 2026-05-05
    await _earn(api, pid, 10000)
    await _earn(api, pid, 4000, when="2026-04-10T09:00:00Z")
    await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    at(api, "2026-04-20T09:00:00Z")
    held = await _run(api, expect=409)
    assert [r for s in held["not_payable"] for r in s["reasons"]] == ["payouts_held"]
    at(api, "2026-05-06T09:00:00Z")
    run = await _run(api, "2026-05-10")
    changed = await api.client.put(
        f"/v1/partners/{pid}/payee-details",
        json=DE | {"iban": "FR1420041010050500013M02606", "bic": "PSSTFRPP"},
        headers=api.bearer(key),
    )
    assert changed.status_code == 200, changed.text
    # The run pays the account it was created with.
    sheet = await api.client.get(f"/v1/payout-runs/{run['id']}/transfers.csv", headers=api.admin)
    [row] = list(csv.DictReader(io.StringIO(sheet.text)))
    assert row["iban"] == "DE89370400440532013000"
    confirmed = await api.client.post(f"/v1/payout-runs/{run['id']}/confirm", headers=api.admin)
    assert confirmed.status_code == 200, confirmed.text
    # The next quarter's statement waits for the new hold (until 2026-09-03) to pass.
    await _close_and_approve(api, "2026-Q2", "2026-07-01T09:00:00Z")
    at(api, "2026-07-02T09:00:00Z")
    held = await _run(api, "2026-07-25", expect=409)
    assert [r for s in held["not_payable"] for r in s["reasons"]] == ["payouts_held"]
    at(api, "2026-09-04T09:00:00Z")
    later = await _run(api, "2026-09-05")
    [transfer] = later["transfer_list"]
    assert transfer["iban_masked"] == "FR…2606" and transfer["amount"] == 4000


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_a_run_needs_the_debtor_account(api: Api, settings_overrides: dict[str, Any]) -> None:
    await _publish(api)
    pid, _ = await _partner(api, DE)
    await _earn(api, pid, 10000)
    await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    at(api, "2026-04-20T09:00:00Z")
    refused = await _run(api, expect=409)
    assert refused["code"] == "payout_debtor_not_configured"
    listed = await api.client.get("/v1/statements", params={"status": "approved"}, headers=api.admin)
    assert len(listed.json()["items"]) == 1


# --- concurrent runs, on a server and a database that really commits ----------------------------


@pytest.fixture
def live_settings_overrides() -> dict[str, Any]:
    return dict(DEBTOR)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres"])
async def test_runs_created_at_once_never_share_a_statement_nor_skip_or_repeat_an_invoice_number(
    backend: str, live_api: Api
) -> None:
    api = live_api
    await _publish(api)
    partners = [await _partner(api, DE if n % 2 else FR) for n in range(6)]
    for n, (pid, _) in enumerate(partners):
        await _earn(api, pid, 1000 * (n + 1))
        await _earn(api, pid, 100 * (n + 1), when="2026-05-10T09:00:00Z")
    q1 = await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    q2 = await _close_and_approve(api, "2026-Q2", "2026-07-02T09:00:00Z")
    at(api, "2026-07-03T09:00:00Z")
    # Two runs may take the Q1 statements only, two the Q1 and Q2 ones: they overlap.
    responses = await asyncio.gather(
        *(
            api.client.post("/v1/payout-runs", json={"payment_date": day}, headers=api.admin)
            for day in ("2026-07-04", "2026-07-25", "2026-07-04", "2026-07-25")
        )
    )
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {"payout_run_nothing_payable"}
    runs = [r.json() for r in responses if r.status_code == 201]
    assert runs
    taken = [i["statement_id"] for run in runs for i in run["statements"] if i["transfer_id"] is not None]
    assert sorted(taken) == sorted(s["id"] for s in q1 + q2)  # each statement in exactly one run
    numbers = sorted(i["invoice_number"] for run in runs for i in run["statements"])
    assert numbers == [f"SB-2026-{n:06d}" for n in range(1, len(q1 + q2) + 1)]
    totals = {s["id"]: s["payable_amount"] for s in q1 + q2}
    assert sum(run["control_sum"] for run in runs) == sum(totals.values()) + sum(
        totals[s["id"]] // 5
        for s in q1 + q2
        if s["partner_id"] in {pid for n, (pid, _) in enumerate(partners) if n % 2 == 0}
    )


async def _quarter_money(api: Api, quarter: str) -> dict[str, Any]:
    overview = await api.client.get("/v1/dashboards/overview", headers=api.admin)
    assert overview.status_code == 200, overview.text
    [row] = [r for r in overview.json()["commissions"] if r["quarter"] == quarter and r["currency"] == "EUR"]
    return {k: row[k] for k in ("due", "in_payment", "paid")}


async def test_a_partner_reads_its_payouts_and_the_overview_counts_what_is_due_in_payment_and_paid(api: Api) -> None:
    await _publish(api)
    de, de_key = await _partner(api, DE)
    fr, fr_key = await _partner(api, FR)
    await _earn(api, de, 10000)
    await _earn(api, fr, 25000)
    statements = {s["partner_id"]: s for s in await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")}
    assert await _quarter_money(api, "2026-Q1") == {"due": 35000, "in_payment": 0, "paid": 0}

    at(api, "2026-04-20T09:00:00Z")
    run = await _run(api)
    # Statements count their net: what a run pays them through the invoices (VAT included) is the payouts'.
    assert await _quarter_money(api, "2026-Q1") == {"due": 0, "in_payment": 35000, "paid": 0}
    by_partner = {t["partner_id"]: t for t in run["transfer_list"]}
    returned = await api.client.post(
        f"/v1/payout-runs/{run['id']}/transfers/{by_partner[de]['id']}/return",
        json={"reason": "AC04 account closed"},
        headers=api.admin,
    )
    assert returned.status_code == 200, returned.text
    confirmed = await api.client.post(f"/v1/payout-runs/{run['id']}/confirm", headers=api.admin)
    assert confirmed.status_code == 200, confirmed.text
    assert await _quarter_money(api, "2026-Q1") == {"due": 10000, "in_payment": 0, "paid": 25000}

    at(api, "2026-05-02T09:00:00Z")
    following = await _run(api, "2026-05-05")
    assert await _quarter_money(api, "2026-Q1") == {"due": 0, "in_payment": 10000, "paid": 25000}

    # DE reads both transfers to it: the returned one and the one paying the same invoice again.
    mine = await api.client.get(f"/v1/partners/{de}/payouts", headers=api.bearer(de_key))
    assert mine.status_code == 200, mine.text
    payouts = mine.json()["items"]
    assert [(p["run_reference"], p["status"], p["amount"]) for p in payouts] == [
        (following["reference"], "pending", 10000),
        (run["reference"], "returned", 10000),
    ]
    assert payouts[1]["return_reason"] == "AC04 account closed" and payouts[0]["iban_masked"] == "DE…3000"
    [paid] = payouts[0]["statements"]
    assert (
        paid["statement_id"] == statements[de]["id"]
        and paid["invoice_number"] == payouts[1]["statements"][0]["invoice_number"]
    )
    page = (await api.client.get(f"/v1/partners/{de}/payouts?limit=1", headers=api.bearer(de_key))).json()
    assert page["has_more"] and [p["run_reference"] for p in page["items"]] == [following["reference"]]
    rest = await api.client.get(
        f"/v1/partners/{de}/payouts?limit=1&cursor={page['next_cursor']}", headers=api.bearer(de_key)
    )
    assert [p["run_reference"] for p in rest.json()["items"]] == [run["reference"]] and not rest.json()["has_more"]
    theirs = (await api.client.get(f"/v1/partners/{fr}/payouts", headers=api.bearer(fr_key))).json()["items"]
    assert [(p["status"], p["amount"]) for p in theirs] == [("executed", 30000)]
    other = await api.client.get(f"/v1/partners/{fr}/payouts", headers=api.bearer(de_key))
    assert other.status_code in (403, 404)
