"""API schemas — the partner agreement: versions and acceptances."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.routers.fields import Name, UtcDatetime, VersionName
from app.routers.schemas.common import OnePage, RequestModel, Website, request_examples


class AgreementPublication(RequestModel):
    model_config = request_examples(
        {
            "version": "2027-01",
            "title": "Qalyptus Partner Program Agreement, 2027 edition",
            "url": "https://partners.example.com/agreement/2027-01",
            "accept_by": "2027-03-31T23:59:59Z",
        }
    )

    version: VersionName = Field(
        examples=["2027-01"],
        description="The new agreement version's name: letters, digits and . _ -, starting with a letter or digit.",
    )
    title: Name = Field(
        examples=["Qalyptus Partner Program Agreement, 2027 edition"],
        description="The agreement's title, as partners see it.",
    )
    url: Website | None = Field(
        default=None,
        description="Where the agreement's text can be read: an http or https URL; null when there is none.",
    )
    accept_by: UtcDatetime = Field(description="Until then, acceptance of the previous version still binds a partner.")


class Agreement(BaseModel):
    version: str = Field(description="The agreement version's name.")
    title: str = Field(description="The agreement's title.")
    url: str | None = Field(description="Where its text can be read; null when none was given.")
    published_at: datetime = Field(description="When the version was published.")
    accept_by: datetime = Field(
        description="Until then, acceptance of the previous version still binds a partner (R04)."
    )


class AcceptanceRequest(RequestModel):
    model_config = request_examples({"version": "2027-01"})

    version: VersionName = Field(description="The agreement version the partner accepts; must be the current one.")


class AgreementAcceptance(BaseModel):
    version: str = Field(description="The agreement version accepted.")
    accepted_at: datetime = Field(description="When the partner accepted it.")


class AgreementList(OnePage):
    items: list[Agreement] = Field(description="Agreement versions, oldest first.")


class AgreementAcceptanceList(OnePage):
    items: list[AgreementAcceptance] = Field(description="The partner's acceptances, oldest first.")
