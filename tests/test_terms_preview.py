"""Terms-change previews: draft terms replayed over the program's history, nothing of it changed
(R01-R03, R10-R14)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db.tables import metadata
from app.domain.rules.money import commission
from app.domain.rules.terms import POLICY_TERMS
from app.worker import previews
from tests.conftest import Api
from tests.program import Customer, Program, line

POLICY = POLICY_TERMS.model_dump(mode="json")
EFFECTIVE = "2026-07-01T00:00:00Z"


def _draft(**changes: Any) -> dict[str, Any]:
    return {**POLICY, **changes}


def _levels(
    silver: int = 1, gold: int = 160, platinum: int = 265, rates: tuple[int, int, int] = (2000, 2500, 3000)
) -> Any:
    return [
        {"level": "affiliate", "min_points": 0, "rate_bp": 0},
        {"level": "silver", "min_points": silver, "rate_bp": rates[0]},
        {"level": "gold", "min_points": gold, "rate_bp": rates[1]},
        {"level": "platinum", "min_points": platinum, "rate_bp": rates[2]},
    ]


async def _preview(api: Api, draft: dict[str, Any], **window: str) -> dict[str, Any]:
    """Ask for a preview, let the worker compute it, and read it."""
    asked = await api.client.post(
        "/v1/program/terms/preview", json={"effective_from": EFFECTIVE, "terms": draft, **window}, headers=api.admin
    )
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "queued" and asked.headers["location"] == asked.json()["url"]
    assert await previews.settle(api.app.state.worker) == 1
    done = await api.client.get(asked.json()["url"], headers=api.admin)
    assert done.status_code == 200 and done.json()["status"] == "done", done.text
    return dict(done.json())


async def _partners(api: Api, preview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    page = await api.client.get(preview["partners_url"] + "?limit=1000", headers=api.admin)
    assert page.status_code == 200, page.text
    return {p["company"]: p for p in page.json()["items"]}


async def _referrals(api: Api, program: Program, amounts: list[int]) -> tuple[str, str]:
    """A partner whose registered customers bought directly in 2026-Q1 (R11), one order per amount."""
    partner = await program.partner(at="2026-01-05T09:00:00Z")
    for n, paid in enumerate(amounts):
        customer = Customer.new(f"Buyer{n}")
        assert (await program.register(partner, customer, at="2026-01-06T09:00:00Z")).status_code == 201
        await program.order(
            customer, [line("server-business", 1, paid, tax=paid // 6)], placed_at=f"2026-02-{n + 2:02d}T10:00:00Z"
        )
    return partner


async def _close_q1(api: Api, program: Program) -> None:
    program.at("2026-04-02T09:00:00Z")
    closed = await api.client.post("/v1/quarters/2026-Q1/close", headers=api.admin)
    assert closed.status_code == 200, closed.text


async def test_r01_r14_the_draft_equal_to_the_terms_in_force_previews_no_change_at_all(api: Api) -> None:
    program = Program(api)
    await _referrals(api, program, [100000, 33333, 4999])
    rich = await program.partner(at="2026-01-07T09:00:00Z")
    adjusted = await api.client.post(
        f"/v1/partners/{rich[0]}/adjustments",
        json={"kind": "points", "amount": 170, "reason": "migrated"},
        headers=api.admin,
    )
    assert adjusted.status_code == 201, adjusted.text
    customer = Customer.new("Refunded")
    assert (await program.register(rich, customer, at="2026-01-08T09:00:00Z")).status_code == 201
    sold = await program.order(
        customer, [line("server-enterprise", 2, 50001, line_id="L1")], placed_at="2026-02-20T10:00:00Z"
    )
    await program.refund(sold["event"]["data"]["order_id"], [("L1", 12345)], at="2026-03-01T10:00:00Z")
    await _close_q1(api, program)

    preview = await _preview(api, POLICY)
    assert (preview["first_quarter"], preview["last_quarter"]) == ("2025-Q2", "2026-Q1")  # the last 4 closed
    assert preview["modelled"] == [] and preview["not_modelled"] == []
    result = preview["result"]
    assert result["orders_replayed"] == 4 and result["orders_refused"] == {}
    assert (result["promotions"], result["demotions"], result["discounts_lowered"], result["discounts_raised"]) == (
        0,
        0,
        0,
        0,
    )
    assert result["commission"] and all(f["difference"] == 0 and f["actual"] > 0 for f in result["commission"])
    assert all(q["difference"] == 0 for q in result["by_quarter"])
    for level in result["by_level"]:
        assert level["partners_now"] == level["partners_draft"]
        assert all(f["difference"] == 0 for f in level["commission"])
    for partner in (await _partners(api, preview)).values():
        assert (
            partner["level_now"] == partner["level_draft"] == partner["level_current_terms"] == partner["level_recount"]
        )
        assert partner["discount_bp_now"] == partner["discount_bp_draft"]
        assert partner["points_recount"] == partner["points_at_effective_date"] == partner["points_now"]
        assert all(f["difference"] == 0 for f in partner["commission"])
    # What the ledger holds, for the refunded line: 20 % of its net less R14's reversal.
    money = sum(e["amount"] for e in await program.money(rich))
    [rich_row] = [p for p in (await _partners(api, preview)).values() if p["partner_id"] == rich[0]]
    assert rich_row["commission"] == [{"currency": "EUR", "actual": money, "draft": money, "difference": 0}]


async def test_r02_r03_a_threshold_raise_demotes_exactly_the_partners_between_the_old_and_new_thresholds(
    api: Api,
) -> None:
    """R02, R03: points now, under the draft's thresholds; publishing never recounts past points."""
    points = {"Below": 159, "Between": 170, "Edge": 199, "Above": 200, "Top": 300}
    for company, amount in points.items():
        partner, _ = await api.register(company=f"{company} GmbH")
        made = await api.client.post(
            f"/v1/partners/{partner['id']}/adjustments",
            json={"kind": "points", "amount": amount, "reason": "migrated"},
            headers=api.admin,
        )
        assert made.status_code == 201, made.text
    preview = await _preview(api, _draft(levels=_levels(gold=200)), first_quarter="2026-Q1", last_quarter="2026-Q1")
    assert [m["field"] for m in preview["modelled"]] == ["levels"]
    rows = await _partners(api, preview)
    demoted = {c.split()[0] for c, p in rows.items() if p["level_draft"] != p["level_now"]}
    assert demoted == {"Between", "Edge"}  # 160 <= points < 200: Gold now, Silver under the draft
    assert all(rows[f"{c} GmbH"]["level_draft"] == "silver" for c in demoted)
    assert preview["result"]["demotions"] == 2 and preview["result"]["promotions"] == 0
    assert preview["result"]["discounts_lowered"] == 2  # Gold's 25 % to Silver's 20 %
    assert [p["company"] for p in preview["result"]["most_affected"][:2]] == ["Between GmbH", "Edge GmbH"]


async def test_r11_r15_a_referral_rate_from_20_to_25_percent_sums_each_lines_commission_rounded_as_the_ledger_rounds(
    api: Api,
) -> None:
    """R11, R15: every line's commission at 25 %, rounded half-up to the cent, summed."""
    program = Program(api)
    amounts = [100001, 33333, 4999, 77777]
    partner = await _referrals(api, program, amounts)
    await _close_q1(api, program)
    preview = await _preview(api, _draft(referral_rate_bp=2500))
    nets = [paid - paid // 6 for paid in amounts]
    expected = sum(commission(net, 2500) for net in nets)
    actual = sum(commission(net, 2000) for net in nets)
    assert actual == sum(e["amount"] for e in await program.money(partner))  # the ledger's own figure
    assert preview["result"]["commission"] == [
        {"currency": "EUR", "actual": actual, "draft": expected, "difference": expected - actual}
    ]
    assert preview["result"]["by_quarter"] == [
        {
            "quarter": "2026-Q1",
            "kind": "R11",
            "currency": "EUR",
            "actual": actual,
            "draft": expected,
            "difference": expected - actual,
        }
    ]
    sheet = await api.client.get(preview["partners_url"] + ".csv", headers=api.admin)
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    [first, *_] = list(csv.DictReader(io.StringIO(sheet.text)))
    assert (first["partner_id"], first["commission_draft"], first["impact_rank"]) == (partner[0], str(expected), "1")


async def _counts(api: Api) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with api.app.state.session_factory() as session:
        for table in metadata.sorted_tables:
            counts[table.name] = int((await session.execute(select(func.count()).select_from(table))).scalar_one())
    return counts


async def test_a_preview_changes_no_program_data_and_is_kept_with_the_terms_published_from_it(api: Api) -> None:
    program = Program(api)
    await _referrals(api, program, [100000])
    await _close_q1(api, program)
    before = await _counts(api)
    draft = _draft(referral_rate_bp=2500, hold_days=30)
    preview = await _preview(api, draft)
    after = await _counts(api)
    own = {"terms_previews", "terms_preview_partners"}
    assert {k: v for k, v in after.items() if k not in own} == {k: v for k, v in before.items() if k not in own}
    assert after["terms_previews"] == before["terms_previews"] + 1 and after["terms_preview_partners"] >= 1
    assert preview["not_modelled"] == ["hold_days"]  # said, not shown
    assert preview["expires_at"] is not None

    # Published: the preview is kept with the version, and read beside what happened since.
    published = await api.client.post(
        "/v1/program/terms", json={"effective_from": EFFECTIVE, "terms": draft}, headers=api.admin
    )
    assert published.status_code == 201, published.text
    version = published.json()["version"]
    kept = await api.client.get(f"/v1/program/terms/versions/{version}/preview", headers=api.admin)
    assert kept.status_code == 200, kept.text
    assert kept.json()["id"] == preview["id"] and kept.json()["published_version"] == version
    assert kept.json()["expires_at"] is None and kept.json()["observed"] == []
    other = await _preview(api, _draft(referral_rate_bp=2200))
    program.at("2026-09-01T09:00:00Z")  # a day and more later: an unpublished preview is gone, this one stays
    assert (await api.client.get(preview["url"], headers=api.admin)).status_code == 200
    assert (await api.client.get(other["url"], headers=api.admin)).status_code == 404
    assert (
        await api.client.get(f"/v1/program/terms/versions/{version - 1}/preview", headers=api.admin)
    ).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"effective_from": "2026-01-01T00:00:00Z"}, "effective_from"),
        ({"first_quarter": "2026-Q3", "last_quarter": "2026-Q1"}, None),
        ({"first_quarter": "2020-Q1", "last_quarter": "2026-Q1"}, None),
        ({"last_quarter": "2027-Q1"}, None),
    ],
)
async def test_a_preview_that_cannot_be_made_is_refused_with_why(
    api: Api, body: dict[str, Any], field: str | None
) -> None:
    refused = await api.client.post(
        "/v1/program/terms/preview", json={"effective_from": EFFECTIVE, "terms": POLICY, **body}, headers=api.admin
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == ("effective_from_not_in_future" if field else "window_invalid")
