"""Partner status: the allowed transitions and what the history says about a past moment (R04)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PartnerStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class StatusAction(StrEnum):
    APPROVE = "approve"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    TERMINATE = "terminate"

    @property
    def past_tense(self) -> str:
        return {
            "approve": "approved",
            "suspend": "suspended",
            "reinstate": "reinstated",
            "terminate": "terminated",
        }[self.value]


TRANSITIONS: dict[StatusAction, tuple[frozenset[PartnerStatus], PartnerStatus]] = {
    StatusAction.APPROVE: (frozenset({PartnerStatus.PENDING}), PartnerStatus.ACTIVE),
    StatusAction.SUSPEND: (frozenset({PartnerStatus.ACTIVE}), PartnerStatus.SUSPENDED),
    StatusAction.REINSTATE: (
        frozenset({PartnerStatus.SUSPENDED}),
        PartnerStatus.ACTIVE,
    ),
    StatusAction.TERMINATE: (
        frozenset({PartnerStatus.PENDING, PartnerStatus.ACTIVE, PartnerStatus.SUSPENDED}),
        PartnerStatus.TERMINATED,
    ),
}


def next_status(current: PartnerStatus, action: StatusAction) -> PartnerStatus | None:
    """The status `action` leads to from `current`, or None when it is not allowed."""
    allowed_from, target = TRANSITIONS[action]
    return target if current in allowed_from else None


@dataclass(frozen=True)
class StatusPeriod:
    status: PartnerStatus
    effective_at: datetime


def status_at(history: Sequence[StatusPeriod], at: datetime) -> PartnerStatus | None:
    """The status in force at `at`; None before the partner registered.

    A change effective exactly at `at` is already in force.
    """
    current: PartnerStatus | None = None
    for period in sorted(history, key=lambda p: p.effective_at):
        if period.effective_at <= at:
            current = period.status
        else:
            break
    return current


@dataclass(frozen=True)
class AgreementVersionView:
    id: int
    version: str
    published_at: datetime
    accept_by: datetime


@dataclass(frozen=True)
class Acceptance:
    agreement_version_id: int
    accepted_at: datetime


@dataclass(frozen=True)
class AgreementBinding:
    bound: bool
    required_version: str | None
    """The oldest version whose acceptance still counts at that moment."""
    accepted_version: str | None
    """The newest version the partner had accepted by then."""


def agreement_binding_at(
    versions: Sequence[AgreementVersionView],
    acceptances: Sequence[Acceptance],
    at: datetime,
) -> AgreementBinding:
    """Was the partner bound by the agreement at `at`?

    Each version has an accept-by date; until then the acceptance of the previous version
    counts. So the version required at `at` is the newest published one whose accept-by date
    has passed, or the first version while none has. Accepting any version at least as new as
    the required one binds the partner.
    """
    published = sorted((v for v in versions if v.published_at <= at), key=lambda v: v.published_at)
    if not published:
        return AgreementBinding(False, None, None)
    due = [v for v in published if v.accept_by <= at]
    required = due[-1] if due else published[0]
    rank = {v.id: i for i, v in enumerate(published)}
    accepted = [a for a in acceptances if a.accepted_at <= at and a.agreement_version_id in rank]
    newest = max(accepted, key=lambda a: rank[a.agreement_version_id], default=None)
    newest_version = published[rank[newest.agreement_version_id]] if newest else None
    bound = newest is not None and rank[newest.agreement_version_id] >= rank[required.id]
    return AgreementBinding(bound, required.version, newest_version.version if newest_version else None)
