"""The rules that make ledger entries, as data: what the crediting code needs to know about each.

An entry's `rule` column holds a member's value (the rule's id in `docs/program-rules.md`, or `ADJ`
for a manual adjustment). Code names a rule only through this enum: no rule id is written as a
string anywhere else in `app/` (tests/test_rule_names.py checks it). A refund reverses, line by
line, what the rules marked `reversed_by_refund` credited on that line, so a new kind of
commission or points is reversed by adding its member here, not by editing refund code.
"""

from __future__ import annotations

from enum import StrEnum


class LedgerKind(StrEnum):
    POINTS = "points"
    MONEY = "money"


class Rule(StrEnum):
    """A rule that makes ledger entries. Its value is what the entries store in `rule`."""

    ledgers: frozenset[LedgerKind]
    """The ledgers its entries go to."""
    earns: bool
    """Whether its entries credit a partner for a sale (points or commission an order earns)."""
    reversed_by_refund: bool
    """R14: whether a refund of a line reverses, in proportion, what this rule credited on that line
    (its positive entries; a renewal's R10 entries that take points away are not credits)."""
    summary: str

    def __new__(
        cls, value: str, ledgers: frozenset[LedgerKind], earns: bool, reversed_by_refund: bool, summary: str
    ) -> Rule:
        member = str.__new__(cls, value)
        member._value_ = value
        member.ledgers = ledgers
        member.earns = earns
        member.reversed_by_refund = reversed_by_refund
        member.summary = summary
        return member

    NEW_LICENCES = ("R09", frozenset({LedgerKind.POINTS}), True, True, "points for new licences sold")
    LAPSE_AND_RENEWAL = (
        "R10",
        frozenset({LedgerKind.POINTS}),
        True,
        True,
        "points taken away when a licence lapses, restored when it is renewed",
    )
    REFERRAL_COMMISSION = (
        "R11",
        frozenset({LedgerKind.MONEY}),
        True,
        True,
        "commission on a referred customer's orders in the referral window",
    )
    LIFETIME_COMMISSION = (
        "R13",
        frozenset({LedgerKind.MONEY}),
        True,
        True,
        "lifetime commission of Silver and above on customers buying directly",
    )
    REFUND = (
        "R14",
        frozenset({LedgerKind.POINTS, LedgerKind.MONEY}),
        False,
        False,
        "reversal of what a refunded line credited",
    )
    ADJUSTMENT = (
        "ADJ",
        frozenset({LedgerKind.POINTS, LedgerKind.MONEY}),
        False,
        False,
        "a manual adjustment by an admin",
    )

    @classmethod
    def refunded(cls, ledger: LedgerKind) -> tuple[Rule, ...]:
        """The rules whose credits on a line a refund of that line reverses, in this ledger (R14)."""
        return tuple(rule for rule in cls if rule.reversed_by_refund and ledger in rule.ledgers)
