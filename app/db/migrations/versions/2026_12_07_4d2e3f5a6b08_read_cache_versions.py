"""Versions of what service processes hold in memory (issue 25).

- `read_cache_versions`: one row per topic (`api_keys`, `terms`) and a version the database's own
  triggers raise in the transaction of any change that a process's cache of that topic must not outlive:
  a key revoked, deleted or given other scopes, kind, owner or hash (not its `last_used_at`); any
  change of program terms versions. Every process reads the row at most every second or so and drops
  its cache of a topic whose version moved (app/domain/read_cache.py), whichever process, instance or
  tool made the change.

Expand-only: a new table and triggers; the build before it neither reads nor needs it.

Revision ID: 4d2e3f5a6b08
Revises: 3c1d2e4f5a07
Create Date: 2026-12-07 21:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '4d2e3f5a6b08'
down_revision: str | None = '3c1d2e4f5a07'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The oldest application revision that still works against the schema after this migration (see
# "Deploys and migrations" in README.md): itself for a contract change (a column dropped, renamed or
# made required, data rewritten for new rules); for an expand-only one (a table, a nullable column,
# an index), the `compatible_with` of the migration before it.
compatible_with: str = 'c4b4f5dfb2b4'

TOPICS = ("api_keys", "terms")
_KEY_CHANGED = (
    "OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.kind IS DISTINCT FROM NEW.kind "
    "OR OLD.partner_id IS DISTINCT FROM NEW.partner_id OR OLD.key_hash IS DISTINCT FROM NEW.key_hash "
    "OR OLD.scopes::text IS DISTINCT FROM NEW.scopes::text"
)
_KEY_CHANGED_SQLITE = (
    "OLD.revoked_at IS NOT NEW.revoked_at OR OLD.kind IS NOT NEW.kind OR OLD.partner_id IS NOT NEW.partner_id "
    "OR OLD.key_hash IS NOT NEW.key_hash OR OLD.scopes IS NOT NEW.scopes"
)


def upgrade() -> None:
    op.create_table('read_cache_versions',
    sa.Column('topic', sa.String(length=32), nullable=False),
    sa.Column('version', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('topic', name=op.f('pk_read_cache_versions'))
    )
    for topic in TOPICS:
        op.execute(f"INSERT INTO read_cache_versions (topic, version) VALUES ('{topic}', 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION partners_read_cache_bump() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE read_cache_versions SET version = version + 1 WHERE topic = TG_ARGV[0];
                RETURN NULL;
            END;
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER api_keys_read_cache_update AFTER UPDATE ON api_keys FOR EACH ROW "
            f"WHEN ({_KEY_CHANGED}) EXECUTE FUNCTION partners_read_cache_bump('api_keys')"
        )
        op.execute(
            "CREATE TRIGGER api_keys_read_cache_delete AFTER DELETE ON api_keys FOR EACH STATEMENT "
            "EXECUTE FUNCTION partners_read_cache_bump('api_keys')"
        )
        op.execute(
            "CREATE TRIGGER program_terms_versions_read_cache AFTER INSERT OR UPDATE OR DELETE "
            "ON program_terms_versions FOR EACH STATEMENT EXECUTE FUNCTION partners_read_cache_bump('terms')"
        )
    else:
        bump = "UPDATE read_cache_versions SET version = version + 1 WHERE topic = '{topic}'"
        op.execute(
            f"CREATE TRIGGER api_keys_read_cache_update AFTER UPDATE ON api_keys FOR EACH ROW "
            f"WHEN {_KEY_CHANGED_SQLITE} BEGIN {bump.format(topic='api_keys')}; END"
        )
        op.execute(
            "CREATE TRIGGER api_keys_read_cache_delete AFTER DELETE ON api_keys FOR EACH ROW "
            f"BEGIN {bump.format(topic='api_keys')}; END"
        )
        for operation in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER program_terms_versions_read_cache_{operation.lower()} AFTER {operation} "
                f"ON program_terms_versions FOR EACH ROW BEGIN {bump.format(topic='terms')}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS api_keys_read_cache_update ON api_keys")
        op.execute("DROP TRIGGER IF EXISTS api_keys_read_cache_delete ON api_keys")
        op.execute("DROP TRIGGER IF EXISTS program_terms_versions_read_cache ON program_terms_versions")
        op.execute("DROP FUNCTION IF EXISTS partners_read_cache_bump()")
    else:
        op.execute("DROP TRIGGER IF EXISTS api_keys_read_cache_update")
        op.execute("DROP TRIGGER IF EXISTS api_keys_read_cache_delete")
        for operation in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS program_terms_versions_read_cache_{operation}")
    op.drop_table('read_cache_versions')
