"""API schemas — payee details and the self-billing agreement: versions and acceptances."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.routers.fields import Bic, CountryCode, Iban, Label, Name, VersionName
from app.routers.schemas.common import OnePage, RequestModel, VatId, Website, request_examples


class PayeeDetailsRequest(RequestModel):
    model_config = request_examples(
        {
            "legal_name": "Acme Analytics SARL",
            "address_line1": "12 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
            "country": "FR",
            "iban": "FR14 2004 1010 0505 0001 3M02 606",
            "bic": "PSSTFRPP",
            "vat_id": "FR40303265045",
            "vat_registered": True,
        }
    )

    legal_name: Name = Field(description="The payee's legal name, as on its invoices and its bank account.")
    address_line1: Name = Field(description="The first line of the payee's address: street and number.")
    address_line2: Name | None = Field(
        default=None, description="A second line of the address (building, floor); null or left out when none."
    )
    postal_code: Label | None = Field(
        default=None, description="The postal code; null or left out where the country has none."
    )
    city: Label = Field(description="The town or city.")
    country: CountryCode = Field(description="The payee's country: ISO 3166-1 alpha-2.")
    iban: Iban = Field(
        description="The account payouts go to. Its check digits and its country's format are checked (422 "
        "`iban_invalid`); stored encrypted and never answered again: answers show `iban_masked`. A change "
        "holds the partner's payouts for some days (`payouts_held_until`)."
    )
    bic: Bic = Field(
        description="The BIC of the bank that keeps the account: of the IBAN's country, and of the IBAN's bank "
        "where the bank registry knows it (422 `bic_mismatch`)."
    )
    vat_id: VatId | None = Field(
        default=None,
        description="The payee's VAT id, checked against its country's rules (422 `vat_id_invalid`); null or "
        "left out when it has none.",
    )
    vat_registered: bool = Field(
        description="Whether the payee is registered for VAT: a VAT-registered payee gives `vat_id` "
        "(422 `vat_id_required`)."
    )


class NotPayableReason(BaseModel):
    code: str = Field(
        description="`payee_details_missing`, `payouts_held`, `self_billing_not_published`, "
        "`self_billing_not_accepted` or `self_billing_outdated`."
    )
    detail: str = Field(description="The reason in a sentence.")


class PayeeDetails(BaseModel):
    partner_id: uuid.UUID = Field(description="The partner paid.")
    legal_name: str = Field(description="The payee's legal name.")
    address_line1: str = Field(description="The first line of the address.")
    address_line2: str | None = Field(description="The second line of the address; null when none.")
    postal_code: str | None = Field(description="The postal code; null when none.")
    city: str = Field(description="The town or city.")
    country: str = Field(description="The payee's country: ISO 3166-1 alpha-2.")
    iban_masked: str = Field(
        description="The IBAN's country and its last four characters, e.g. `DE…3000`: the IBAN itself is never "
        "answered."
    )
    bic: str = Field(description="The bank's BIC, compact (it names the bank, not the account).")
    vat_id: str | None = Field(description="The payee's VAT id, normalised; null when none.")
    vat_registered: bool = Field(description="Whether the payee is registered for VAT.")
    updated_at: datetime = Field(description="When these details were recorded.")
    updated_by: str = Field(description="Who recorded them: `partner:<id>` or `admin:<key id>`.")
    bank_details_changed_at: datetime = Field(description="When the IBAN or the BIC last changed.")
    payouts_held_until: datetime | None = Field(
        description="Until when the partner's payouts are held because its bank details changed "
        "(PARTNERS_PAYOUT_HOLD_DAYS, a guard against a taken-over account); null when no hold is running."
    )
    payouts_held_because: str | None = Field(description="Why payouts are held, in a sentence; null when they are not.")
    payable: bool = Field(
        description="Whether the partner could be paid now: payee details given, no hold running, and the "
        "self-billing agreement in force accepted."
    )
    not_payable_because: list[NotPayableReason] = Field(
        description="Why it could not be paid now; empty when it could."
    )


class SelfBillingPublication(RequestModel):
    model_config = request_examples(
        {
            "version": "2027-01",
            "title": "Qalyptus Self-Billing Agreement, 2027 edition",
            "url": "https://partners.example.com/self-billing/2027-01",
        }
    )

    version: VersionName = Field(
        examples=["2027-01"],
        description="The new version's name: letters, digits and . _ -, starting with a letter or digit.",
    )
    title: Name = Field(description="The agreement's title, as partners see it.")
    url: Website | None = Field(
        default=None,
        description="Where the agreement's text can be read: an http or https URL; null when there is none.",
    )


class SelfBillingAgreement(BaseModel):
    version: str = Field(description="The version's name.")
    title: str = Field(description="The agreement's title.")
    url: str | None = Field(description="Where its text can be read; null when none was given.")
    published_at: datetime = Field(
        description="When the version was published: from then on only partners that accepted it are payable."
    )


class SelfBillingAcceptanceRequest(RequestModel):
    model_config = request_examples({"version": "2027-01"})

    version: VersionName = Field(description="The version accepted; must be the one in force.")


class SelfBillingAcceptance(BaseModel):
    version: str = Field(description="The self-billing agreement version accepted.")
    accepted_at: datetime = Field(description="When it was accepted.")
    accepted_by: str = Field(
        description="Who recorded it: `partner:<id>`, or `admin:<key id>` for an admin acting for the partner."
    )


class SelfBillingAgreementList(OnePage):
    items: list[SelfBillingAgreement] = Field(description="Self-billing agreement versions, oldest first.")


class SelfBillingAcceptanceList(OnePage):
    items: list[SelfBillingAcceptance] = Field(description="The partner's acceptances, oldest first.")
