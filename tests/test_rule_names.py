"""Rules are data (`app/domain/rules/names.py`): code names a rule only through the `Rule` enum."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from app.domain.rules.names import LedgerKind, Rule

APP = Path(__file__).resolve().parent.parent / "app"
RULE_ID = re.compile(r"^(R\d\d[a-z]?|ADJ)$")


def test_no_rule_id_is_written_as_a_string_outside_the_enum() -> None:
    found = []
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP).as_posix()
        if relative == "domain/rules/names.py" or relative.startswith("db/migrations/"):
            continue  # the enum itself; migrations are frozen history
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and RULE_ID.match(node.value):
                found.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert found == [], "name these rules through app.domain.rules.names.Rule:\n" + "\n".join(found)


def test_every_rule_is_a_rule_of_the_program_or_an_adjustment() -> None:
    rules = (Path(__file__).resolve().parent.parent / "docs" / "program-rules.md").read_text()
    for rule in Rule:
        if rule is not Rule.ADJUSTMENT:
            assert re.search(rf"^- \*\*{rule.value} ", rules, re.M), (
                f"{rule.value} is not a rule of docs/program-rules.md"
            )


def test_r14_every_rule_that_earns_and_no_other_is_marked_reversed_by_a_refund() -> None:
    """The table refunds read (`Rule.refunded`): what earns on an order line is reversed by a refund of
    it; the reversal itself and manual adjustments are not (an adjustment is not tied to a line). That
    refunds do reverse by it is shown through the API by the R14 tests."""
    assert set(Rule.refunded(LedgerKind.POINTS)) | set(Rule.refunded(LedgerKind.MONEY)) == {
        rule for rule in Rule if rule.earns
    }
    for rule in Rule.refunded(LedgerKind.MONEY):
        assert LedgerKind.MONEY in rule.ledgers
    assert Rule.REFUND not in Rule.refunded(LedgerKind.POINTS) + Rule.refunded(LedgerKind.MONEY)
