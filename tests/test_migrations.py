"""Migrations run forward and back on both dialects, and match the table models."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from app.db import migrate
from app.db.session import create_engine
from app.db.tables import metadata
from app.db.types import UTCDateTime

RECORDS_COMPATIBILITY = "13c327b4c51c"
"""The migration that created `schema_compatibility`; those before it declared nothing."""


async def _diff(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            def compare(sync_conn: Any) -> list[Any]:
                context = MigrationContext.configure(
                    sync_conn, opts={"compare_type": True, "include_object": migrate.include_object}
                )
                return list(compare_metadata(context, metadata))

            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
    finally:
        await engine.dispose()


def test_models_and_migrations_agree(committing_database_url: str) -> None:
    assert asyncio.run(_diff(committing_database_url)) == []


def test_downgrade_to_base_and_upgrade_again(committing_database_url: str) -> None:
    migrate.downgrade(committing_database_url, "base")
    migrate.upgrade(committing_database_url)
    assert asyncio.run(_count(committing_database_url, "agreement_versions")) == 1
    assert asyncio.run(_count(committing_database_url, "program_settings")) == 1
    assert asyncio.run(_diff(committing_database_url)) == []


def test_every_migration_declares_the_oldest_application_revision_it_stays_compatible_with() -> None:
    """From the migration that records compatibility on, each declares `compatible_with`: itself (a
    contract step) or, for an expand-only step, a revision before it no older than its parent's."""
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    chain = list(reversed(list(script.walk_revisions())))
    first = next(i for i, rev in enumerate(chain) if rev.revision == RECORDS_COMPATIBILITY)
    position = {rev.revision: i for i, rev in enumerate(chain)}
    previous = position[chain[first - 1].revision]
    for rev in chain[first:]:
        declared = getattr(rev.module, "compatible_with", None)
        assert declared, f"{rev.revision} ({rev.path}) declares no compatible_with"
        assert declared in position and position[declared] <= position[rev.revision], (
            f"{rev.revision}: compatible_with {declared!r} is neither itself nor a migration before it"
        )
        assert position[declared] >= previous, (
            f"{rev.revision}: compatible_with {declared!r} is older than the migration before it declares"
        )
        previous = position[declared]


BEFORE_PUBLISHED_NAMES = "13c327b4c51c"
"""The revision before the directory showed the approved company name and website (R18)."""


async def _insert_partner(url: str, partner_id: uuid.UUID) -> None:
    """A partner as the schema of BEFORE_PUBLISHED_NAMES holds it."""
    partners = sa.table(
        "partners",
        *(sa.column(name, sa.String()) for name in ("company", "country", "contact_name", "contact_email", "website")),
        *(sa.column(name, sa.JSON()) for name in ("languages", "services", "published_services", "regions_served")),
        sa.column("id", sa.Uuid()),
        sa.column("status", sa.String()),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
        sa.column("listed", sa.Boolean()),
        sa.column("level_rank", sa.SmallInteger()),
    )
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                partners.insert().values(
                    id=partner_id,
                    company="Annecy Data SAS",
                    country="FR",
                    contact_name="Ana",
                    contact_email="ana@annecy-data.example",
                    website="https://annecy-data.example/",
                    languages=["fr"],
                    services=[],
                    published_services=[],
                    regions_served=[],
                    status="active",
                    created_at=at,
                    updated_at=at,
                    listed=True,
                    level_rank=3,
                )
            )
    finally:
        await engine.dispose()


async def _published(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT company, published_company, website, published_website FROM partners")
            )
            return [tuple(r) for r in rows.all()]
    finally:
        await engine.dispose()


def test_r18_existing_partners_keep_their_name_and_website_as_approved(committing_database_url: str) -> None:
    migrate.downgrade(committing_database_url, BEFORE_PUBLISHED_NAMES)
    asyncio.run(_insert_partner(committing_database_url, uuid.uuid4()))
    migrate.upgrade(committing_database_url)
    assert asyncio.run(_published(committing_database_url)) == [
        ("Annecy Data SAS", "Annecy Data SAS", "https://annecy-data.example/", "https://annecy-data.example/")
    ]
    assert asyncio.run(_diff(committing_database_url)) == []


IDENTIFIER_HISTORY = "1a9a0c0e1d01"


async def _partner_with_audited_changes(url: str) -> uuid.UUID:
    """A partner as the build before the identifier history left it: registered with one website and
    VAT id, moved to a second website through its directory profile (whose snapshots hold only that
    profile's fields), then to a third and cleared its VAT id, every change in the audit log."""
    partner_id = uuid.uuid4()
    registered, changed = datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 4, 6, 9, tzinfo=UTC)
    directory_move = datetime(2026, 3, 20, 9, tzinfo=UTC)
    profile = {"company": "Backfill SA", "country": "FR", "contact_name": "Ana", "languages": ["fr"]}
    first = {**profile, "contact_email": "ana@backfill-group.example", "vat_id": "FR40303265045"}
    first |= {"website": "https://www.first-backfill.example"}
    mid = {**first, "website": "https://mid-backfill.example"}
    later = {**first, "vat_id": None, "website": "https://later-backfill.example"}
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                metadata.tables["partners"].insert(),
                {**later, "id": partner_id, "status": "active", "created_at": registered, "updated_at": changed},
            )
            audit = metadata.tables["audit_events"]
            await conn.execute(
                audit.insert(),
                [
                    {
                        "occurred_at": registered,
                        "actor": "public",
                        "action": "partner.registered",
                        "object_type": "partner",
                        "object_id": str(partner_id),
                        "after": {**first, "status": "active", "agreement_version": "2026-01"},
                    },
                    {
                        "occurred_at": directory_move,
                        "actor": f"partner:{partner_id}",
                        "action": "partner.directory_updated",
                        "object_type": "partner",
                        "object_id": str(partner_id),
                        "before": {"website": first["website"], "description": None},
                        "after": {"website": mid["website"], "description": None},
                    },
                    {
                        "occurred_at": changed,
                        "actor": f"partner:{partner_id}",
                        "action": "partner.updated",
                        "object_type": "partner",
                        "object_id": str(partner_id),
                        "before": mid,
                        "after": later,
                    },
                ],
            )
    finally:
        await engine.dispose()
    return partner_id


async def _identifiers(url: str) -> list[tuple[str, str, str, str | None]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            table = metadata.tables["partner_identifiers"]
            rows = await conn.execute(
                select(table.c.kind, table.c.value, table.c.declared_at, table.c.withdrawn_at).order_by(
                    table.c.declared_at, table.c.kind, table.c.value
                )
            )
            return [(k, v, d.isoformat(), w.isoformat() if w else None) for k, v, d, w in rows]
    finally:
        await engine.dispose()


def test_r22_the_identifier_history_starts_from_the_audit_log(committing_database_url: str) -> None:
    """The migration fills each partner's history from its audited profile snapshots and today's values."""
    before = str(
        ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_revision(IDENTIFIER_HISTORY).down_revision
    )
    migrate.downgrade(committing_database_url, before)
    asyncio.run(_partner_with_audited_changes(committing_database_url))
    migrate.upgrade(committing_database_url)
    assert asyncio.run(_identifiers(committing_database_url)) == [
        ("domain", "backfill-group.example", "2026-03-02T09:00:00+00:00", None),
        ("domain", "first-backfill.example", "2026-03-02T09:00:00+00:00", "2026-03-20T09:00:00+00:00"),
        ("vat", "FR40303265045", "2026-03-02T09:00:00+00:00", "2026-04-06T09:00:00+00:00"),
        ("domain", "mid-backfill.example", "2026-03-20T09:00:00+00:00", "2026-04-06T09:00:00+00:00"),
        ("domain", "later-backfill.example", "2026-04-06T09:00:00+00:00", None),
    ]


URLS_WITHOUT_LENGTH = "1a9f1b2c3d05"


async def _review_partner(url: str, partner_id: uuid.UUID) -> None:
    """A directory review of the partner: a row of another table that references `partners`."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                metadata.tables["directory_reviews"].insert(),
                {
                    "partner_id": partner_id,
                    "kind": "name_and_website",
                    "services": [],
                    "company": "Annecy Data Group",
                    "website": "https://annecy-data-group.example/",
                    "submitted_at": datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
                    "status": "pending",
                },
            )
    finally:
        await engine.dispose()


async def _store_long_urls(url: str, website: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE partners SET website = :w, published_website = :w"), {"w": website})
            await conn.execute(text("UPDATE directory_reviews SET website = :w"), {"w": website})
            await conn.execute(text("UPDATE agreement_versions SET url = :w"), {"w": website})
            rows = await conn.execute(
                text(
                    "SELECT p.website, p.published_website, r.website, a.url FROM partners p "
                    "JOIN directory_reviews r ON r.partner_id = p.id CROSS JOIN agreement_versions a"
                )
            )
            return [tuple(r) for r in rows.all()]
    finally:
        await engine.dispose()


def test_stored_urls_take_any_length_and_the_rows_stay(committing_database_url: str) -> None:
    """The URL columns lose their length with every row kept (on SQLite `partners`, which many tables
    reference, is not rebuilt), and then hold a normalised URL longer than 2083 characters."""
    before = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_revision(URLS_WITHOUT_LENGTH)
    migrate.downgrade(committing_database_url, str(before.down_revision))
    partner_id = uuid.uuid4()
    asyncio.run(_insert_partner(committing_database_url, partner_id))
    asyncio.run(_review_partner(committing_database_url, partner_id))
    migrate.upgrade(committing_database_url)
    assert asyncio.run(_published(committing_database_url)) == [
        ("Annecy Data SAS", None, "https://annecy-data.example/", None)
    ]
    long = "https://annecy-data.example/" + "%F0%9F%98%80" * 2055
    assert asyncio.run(_store_long_urls(committing_database_url, long)) == [(long, long, long, long)]
    assert asyncio.run(_diff(committing_database_url)) == []
