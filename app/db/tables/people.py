"""People: user accounts (a partner's or the vendor's, with one role), their single-use links
(invitations, password resets), their browser sessions and second factor, and the mail the program
sends them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


class User(SQLModel, table=True):
    """A person who signs in: one partner's (`partner_id`) or the vendor's (none), with one role."""

    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    """Lower-cased: one address is one user across the whole service."""
    name: str | None = Field(default=None, max_length=200)
    kind: str = Field(max_length=16)
    """`partner` or `vendor`."""
    partner_id: uuid.UUID | None = Field(default=None, foreign_key="partners.id", index=True)
    role: str = Field(max_length=32)
    """A member of `app.domain.rules.roles.Role`."""
    status: str = Field(max_length=16)
    """`invited` (no password yet), `active` or `deactivated`."""
    time_zone: str = Field(default="Europe/Paris", max_length=64)
    password_hash: str | None = Field(default=None, sa_type=Text)
    """Argon2id (PHC string); null until the invitation is accepted."""
    password_changed_at: datetime | None = utc_column(nullable=True)
    totp_secret: str | None = Field(default=None, sa_type=Text)
    """The second factor's secret, encrypted with PARTNERS_SECRETS_KEY; null when it is off."""
    totp_enabled_at: datetime | None = utc_column(nullable=True)
    """Null while the second factor is being set up (secret given, no code confirmed yet) or off."""
    totp_last_step: int | None = None
    """The time step of the last code accepted: a code is refused when reused."""
    notifications: dict[str, bool] = Field(default_factory=dict, sa_type=JSON)
    """Notifications turned off (`name: false`); every other one is on."""
    created_at: datetime = utc_column()
    created_by: str = Field(max_length=100)
    activated_at: datetime | None = utc_column(nullable=True)
    deactivated_at: datetime | None = utc_column(nullable=True)


class UserToken(SQLModel, table=True):
    """A single-use link sent by mail: an invitation (sets the first password) or a password reset.
    Only the SHA-256 of its secret is kept."""

    __tablename__ = "user_tokens"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    purpose: str = Field(max_length=16)
    """`invitation` or `reset`."""
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = utc_column()
    expires_at: datetime = utc_column()
    used_at: datetime | None = utc_column(nullable=True)


class UserSession(SQLModel, table=True):
    """A browser's sign-in: the cookie holds a random id, the table its SHA-256. Ends when idle too
    long, at its absolute expiry, at sign-out, or when revoked (the user deactivated, its partner
    terminated, its password changed)."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index(None, "user_id", "revoked_at"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: uuid.UUID = Field(foreign_key="users.id")
    csrf_token: str = Field(max_length=64)
    """Sent back by the browser with every state-changing request of the session."""
    created_at: datetime = utc_column()
    last_seen_at: datetime = utc_column()
    expires_at: datetime = utc_column()
    """The absolute expiry, however active the session is."""
    revoked_at: datetime | None = utc_column(nullable=True)
    revoked_because: str | None = Field(default=None, max_length=200)
    client: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)


class RecoveryCode(SQLModel, table=True):
    """A one-time code that stands in for the second factor (its SHA-256)."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    code_hash: str = Field(max_length=64)
    created_at: datetime = utc_column()
    used_at: datetime | None = utc_column(nullable=True)


class MailMessage(SQLModel, table=True):
    """A message the program sends, from the outbox to the SMTP server: claimed by a worker, sent
    outside any transaction, retried with backoff; kept as the mail log admins read."""

    __tablename__ = "mail_messages"
    __table_args__ = (Index(None, "state", "next_attempt_at"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    to_address: str = Field(max_length=254)
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", index=True)
    template: str = Field(max_length=64)
    subject: str = Field(max_length=300)
    text_body: str = Field(sa_type=Text)
    """Encrypted with PARTNERS_SECRETS_KEY, as is `html_body`: a message may carry a single-use link."""
    html_body: str = Field(sa_type=Text)
    state: str = Field(max_length=16)
    """`pending`, `sent`, or `failed` (given up after the last attempt)."""
    attempts: int = 0
    next_attempt_at: datetime = utc_column()
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = utc_column(nullable=True)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = utc_column()
    sent_at: datetime | None = utc_column(nullable=True)
    refs: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    """What the message is about (a partner, a lead, a statement)."""
