"""The document of a self-billed invoice or credit note: a PDF/A-3 with its EN 16931 XML embedded
(Factur-X, profile EN 16931), made from the invoice as issued and nothing else, so the same invoice
always gives the same document.

`render` runs in a process of the worker's pool (`app.worker.documents`): laying out a page and
subsetting its fonts is CPU work that must not hold up the event loop that applies store events. Each
process loads the fonts and the style once; WeasyPrint subsets fonts with HarfBuzz (Debian's
libharfbuzz-subset0), at a fraction of fontTools' cost.
The page is laid out by WeasyPrint (PDF/A-3b: fonts embedded, an sRGB output intent, XMP metadata);
`facturx` embeds the XML (`AFRelationship` Data) and writes the Factur-X XMP extension, checking the
XML against the Factur-X XSD as it does.
"""

from __future__ import annotations

import functools
import html
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from app.domain.rules.invoices import VatTreatment

GUIDELINE = "urn:cen.eu:en16931:2017"
"""BT-24: the EN 16931 core (Factur-X profile EN 16931)."""
SELF_BILLED_INVOICE = "389"
"""BT-3, UNTDID 1001: self-billed invoice."""
SELF_BILLED_CREDIT_NOTE = "261"
"""BT-3, UNTDID 1001: self-billed credit note."""
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
CATEGORY = {
    VatTreatment.DOMESTIC: "S",
    VatTreatment.REVERSE_CHARGE: "AE",
    VatTreatment.OUTSIDE_EU: "O",
    VatTreatment.NOT_REGISTERED: "O",
}
"""The VAT category (BT-151, UNTDID 5305) of each treatment."""
EXEMPTION = {
    VatTreatment.REVERSE_CHARGE: ("VATEX-EU-AE", "Reverse charge"),
    VatTreatment.OUTSIDE_EU: ("VATEX-EU-O", "Not subject to VAT: seller established outside the EU"),
    VatTreatment.NOT_REGISTERED: ("VATEX-EU-O", "Not subject to VAT: seller not registered for VAT"),
}
"""The exemption reason (BT-121 code, BT-120 text) of each treatment that charges no VAT."""


@dataclass(frozen=True)
class Party:
    id: str | None
    """BT-29 (seller) / BT-46 (buyer): the partner's id in this service; none for the vendor."""
    name: str
    address_line1: str | None
    address_line2: str | None
    postal_code: str | None
    city: str | None
    country: str
    vat_id: str | None


@dataclass(frozen=True)
class Line:
    description: str
    amount: int
    """Minor units; negative for a reversal or a balance carried."""


@dataclass(frozen=True)
class Document:
    """What an invoice's document shows: all of it read from the invoice row as issued."""

    number: str
    credit_note: bool
    corrects: str | None
    """The invoice a credit note credits (its number)."""
    issued_at: datetime
    quarter: str
    period: tuple[date, date]
    statement_id: str
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    net: int
    vat_treatment: VatTreatment
    vat_rate_bp: int | None
    vat_amount: int
    total: int
    mentions: tuple[str, ...]


def quarter_period(quarter: str) -> tuple[date, date]:
    """The first and last day of `YYYY-Qn`."""
    year, q = int(quarter[:4]), int(quarter[-1])
    start = date(year, 3 * q - 2, 1)
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return start, date.fromordinal(end.toordinal() - 1)


def money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def percent(rate_bp: int | None) -> str:
    rate = rate_bp or 0
    return f"{rate // 100}.{rate % 100:02d}"


# --- the EN 16931 XML (UN/CEFACT CII D16B, as Factur-X carries it) -------------------------------------


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, name = tag.split(":")
    node = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
    if text is not None:
        node.text = text
    return node


def _date(parent: etree._Element, tag: str, day: date) -> None:
    _el(_el(parent, tag), "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _party(parent: etree._Element, tag: str, party: Party, *, vat_id: bool) -> None:
    node = _el(parent, tag)
    if party.id:
        _el(node, "ram:ID", party.id)
    _el(node, "ram:Name", party.name)
    address = _el(node, "ram:PostalTradeAddress")
    if party.postal_code:
        _el(address, "ram:PostcodeCode", party.postal_code)
    if party.address_line1:
        _el(address, "ram:LineOne", party.address_line1)
    if party.address_line2:
        _el(address, "ram:LineTwo", party.address_line2)
    if party.city:
        _el(address, "ram:CityName", party.city)
    _el(address, "ram:CountryID", party.country)
    if vat_id and party.vat_id:
        _el(_el(node, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")


def cii_xml(doc: Document) -> bytes:
    """The invoice as EN 16931 CII XML. A line of a negative amount is a quantity of -1 at a positive
    price (BR-27: a price is never negative); a credit note states the amounts it credits, positive."""
    root = etree.Element(f"{{{NS['rsm']}}}CrossIndustryInvoice", nsmap=NS)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", GUIDELINE)
    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", doc.number)
    _el(header, "ram:TypeCode", SELF_BILLED_CREDIT_NOTE if doc.credit_note else SELF_BILLED_INVOICE)
    _date(header, "ram:IssueDateTime", doc.issued_at.astimezone(UTC).date())
    for mention in doc.mentions:
        _el(_el(header, "ram:IncludedNote"), "ram:Content", mention)

    trade = _el(root, "rsm:SupplyChainTradeTransaction")
    category = CATEGORY[doc.vat_treatment]
    for index, line in enumerate(doc.lines, start=1):
        item = _el(trade, "ram:IncludedSupplyChainTradeLineItem")
        _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(index))
        _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)
        agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
        _el(_el(agreement, "ram:NetPriceProductTradePrice"), "ram:ChargeAmount", money(abs(line.amount)))
        delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
        _el(delivery, "ram:BilledQuantity", "-1" if line.amount < 0 else "1", unitCode="C62")
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:TypeCode", "VAT")
        _el(tax, "ram:CategoryCode", category)
        if category != "O":
            _el(tax, "ram:RateApplicablePercent", percent(doc.vat_rate_bp))
        summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _el(summation, "ram:LineTotalAmount", money(line.amount))

    agreement = _el(trade, "ram:ApplicableHeaderTradeAgreement")
    # BR-O-02: an invoice not subject to VAT names no VAT id of either party.
    _party(agreement, "ram:SellerTradeParty", doc.seller, vat_id=category != "O")
    _party(agreement, "ram:BuyerTradeParty", doc.buyer, vat_id=category != "O")
    delivery = _el(trade, "ram:ApplicableHeaderTradeDelivery")
    _date(_el(delivery, "ram:ActualDeliverySupplyChainEvent"), "ram:OccurrenceDateTime", doc.period[1])

    settlement = _el(trade, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:InvoiceCurrencyCode", doc.currency)
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:CalculatedAmount", money(doc.vat_amount))
    _el(tax, "ram:TypeCode", "VAT")
    exemption = EXEMPTION.get(doc.vat_treatment)
    if exemption:
        _el(tax, "ram:ExemptionReason", exemption[1])
    _el(tax, "ram:BasisAmount", money(doc.net))
    _el(tax, "ram:CategoryCode", category)
    if exemption:
        _el(tax, "ram:ExemptionReasonCode", exemption[0])
    if category != "O":
        _el(tax, "ram:RateApplicablePercent", percent(doc.vat_rate_bp))
    period = _el(settlement, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", doc.period[0])
    _date(period, "ram:EndDateTime", doc.period[1])
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    _el(terms, "ram:Description", f"Paid by bank transfer; commission statement {doc.statement_id}.")
    sums = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(sums, "ram:LineTotalAmount", money(doc.net))
    _el(sums, "ram:TaxBasisTotalAmount", money(doc.net))
    _el(sums, "ram:TaxTotalAmount", money(doc.vat_amount), currencyID=doc.currency)
    _el(sums, "ram:GrandTotalAmount", money(doc.total))
    _el(sums, "ram:DuePayableAmount", money(doc.total))
    if doc.corrects:
        _el(_el(settlement, "ram:InvoiceReferencedDocument"), "ram:IssuerAssignedID", doc.corrects)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# --- the page ---------------------------------------------------------------------------------------

_FONT_RANGES = [
    *range(0x20, 0x250),  # Latin, Latin-1, Latin Extended-A and -B
    *range(0x370, 0x500),  # Greek, Cyrillic
    *range(0x2000, 0x2070),  # punctuation: dashes, quotes, ellipsis
    0x20AC,  # the euro sign
]
DEJAVU = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


def _font_file(name: str) -> Path:
    """A DejaVu font file of the machine (Debian's fonts-dejavu-core)."""
    for folder in DEJAVU:
        if (folder / f"{name}.ttf").exists():
            return folder / f"{name}.ttf"
    raise RuntimeError(f"{name}.ttf is not installed: install the fonts-dejavu-core package")


@functools.cache
def _fonts() -> dict[str, Path]:
    """The fonts the page uses, cut once per process to the scripts a partner's name or address may
    use and without layout tables: subsetting the whole font again for every document costs most of
    a document's time."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    folder = Path(tempfile.mkdtemp(prefix="invoice-fonts-"))
    made = {}
    for weight, name in (("normal", "DejaVuSans"), ("bold", "DejaVuSans-Bold")):
        options = subset.Options()
        options.layout_features = []
        options.name_IDs = ["*"]
        options.notdef_outline = True
        options.hinting = False
        options.drop_tables += ["FFTM"]
        font = TTFont(_font_file(name))
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=_FONT_RANGES)
        subsetter.subset(font)
        font.save(folder / f"{name}.ttf")
        made[weight] = folder / f"{name}.ttf"
    return made


def _address(party: Party) -> str:
    parts = [party.address_line1, party.address_line2, " ".join(p for p in (party.postal_code, party.city) if p)]
    return "<br>".join(html.escape(p) for p in [*parts, party.country] if p)


def page(doc: Document) -> str:
    """The invoice as the HTML the PDF is laid out from."""
    e = html.escape
    title = "Self-billed credit note" if doc.credit_note else "Self-billed invoice"
    rows = "".join(
        f"<tr><td>{e(line.description)}</td><td class=n>{money(line.amount)} {e(doc.currency)}</td></tr>"
        for line in doc.lines
    )
    rate = f"VAT {percent(doc.vat_rate_bp)} %" if doc.vat_rate_bp is not None else "VAT"
    corrects = f"<p>Credits invoice <b>{e(doc.corrects)}</b>.</p>" if doc.corrects else ""
    mentions = "".join(f"<p class=mention>{e(m)}</p>" for m in doc.mentions)

    def party(label: str, p: Party) -> str:
        vat = f"<br>VAT id {e(p.vat_id)}" if p.vat_id else ""
        return f"<div class=party><h2>{label}</h2><b>{e(p.name)}</b><br>{_address(p)}{vat}</div>"

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)} {e(doc.number)}</title>
<meta name="author" content="{e(doc.buyer.name)}"></head><body>
<h1>{e(title)} {e(doc.number)}</h1>
<p>Issued {doc.issued_at.astimezone(UTC).date().isoformat()} · commission for {e(doc.quarter)}
({doc.period[0].isoformat()} to {doc.period[1].isoformat()}) · statement {e(doc.statement_id)}</p>
{corrects}
<table class=parties><tr><td>{party("Seller", doc.seller)}</td><td>{party("Buyer", doc.buyer)}</td></tr></table>
<table class=lines><thead><tr><th>Description</th><th class=n>Amount</th></tr></thead><tbody>{rows}</tbody>
<tfoot><tr><td>Net</td><td class=n>{money(doc.net)} {e(doc.currency)}</td></tr>
<tr><td>{rate}</td><td class=n>{money(doc.vat_amount)} {e(doc.currency)}</td></tr>
<tr class=total><td>Total</td><td class=n>{money(doc.total)} {e(doc.currency)}</td></tr></tfoot></table>
{mentions}
</body></html>"""


STYLE = """
@font-face {{ font-family: Invoice; src: url("{normal}"); }}
@font-face {{ font-family: Invoice; font-weight: bold; src: url("{bold}"); }}
@page {{ size: A4; margin: 18mm 16mm;
  @bottom-right {{ content: string(number) " · page " counter(page); font: 8pt Invoice; color: #555; }} }}
body {{ font-family: Invoice; font-size: 10pt; color: #111; }}
h1 {{ font-size: 17pt; margin: 0 0 2mm; string-set: number content(); }}
h2 {{ font-size: 9pt; color: #555; margin: 0 0 1mm; }}
table {{ width: 100%; border-collapse: collapse; }}
table.parties {{ margin: 6mm 0; }} table.parties td {{ width: 50%; vertical-align: top; padding: 0 5mm 0 0; }}
table.lines {{ margin-top: 4mm; }}
table.lines th, table.lines td {{ text-align: left; padding: 1.6mm 1mm; border-bottom: 0.3pt solid #999; }}
.n {{ text-align: right !important; white-space: nowrap; }} tfoot td {{ border: none !important; }}
.total td {{ font-weight: bold; }}
.mention {{ font-size: 8.5pt; margin: 1mm 0; }}
"""
"""The page's style: one per process, with the fonts it loads (laid out again for each document, the
fonts would be loaded again too)."""


@functools.cache
def _style() -> tuple[Any, Any]:
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration

    fonts = _fonts()
    config = FontConfiguration()
    sheet = CSS(string=STYLE.format(normal=fonts["normal"].as_uri(), bold=fonts["bold"].as_uri()), font_config=config)
    return config, sheet


def render(doc: Document) -> bytes:
    """The PDF/A-3 of the invoice with its XML embedded (Factur-X EN 16931)."""
    import facturx
    from weasyprint import HTML

    config, sheet = _style()
    pdf: bytes = HTML(string=page(doc)).write_pdf(
        pdf_variant="pdf/a-3b", stylesheets=[sheet], font_config=config, uncompressed_pdf=False
    )
    kind = "Credit note" if doc.credit_note else "Invoice"
    metadata = {
        "author": doc.buyer.name,
        "keywords": "Factur-X, self-billing, " + kind.lower(),
        "title": f"{kind} {doc.number}",
        "subject": f"Self-billed {kind.lower()} {doc.number} for {doc.seller.name}, commission {doc.quarter}",
    }
    made = facturx.generate_from_binary(
        pdf, cii_xml(doc), flavor="factur-x", level="en16931", check_xsd=True, pdf_metadata=metadata, lang="en-GB"
    )
    return bytes(made)


def document(row: Any, corrects: str | None = None) -> Document:
    """The document of an invoice row (`app.db.tables.Invoice`)."""

    def party(d: dict[str, Any], id: str | None) -> Party:
        return Party(
            id=id,
            name=d.get("legal_name") or d.get("name") or "",
            address_line1=d.get("address_line1") or d.get("address"),
            address_line2=d.get("address_line2"),
            postal_code=d.get("postal_code"),
            city=d.get("city"),
            country=d["country"],
            vat_id=d.get("vat_id"),
        )

    return Document(
        number=row.number,
        credit_note=row.kind == "credit_note",
        corrects=corrects,
        issued_at=row.issued_at,
        quarter=row.quarter,
        period=quarter_period(row.quarter),
        statement_id=str(row.statement_id),
        currency=row.currency,
        seller=party(row.seller, str(row.partner_id)),
        buyer=party(row.buyer, None),
        lines=tuple(Line(x["description"], x["amount"]) for x in row.lines),
        net=row.net,
        vat_treatment=VatTreatment(row.vat_treatment),
        vat_rate_bp=row.vat_rate_bp,
        vat_amount=row.vat_amount,
        total=row.total,
        mentions=tuple(row.mentions),
    )
