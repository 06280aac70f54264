"""Pure rules behind R04: status transitions, status at a past moment, agreement binding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.rules.partner_status import (
    Acceptance,
    AgreementVersionView,
    PartnerStatus,
    StatusAction,
    StatusPeriod,
    agreement_binding_at,
    next_status,
    status_at,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "action", "expected"),
    [
        (PartnerStatus.PENDING, StatusAction.APPROVE, PartnerStatus.ACTIVE),
        (PartnerStatus.ACTIVE, StatusAction.APPROVE, None),
        (PartnerStatus.ACTIVE, StatusAction.SUSPEND, PartnerStatus.SUSPENDED),
        (PartnerStatus.PENDING, StatusAction.SUSPEND, None),
        (PartnerStatus.SUSPENDED, StatusAction.REINSTATE, PartnerStatus.ACTIVE),
        (PartnerStatus.ACTIVE, StatusAction.REINSTATE, None),
        (PartnerStatus.PENDING, StatusAction.TERMINATE, PartnerStatus.TERMINATED),
        (PartnerStatus.ACTIVE, StatusAction.TERMINATE, PartnerStatus.TERMINATED),
        (PartnerStatus.SUSPENDED, StatusAction.TERMINATE, PartnerStatus.TERMINATED),
        (PartnerStatus.TERMINATED, StatusAction.TERMINATE, None),
        (PartnerStatus.TERMINATED, StatusAction.REINSTATE, None),
    ],
)
def test_transitions(current: PartnerStatus, action: StatusAction, expected: PartnerStatus | None) -> None:
    assert next_status(current, action) == expected


def test_r04_status_at_reads_the_history_as_of_a_moment() -> None:
    history = [
        StatusPeriod(PartnerStatus.ACTIVE, T0),
        StatusPeriod(PartnerStatus.SUSPENDED, T0 + timedelta(days=10)),
        StatusPeriod(PartnerStatus.ACTIVE, T0 + timedelta(days=20)),
    ]
    assert status_at(history, T0 - timedelta(seconds=1)) is None
    assert status_at(history, T0) == PartnerStatus.ACTIVE
    assert status_at(history, T0 + timedelta(days=10) - timedelta(microseconds=1)) == PartnerStatus.ACTIVE
    assert status_at(history, T0 + timedelta(days=10)) == PartnerStatus.SUSPENDED
    assert status_at(history, T0 + timedelta(days=15)) == PartnerStatus.SUSPENDED
    assert status_at(list(reversed(history)), T0 + timedelta(days=25)) == PartnerStatus.ACTIVE


V1 = AgreementVersionView(1, "v1", T0, T0)
V2 = AgreementVersionView(2, "v2", T0 + timedelta(days=100), T0 + timedelta(days=130))


def test_r04_agreement_binding_before_any_version_is_published() -> None:
    binding = agreement_binding_at([V1], [], T0 - timedelta(days=1))
    assert not binding.bound and binding.required_version is None


def test_r04_previous_acceptance_counts_until_the_accept_by_date() -> None:
    accepted_v1 = [Acceptance(1, T0 + timedelta(days=1))]
    during_grace = agreement_binding_at([V1, V2], accepted_v1, T0 + timedelta(days=120))
    assert during_grace.bound and during_grace.required_version == "v1"
    assert during_grace.accepted_version == "v1"
    after_grace = agreement_binding_at([V1, V2], accepted_v1, T0 + timedelta(days=130))
    assert not after_grace.bound and after_grace.required_version == "v2"


def test_r04_acceptance_counts_only_from_its_date() -> None:
    accepted_late = [Acceptance(1, T0 + timedelta(days=5))]
    assert not agreement_binding_at([V1], accepted_late, T0 + timedelta(days=4)).bound
    assert agreement_binding_at([V1], accepted_late, T0 + timedelta(days=5)).bound


def test_r04_accepting_the_newer_version_binds_before_and_after_its_accept_by() -> None:
    both = [Acceptance(1, T0), Acceptance(2, T0 + timedelta(days=105))]
    binding = agreement_binding_at([V1, V2], both, T0 + timedelta(days=200))
    assert binding.bound and binding.accepted_version == "v2"
    only_v2 = [Acceptance(2, T0 + timedelta(days=105))]
    assert agreement_binding_at([V1, V2], only_v2, T0 + timedelta(days=110)).bound


def test_r04_first_version_is_required_while_its_accept_by_is_ahead() -> None:
    first = AgreementVersionView(1, "v1", T0, T0 + timedelta(days=30))
    assert not agreement_binding_at([first], [], T0 + timedelta(days=1)).bound
    assert agreement_binding_at([first], [Acceptance(1, T0)], T0 + timedelta(days=1)).bound
