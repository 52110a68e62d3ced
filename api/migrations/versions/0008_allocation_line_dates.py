"""allocation line dates: the day of each delivery or the last day to collect

Revision ID: 0008
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("allocation_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("date", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("allocation_lines", schema=None) as batch_op:
        batch_op.drop_column("date")
