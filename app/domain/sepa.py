"""The SEPA credit-transfer file of a payout run: ISO 20022 `pain.001.001.09` with structured postal
addresses, written by `sepaxml` and validated against the schema it ships before it is kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sepaxml import SepaTransfer
from text_unidecode import unidecode

SCHEMA = "pain.001.001.09"


@dataclass(frozen=True)
class Address:
    street: str | None
    postal_code: str | None
    city: str | None
    country: str

    def structured(self) -> dict[str, str]:
        """The address as `PstlAdr` elements, in the Latin characters SEPA carries, cut to their lengths."""
        fields = {
            "street_name": (self.street, 70),
            "postcode": (self.postal_code, 16),
            "town": (self.city, 35),
            "country": (self.country, 2),
        }
        return {key: unidecode(value)[:size] for key, (value, size) in fields.items() if value}


@dataclass(frozen=True)
class Debtor:
    name: str
    iban: str
    bic: str
    address: Address | None


@dataclass(frozen=True)
class Transfer:
    end_to_end_id: str
    name: str
    iban: str
    bic: str
    address: Address
    amount: int
    """Minor units (cents)."""
    remittance: str


class _Transfer(SepaTransfer):  # type: ignore[misc]
    """sepaxml's transfer, its message id the run's reference rather than a random one, and its
    creation time the run's (from the service's clock, in UTC) rather than the machine's local time."""

    def __init__(self, config: dict[str, Any], message_id: str, created_at: datetime) -> None:
        self._message_id, self._created_at = message_id, created_at
        super().__init__(config, schema=SCHEMA, clean=True)

    def _create_header(self) -> None:
        self.msg_id = self._message_id
        super()._create_header()
        self._xml.find("CstmrCdtTrfInitn/GrpHdr/CreDtTm").text = self._created_at.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )


def credit_transfer(
    message_id: str, created_at: datetime, debtor: Debtor, payment_date: date, transfers: Sequence[Transfer]
) -> str:
    """The file, validated against the `pain.001.001.09` schema (sepaxml raises when it is not valid)."""
    config: dict[str, Any] = {
        "name": debtor.name,
        "IBAN": debtor.iban,
        "BIC": debtor.bic,
        "batch": True,
        "currency": "EUR",
    }
    if debtor.address is not None:
        config["address"] = debtor.address.structured()
    document = _Transfer(config, message_id, created_at)
    for transfer in transfers:
        document.add_payment(
            {
                "name": transfer.name,
                "IBAN": transfer.iban,
                "BIC": transfer.bic,
                "amount": transfer.amount,
                "execution_date": payment_date,
                "description": transfer.remittance,
                "endtoend_id": transfer.end_to_end_id,
                "address": transfer.address.structured(),
            }
        )
    exported: bytes = document.export(validate=True, pretty_print=True)
    return exported.decode("utf-8")
