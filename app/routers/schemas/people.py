"""API schemas of people: users, invitations, sessions, the signed-in account, the mail log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.routers.fields import (
    LINE_PATTERN,
    LINK_TOKEN_PATTERN,
    NONBLANK_LINE_PATTERN,
    SECOND_FACTOR_CODE_PATTERN,
    TIME_ZONE_PATTERN,
)
from app.routers.schemas.common import Email, RequestModel, request_examples

TOKEN_EXAMPLE = "Zk3T0q9xR2bV7mYcL1pH8sWnA5eJ4uGd6oKiQfXyB0w"  # noqa: S105 - an example, made up
"""What a link's token looks like (made-up)."""
RoleName = Literal["owner", "sales", "finance", "admin", "partner_manager", "viewer"]
PartnerRoleName = Literal["owner", "sales", "finance"]
VendorRoleName = Literal["admin", "partner_manager", "finance", "viewer"]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=LINE_PATTERN)]
Token = Annotated[str, StringConstraints(min_length=16, max_length=200, pattern=LINK_TOKEN_PATTERN)]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=NONBLANK_LINE_PATTERN)
]
TimeZone = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=TIME_ZONE_PATTERN)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=SECOND_FACTOR_CODE_PATTERN)]
Address = Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=LINE_PATTERN)]


class UserOut(BaseModel):
    id: uuid.UUID = Field(description="The user's id.")
    email: str = Field(description="The user's e-mail address (lower-cased): one address is one user.")
    name: str | None = Field(description="The user's name, as the user or its inviter gave it.")
    kind: Literal["partner", "vendor"] = Field(description="A partner's user, or the vendor's.")
    partner_id: uuid.UUID | None = Field(description="The partner a partner's user belongs to; null for the vendor's.")
    role: RoleName = Field(description="The user's role within its kind (`docs/roles.md` says what each may do).")
    status: Literal["invited", "active", "deactivated"] = Field(
        description="`invited` until the invitation link sets a password; `deactivated`: cannot sign in."
    )
    time_zone: str = Field(description="The IANA time zone pages show the user's times in.")
    second_factor: bool = Field(description="Whether the user signs in with a TOTP code too.")
    notifications_off: list[str] = Field(description="The notifications the user turned off; every other is sent.")
    created_at: datetime = Field(description="When the user was invited.")
    activated_at: datetime | None = Field(description="When the invitation was accepted.")
    deactivated_at: datetime | None = Field(description="When the user was deactivated.")


class UserList(BaseModel):
    items: list[UserOut] = Field(description="Users, by e-mail address.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    has_more: bool = Field(description="Whether another page follows.")


class PartnerInvite(RequestModel):
    model_config = request_examples({"email": "sales@reseller.example.com", "role": "sales", "name": "Ana Silva"})

    email: Email = Field(description="Where the invitation goes; the user's address from then on.")
    role: PartnerRoleName = Field(description="The role in the partner's team.")
    name: Name | None = Field(default=None, description="The person's name.")
    time_zone: TimeZone = Field(default="Europe/Paris", description="An IANA time zone for the user's pages.")


class VendorInvite(RequestModel):
    model_config = request_examples({"email": "finance@qalyptus.example.com", "role": "finance"})

    email: Email = Field(description="Where the invitation goes; the user's address from then on.")
    role: VendorRoleName = Field(description="The role among the vendor's users.")
    name: Name | None = Field(default=None, description="The person's name.")
    time_zone: TimeZone = Field(default="Europe/Paris", description="An IANA time zone for the user's pages.")


class UserPatch(RequestModel):
    model_config = request_examples({"role": "finance"})

    role: RoleName | None = Field(default=None, description="A new role, of the user's kind.")
    name: Name | None = Field(default=None, description="A new name.")
    time_zone: TimeZone | None = Field(default=None, description="A new IANA time zone.")


class SignIn(RequestModel):
    model_config = request_examples({"email": "ana@reseller.example.com", "password": "a long passphrase of mine"})

    email: Address = Field(description="The account's address.")
    password: Password = Field(description="The account's password.")
    code: Code | None = Field(
        default=None, description="With the second factor on: the authenticator's 6 digits, or a recovery code."
    )


class SessionOut(BaseModel):
    user: UserOut = Field(description="The signed-in user.")
    csrf_token: str = Field(
        description="Send it back as the `X-CSRF-Token` header with every request of this session that changes "
        "anything."
    )
    expires_at: datetime = Field(description="When the session ends however active it is (sign in again then).")
    idle_minutes: int = Field(description="The session also ends after this many minutes without a request.")
    second_factor_setup_required: bool = Field(
        description="The vendor requires a second factor and this user has none yet: only its setup is open."
    )


class AcceptInvitation(RequestModel):
    model_config = request_examples({"token": TOKEN_EXAMPLE, "password": "a long passphrase of mine"})

    token: Token = Field(description="The `token` of the invitation link.")
    password: Password = Field(description="At least 12 characters, not easy to guess.")
    name: Name | None = Field(default=None, description="The person's name, if the invitation had none or it is wrong.")


class ResetRequest(RequestModel):
    model_config = request_examples({"email": "ana@reseller.example.com"})

    email: Address = Field(description="The account's address; answered alike whether an account has it or not.")


class ResetConfirm(RequestModel):
    model_config = request_examples(
        {"token": "Zk3T0q9xR2bV7mYcL1pH8sWnA5eJ4uGd6oKiQfXyB0w", "password": "a new long passphrase"}
    )

    token: Token = Field(description="The `token` of the password-reset link.")
    password: Password = Field(description="At least 12 characters, not easy to guess.")


class Accepted(BaseModel):
    status: Literal["accepted"] = Field(description="Always `accepted`, whether an account has the address or not.")
    detail: str = Field(description="What happens next.")


class PasswordChange(RequestModel):
    model_config = request_examples({"current_password": "the old passphrase", "password": "a new long passphrase"})

    current_password: Password = Field(description="The password in force.")
    password: Password = Field(description="The new one: at least 12 characters, not easy to guess.")


class AccountPatch(RequestModel):
    model_config = request_examples({"time_zone": "America/New_York", "notifications": {"level_changed": False}})

    name: Name | None = Field(default=None, description="A new name.")
    time_zone: TimeZone | None = Field(default=None, description="A new IANA time zone.")
    notifications: dict[str, bool] | None = Field(
        default=None,
        description="Notifications to turn on (true) or off (false), by name: partner_approved, lead_offered, "
        "registration_expiring, registration_expired, statement_ready, statement_paid, level_changed, "
        "directory_reviewed, payee_changed. Invitations and password resets are always sent.",
    )


class SecondFactorSetup(BaseModel):
    secret: str = Field(description="The TOTP secret (base32), to type into an authenticator app.")
    uri: str = Field(description="The same as an `otpauth://` URI, for a QR code.")


class SecondFactorCode(RequestModel):
    model_config = request_examples({"code": "123456"})

    code: Code = Field(description="The authenticator's current 6 digits (or, to turn it off, a recovery code).")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(
        description="Ten one-time codes that stand in for the authenticator: shown only now."
    )


class MailOut(BaseModel):
    id: int = Field(description="The message's id.")
    to: str = Field(description="The address it goes to.")
    user_id: uuid.UUID | None = Field(description="The user it is for, if any.")
    template: str = Field(description="Which message: invitation, password_reset, lead_offered...")
    subject: str = Field(description="Its subject line.")
    state: Literal["pending", "sent", "failed", "off"] = Field(
        description="`pending` (to send, or to try again at `next_attempt_at`), `sent`, `failed` (given up after the "
        "last attempt; kept, and can be sent again), or `off` (mail is turned off: never sent)."
    )
    attempts: int = Field(description="Attempts made.")
    last_error: str | None = Field(description="What the last failed attempt met.")
    next_attempt_at: datetime = Field(description="When it is tried next, while pending.")
    created_at: datetime = Field(description="When the program wrote it.")
    sent_at: datetime | None = Field(description="When the server took it.")


class MailList(BaseModel):
    mail: Literal["smtp", "folder", "off"] = Field(
        description="How this service sends mail now: `smtp`, `folder` (written to files, development), or `off`."
    )
    items: list[MailOut] = Field(description="Messages, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    has_more: bool = Field(description="Whether another page follows.")
