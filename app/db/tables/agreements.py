"""Agreement versions and their acceptances."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


class AgreementVersion(SQLModel, table=True):
    __tablename__ = "agreement_versions"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    version: str = Field(max_length=50, unique=True)
    title: str = Field(max_length=200)
    url: str | None = Field(default=None, sa_type=Text)
    published_at: datetime = utc_column(index=True)
    accept_by: datetime = utc_column()
    """Until this moment the acceptance of the previous version still binds a partner."""


class AgreementAcceptance(SQLModel, table=True):
    __tablename__ = "agreement_acceptances"
    __table_args__ = (UniqueConstraint("partner_id", "agreement_version_id"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    agreement_version_id: int = Field(sa_type=BigIntId, foreign_key="agreement_versions.id")
    accepted_at: datetime = utc_column()
