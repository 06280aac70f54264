"""R22: every identifier of its own company a partner ever declared, with when it held it.

The history starts from what the audit log recorded of each partner's profile (the snapshot of its
registration, then the one after each change; before the first recorded change, its `before`), and
ends with what the profile declares today; a value no snapshot shows (a partner registered before the
audit log) counts from the partner's creation. Expand-only: the build before it never reads the table.

Revision ID: 1a9a0c0e1d01
Revises: 1a9b0d1e2c02
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import app.db.types
from app.domain.rules.identifiers import Identifier, declared_identifiers

revision: str = "1a9a0c0e1d01"
down_revision: str | None = "1a9b0d1e2c02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
compatible_with: str = "1a9b0d1e2c02"


def _declared(snapshot: dict[str, Any], fallback: dict[str, Any]) -> frozenset[Identifier]:
    def field(name: str) -> Any:
        return snapshot[name] if name in snapshot else fallback[name]

    email = field("contact_email")
    return declared_identifiers(
        country=str(field("country") or ""),
        vat_id=field("vat_id"),
        website=field("website"),
        contact_email=email if isinstance(email, str) else "",
    )


def _json(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else None


def upgrade() -> None:
    table = op.create_table(
        "partner_identifiers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("declared_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", app.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_partner_identifiers_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_identifiers")),
    )
    with op.batch_alter_table("partner_identifiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_identifiers_partner_id"), ["partner_id"], unique=False)

    bind = op.get_bind()
    utc = app.db.types.UTCDateTime(timezone=True)
    partners = sa.table(
        "partners",
        sa.column("id", sa.Uuid()),
        sa.column("country", sa.String()),
        sa.column("contact_email", sa.String()),
        sa.column("website", sa.String()),
        sa.column("vat_id", sa.String()),
        sa.column("created_at", utc),
    )
    audit = sa.table(
        "audit_events",
        sa.column("id", sa.BigInteger()),
        sa.column("occurred_at", utc),
        sa.column("action", sa.String()),
        sa.column("object_type", sa.String()),
        sa.column("object_id", sa.String()),
        sa.column("before", sa.JSON()),
        sa.column("after", sa.JSON()),
    )
    snapshots: dict[str, list[tuple[str, datetime, dict[str, Any] | None, dict[str, Any] | None]]] = {}
    for action, at, object_id, before, after in bind.execute(
        sa.select(audit.c.action, audit.c.occurred_at, audit.c.object_id, audit.c.before, audit.c.after)
        .where(
            audit.c.object_type == "partner",
            # The directory profile changes the website too; its snapshots hold only its own fields.
            audit.c.action.in_(("partner.registered", "partner.updated", "partner.directory_updated")),
        )
        .order_by(audit.c.occurred_at, audit.c.id)
    ):
        snapshots.setdefault(str(object_id), []).append((action, at, _json(before), _json(after)))

    rows: list[dict[str, Any]] = []
    for partner_id, country, email, website, vat_id, created_at in bind.execute(
        sa.select(
            partners.c.id,
            partners.c.country,
            partners.c.contact_email,
            partners.c.website,
            partners.c.vat_id,
            partners.c.created_at,
        ).order_by(partners.c.created_at, partners.c.id)
    ):
        current = {"country": country, "contact_email": email, "website": website, "vat_id": vat_id}
        timeline: list[tuple[datetime, frozenset[Identifier]]] = []
        known: dict[str, Any] = {}  # the fields as the snapshots so far left them (a partial one carries on)
        for n, (action, at, before, after) in enumerate(snapshots.get(str(partner_id), [])):
            if n == 0 and action != "partner.registered" and before is not None:
                known = {**before}
                timeline.append((created_at, _declared(known, current)))
            if after is not None:
                known = {**known, **after}
                timeline.append((at, _declared(known, current)))
        held: dict[Identifier, datetime] = {}
        for at, declared in timeline:
            for identifier in sorted(set(held) - declared):
                rows.append(_row(partner_id, identifier, held.pop(identifier), at))
            for identifier in sorted(declared - set(held)):
                held[identifier] = at
        for identifier in sorted(_declared(current, current) - set(held)):
            held[identifier] = created_at  # declared today and in no snapshot: counted from the creation
        for identifier, since in sorted(held.items()):
            rows.append(_row(partner_id, identifier, since, None))
    if rows:
        op.bulk_insert(table, rows)


def _row(partner_id: Any, identifier: Identifier, since: datetime, until: datetime | None) -> dict[str, Any]:
    return {
        "partner_id": partner_id,
        "kind": identifier.kind,
        "value": identifier.value,
        "declared_at": since,
        "withdrawn_at": until,
    }


def downgrade() -> None:
    with op.batch_alter_table("partner_identifiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_identifiers_partner_id"))
    op.drop_table("partner_identifiers")
