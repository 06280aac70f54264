"""Who may do what: the one table of the roles people have, checked in one place (`may`).

A user belongs to one partner or to the vendor and has one role. A partner's users act on their own
partner's data only (as a partner's API key does); the vendor's act on every partner's. What each role
may do is a set of permissions below; `docs/roles.md` shows the same table to people.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    PARTNER = "partner"
    VENDOR = "vendor"


class Role(StrEnum):
    OWNER = "owner"
    SALES = "sales"
    PARTNER_FINANCE = "partner_finance"
    ADMIN = "admin"
    PARTNER_MANAGER = "partner_manager"
    VENDOR_FINANCE = "vendor_finance"
    VIEWER = "viewer"


KIND_OF: dict[Role, Kind] = {
    Role.OWNER: Kind.PARTNER,
    Role.SALES: Kind.PARTNER,
    Role.PARTNER_FINANCE: Kind.PARTNER,
    Role.ADMIN: Kind.VENDOR,
    Role.PARTNER_MANAGER: Kind.VENDOR,
    Role.VENDOR_FINANCE: Kind.VENDOR,
    Role.VIEWER: Kind.VENDOR,
}
"""The kind of user each role is for: a partner's or the vendor's."""

NAMES: dict[Role, str] = {
    Role.OWNER: "owner",
    Role.SALES: "sales",
    Role.PARTNER_FINANCE: "finance",
    Role.ADMIN: "admin",
    Role.PARTNER_MANAGER: "partner_manager",
    Role.VENDOR_FINANCE: "finance",
    Role.VIEWER: "viewer",
}
"""How the API names each role, within its kind (a partner's `finance` and the vendor's differ)."""


def role_named(kind: Kind, name: str) -> Role | None:
    """The role the API calls `name` among the roles of `kind`."""
    return next((r for r, n in NAMES.items() if n == name and KIND_OF[r] is kind), None)


class Permission(StrEnum):
    # A partner's own data (a partner's users: their partner; the vendor's: any partner).
    PROFILE_READ = "profile.read"
    PROFILE_WRITE = "profile.write"
    DIRECTORY_READ = "directory.read"
    DIRECTORY_WRITE = "directory.write"
    TEAM_READ = "team.read"
    TEAM_WRITE = "team.write"
    API_KEYS_WRITE = "api_keys.write"
    REGISTRATIONS_READ = "registrations.read"
    REGISTRATIONS_WRITE = "registrations.write"
    LEADS_READ = "leads.read"
    LEADS_WRITE = "leads.write"
    CUSTOMERS_READ = "customers.read"
    ORDERS_READ = "orders.read"
    LEDGER_READ = "ledger.read"
    STATEMENTS_READ = "statements.read"
    PAYOUTS_READ = "payouts.read"
    INVOICES_READ = "invoices.read"
    PAYEE_READ = "payee.read"
    PAYEE_WRITE = "payee.write"
    NOTIFICATIONS_OWN = "notifications.own"
    # The vendor's program.
    VENDOR_USERS_READ = "vendor_users.read"
    VENDOR_USERS_WRITE = "vendor_users.write"
    SETTINGS_WRITE = "settings.write"
    SUBSCRIPTIONS_WRITE = "subscriptions.write"
    PARTNERS_STATUS_WRITE = "partners.status.write"
    IMPORTS_WRITE = "imports.write"
    REVIEWS_WRITE = "reviews.write"
    TERMS_WRITE = "terms.write"
    QUARTERS_WRITE = "quarters.write"
    STATEMENTS_WRITE = "statements.write"
    PAYOUT_RUNS_WRITE = "payout_runs.write"
    INVOICES_WRITE = "invoices.write"
    ADJUSTMENTS_WRITE = "adjustments.write"
    MAIL_LOG_READ = "mail_log.read"
    READ_ALL = "read_all"
    """Read every partner's data and the program's."""


P = Permission
_PARTNER_READS = frozenset({P.PROFILE_READ, P.DIRECTORY_READ, P.TEAM_READ, P.NOTIFICATIONS_OWN})
_VENDOR_READS = frozenset(
    {
        P.READ_ALL,
        P.PROFILE_READ,
        P.DIRECTORY_READ,
        P.TEAM_READ,
        P.REGISTRATIONS_READ,
        P.LEADS_READ,
        P.CUSTOMERS_READ,
        P.ORDERS_READ,
        P.LEDGER_READ,
        P.STATEMENTS_READ,
        P.PAYOUTS_READ,
        P.INVOICES_READ,
        P.PAYEE_READ,
        P.VENDOR_USERS_READ,
        P.MAIL_LOG_READ,
        P.NOTIFICATIONS_OWN,
    }
)
_PARTNER_MANAGER = _VENDOR_READS | {
    P.PARTNERS_STATUS_WRITE,
    P.REGISTRATIONS_WRITE,
    P.LEADS_WRITE,
    P.IMPORTS_WRITE,
    P.REVIEWS_WRITE,
    P.TERMS_WRITE,
    P.TEAM_WRITE,
}
_VENDOR_FINANCE = _VENDOR_READS | {
    P.QUARTERS_WRITE,
    P.STATEMENTS_WRITE,
    P.PAYOUT_RUNS_WRITE,
    P.INVOICES_WRITE,
    P.ADJUSTMENTS_WRITE,
}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _PARTNER_READS
    | {
        P.PROFILE_WRITE,
        P.DIRECTORY_WRITE,
        P.TEAM_WRITE,
        P.API_KEYS_WRITE,
        P.REGISTRATIONS_READ,
        P.REGISTRATIONS_WRITE,
        P.LEADS_READ,
        P.LEADS_WRITE,
        P.CUSTOMERS_READ,
        P.ORDERS_READ,
        P.LEDGER_READ,
        P.STATEMENTS_READ,
        P.PAYOUTS_READ,
        P.INVOICES_READ,
        P.PAYEE_READ,
        P.PAYEE_WRITE,
    },
    Role.SALES: _PARTNER_READS
    | {
        P.REGISTRATIONS_READ,
        P.REGISTRATIONS_WRITE,
        P.LEADS_READ,
        P.LEADS_WRITE,
        P.CUSTOMERS_READ,
        P.ORDERS_READ,
        P.LEDGER_READ,
    },
    Role.PARTNER_FINANCE: _PARTNER_READS
    | {P.STATEMENTS_READ, P.PAYOUTS_READ, P.INVOICES_READ, P.PAYEE_READ, P.PAYEE_WRITE, P.LEDGER_READ},
    Role.ADMIN: frozenset(Permission),
    Role.PARTNER_MANAGER: frozenset(_PARTNER_MANAGER),
    Role.VENDOR_FINANCE: frozenset(_VENDOR_FINANCE),
    Role.VIEWER: _VENDOR_READS,
}
"""The table: what each role may do."""

INVITES: dict[Role, frozenset[Role]] = {
    Role.OWNER: frozenset({Role.OWNER, Role.SALES, Role.PARTNER_FINANCE}),
    Role.ADMIN: frozenset(Role),
    Role.PARTNER_MANAGER: frozenset({Role.OWNER, Role.SALES, Role.PARTNER_FINANCE}),
}
"""Whom each role may invite (and give a role to): owners their partner's team, vendor admins anyone,
partner managers a partner's team."""


def may(role: Role, permission: Permission) -> bool:
    """Whether a user of `role` may do what `permission` names."""
    return permission in PERMISSIONS[role]


def may_act_for(role: Role, own_partner: str | None, partner: str | None) -> bool:
    """Whether a user of `role` (of `own_partner`, for a partner's user) may act on `partner`'s data
    (None: the program's own, no partner's)."""
    if KIND_OF[role] is Kind.VENDOR:
        return True
    return partner is not None and partner == own_partner


def may_invite(role: Role, invited: Role) -> bool:
    return invited in INVITES.get(role, frozenset())


ORDER = (
    Role.OWNER,
    Role.SALES,
    Role.PARTNER_FINANCE,
    Role.ADMIN,
    Role.PARTNER_MANAGER,
    Role.VENDOR_FINANCE,
    Role.VIEWER,
)


def markdown_table() -> str:
    """The table as `docs/roles.md` shows it (tests/test_people.py keeps the two the same)."""
    head = "| permission | " + " | ".join(f"{KIND_OF[r].value} `{NAMES[r]}`" for r in ORDER) + " |"
    rule = "| --- |" + " :---: |" * len(ORDER)
    rows = [
        f"| `{p.value}` | " + " | ".join("yes" if p in PERMISSIONS[r] else "" for r in ORDER) + " |" for p in Permission
    ]
    invites = (
        "| invites | "
        + " | ".join(", ".join(f"`{NAMES[i]}`" for i in ORDER if i in INVITES.get(r, frozenset())) for r in ORDER)
        + " |"
    )
    return "\n".join([head, rule, *rows, invites]) + "\n"
