"""Status reads at the stack's ceiling (issue 25): what the status read takes from structures the
writers keep, and the in-process caches' bound."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import Api
from tests.program import Customer, Program, line, t


@pytest.fixture
def program(api: Api, delivery: str) -> Program:
    """Store events the test delivers are applied one by one, or together (`delivery`: both ways)."""
    return Program(api)


async def _standing_drift(api: Api) -> list[Any]:
    """Licences whose kept `standing_points` differ from the sum of their points entries."""
    assert api.connection is not None
    rows = await api.connection.execute(
        text(
            "SELECT l.licence_id, l.standing_points, "
            "COALESCE((SELECT SUM(p.points) FROM points_entries p WHERE p.licence_id = l.licence_id), 0) "
            "FROM licences l"
        )
    )
    return [tuple(r) for r in rows if r[1] != r[2]]


async def test_r03_a_licences_standing_points_follow_its_entries_through_lapse_renewal_and_refund(
    program: Program, api: Api
) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-01T09:00:00Z")
    order = await program.order(
        c,
        [
            line("server-business", 3, 300000, line_id="sb", licence_id="lic-sb", term_end=t("2026-07-01T00:00:00Z")),
            line("desktop", 2, 0, licence_id="lic-d", term_end=t("2026-03-01T00:00:00Z")),
        ],
        placed_at="2026-01-20T09:00:00Z",
        buyer=p[0],
    )
    assert await _standing_drift(api) == []
    program.at("2026-02-01T00:00:00Z")
    assert (await program.status(p))["points_at_risk"] == 2  # lic-d ends within 60 days
    order_id = order["event"]["data"]["order_id"]
    await program.refund(order_id, [("sb", 100000)], at="2026-02-02T09:00:00Z")  # one licence back
    await program.lapse("lic-d", at="2026-03-01T00:00:00Z")
    assert await _standing_drift(api) == []
    program.at("2026-05-15T00:00:00Z")
    status = await program.status(p)
    assert status["points_at_risk"] == 8  # lic-sb, two licences left; lic-d lapsed
    await program.order(
        c,
        [line("desktop", 2, 0, kind="renewal", licence_id="lic-d", term_end=t("2027-03-01T00:00:00Z"))],
        placed_at="2026-05-16T00:00:00Z",
        buyer=p[0],
    )
    assert await _standing_drift(api) == []
    assert (await program.status(p))["points_at_risk"] == 8
