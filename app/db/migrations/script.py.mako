"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
import app.db.types

revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}
# The oldest application revision that still works against the schema after this migration (see
# "Deploys and migrations" in README.md): itself for a contract change (a column dropped, renamed or
# made required, data rewritten for new rules); for an expand-only one (a table, a nullable column,
# an index), the `compatible_with` of the migration before it.
compatible_with: str = ${repr(up_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
